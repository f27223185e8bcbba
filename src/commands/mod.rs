//! The CLI's commands: wiring flags to the library's parts (the only place using anyhow).

mod audit;
mod certs;
mod drain_wait;
mod load;
mod policy_export;
mod serve;
mod setup;
mod verify;

pub use audit::audit;
pub use certs::certs_generate;
pub use drain_wait::drain_wait;
pub use load::load;
pub use policy_export::policy_export;
pub use serve::serve;
pub use setup::shutdown_signal;
pub use verify::verify;

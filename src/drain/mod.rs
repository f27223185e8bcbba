//! The adaptive drain waiter's shell: what it reads of the pod's network namespace (the
//! decision itself is zerodrop_core::drain).

pub mod sockets;
pub mod waiter;

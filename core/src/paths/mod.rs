//! The traffic path: what routes to a pod (Services, Ingresses, Gateway API routes), the path
//! classes that tell how long each keeps sending, and the index that answers it per pod.

pub mod class;
pub mod classify;
pub mod index;
pub mod route;

pub use class::{Delays, PathClass};
pub use index::PathIndex;
pub use route::{Paths, Route};

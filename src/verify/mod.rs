//! Measuring a rollout from the client's side: the load (`zerodrop load`) that `zerodrop
//! verify` and the node experiment count failed requests with.

pub mod access;
pub mod advice;
pub mod clock;
pub mod load;
pub mod loadpod;
pub mod measure;
pub mod observed;
pub mod options;
pub mod podwatch;
pub mod preflight;
pub mod report;
pub mod run;
pub mod steady;
pub mod workload;

//! Measuring a rollout from the client's side: the load (`zerodrop load`) that `zerodrop
//! verify` and the node experiment count failed requests with.

pub mod load;

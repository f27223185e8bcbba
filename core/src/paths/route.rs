//! What the index answers for one pod: the routes in front of it, as the engine takes them.

use super::class::PathClass;

/// One kind of routing layer in front of a pod, with the sentence that says which.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Route {
    pub class: PathClass,
    /// "Service web is an AWS ALB target (ip) of Ingress shop".
    pub why: String,
}

/// What is known to route to one pod: handed to the engine like image facts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Paths {
    /// One route per class, at most one per `PathClass`; empty: nothing selects the pod.
    pub routes: Vec<Route>,
    /// A Service with `externalTrafficPolicy: Local` that selects the pod.
    pub local: Option<String>,
    /// Service annotations ignored, each saying what was expected.
    pub problems: Vec<String>,
    /// The lookup stopped at its bound: more may route here.
    pub partial: bool,
}

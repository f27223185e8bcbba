//! Path classes: the kinds of routing layer that can send a pod work, and how long each keeps
//! sending after the pod starts terminating (the delay its preStop sleep must cover).

use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;

/// A kind of routing layer in front of a pod. Ordered by nothing: delays decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PathClass {
    /// Nothing selects the pod.
    None,
    /// A Service reached through kube-proxy (ClusterIP, NodePort, a node-level balancer).
    Cluster,
    /// An in-cluster ingress controller or gateway that routes to the Service's endpoints.
    Ingress,
    /// A cloud or external load balancer of a kind zerodrop does not know more about.
    LoadBalancer,
    /// An AWS Application Load Balancer with pod targets (`target-type: ip`).
    AwsAlb,
    /// An AWS Network Load Balancer with pod targets (`nlb-target-type: ip`).
    AwsNlb,
    /// A GKE layer-4 load balancer.
    GkeL4,
    /// An Azure Application Gateway (AGIC).
    AzureAppGateway,
}

/// One class's documented default and the evidence for it (docs/policy.md lists these).
pub struct Evidence {
    pub class: PathClass,
    /// `None`: the `prestop-sleep` in effect (today's measured default).
    pub delay: Option<u32>,
    pub lag: &'static str,
    pub source: &'static str,
}

impl PathClass {
    pub const ALL: [PathClass; 8] = [
        PathClass::None,
        PathClass::Cluster,
        PathClass::Ingress,
        PathClass::LoadBalancer,
        PathClass::AwsAlb,
        PathClass::AwsNlb,
        PathClass::GkeL4,
        PathClass::AzureAppGateway,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PathClass::None => "none",
            PathClass::Cluster => "cluster",
            PathClass::Ingress => "ingress",
            PathClass::LoadBalancer => "load-balancer",
            PathClass::AwsAlb => "aws-alb",
            PathClass::AwsNlb => "aws-nlb",
            PathClass::GkeL4 => "gke-l4",
            PathClass::AzureAppGateway => "azure-app-gateway",
        }
    }

    pub fn from_name(name: &str) -> Option<PathClass> {
        PathClass::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// A routing layer that sends work to the pod's address on connections it keeps open (a
    /// balancer, or an ingress controller or gateway): while it routes, its work arrives as
    /// requests on old connections, which only the drain waiter's `requests` count sees.
    pub fn pools_connections(self) -> bool {
        self == PathClass::Ingress || self.is_balancer()
    }

    /// A balancer outside the cluster that sends to pod addresses on its own schedule, not
    /// kube-proxy's: its lag is why the sleep must grow, and why lowering it is worth a finding.
    pub fn is_balancer(self) -> bool {
        matches!(
            self,
            PathClass::LoadBalancer
                | PathClass::AwsAlb
                | PathClass::AwsNlb
                | PathClass::GkeL4
                | PathClass::AzureAppGateway
        )
    }

    /// The default delay with its evidence: the measured lag, rounded up with a few seconds
    /// for the app to see the last requests through.
    pub fn evidence(self) -> Evidence {
        let (delay, lag, source) = match self {
            PathClass::None => (None, "nothing routes", "no Service selects the pod"),
            PathClass::Cluster => (
                None,
                "1-2 s on 1-3 nodes; p99 6.8 s at 100 nodes (nftables)",
                "docs/proof.md; kubernetes/kubernetes PR #124272",
            ),
            PathClass::Ingress => (
                None,
                "like kube-proxy: controllers watch EndpointSlices",
                "docs/proof.md (Traefik)",
            ),
            PathClass::LoadBalancer => (
                Some(15),
                "6-12 s for a health-checked L4 balancer",
                "envoyproxy/gateway #9210",
            ),
            PathClass::AwsAlb => (
                Some(20),
                "about 17 s after draining starts",
                "aws-load-balancer-controller #2366",
            ),
            PathClass::AwsNlb => (
                Some(125),
                "about 2 min after deregistration",
                "aws-load-balancer-controller #2366",
            ),
            PathClass::GkeL4 => (Some(15), "6-12 s", "envoyproxy/gateway #9210"),
            PathClass::AzureAppGateway => (
                Some(45),
                "about 40 s",
                "Azure/application-gateway-kubernetes-ingress #75",
            ),
        };
        Evidence {
            class: self,
            delay,
            lag,
            source,
        }
    }
}

impl fmt::Display for PathClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The delay of each class in one cluster: the built-in defaults, overridden by the cluster
/// config's `path-classes`, and `unrouted-sleep` for pods nothing selects.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Delays {
    pub classes: BTreeMap<PathClass, u32>,
    /// The sleep of a pod no Service selects; `None` keeps `prestop-sleep` (Services are often
    /// created after their pods).
    pub unrouted: Option<u32>,
}

impl Delays {
    /// The class's delay; `sleep` is the `prestop-sleep` in effect, the default of the classes
    /// that follow kube-proxy.
    pub fn of(&self, class: PathClass, sleep: u32) -> u32 {
        if class == PathClass::None {
            return self.unrouted.unwrap_or(sleep);
        }
        self.classes
            .get(&class)
            .copied()
            .or(class.evidence().delay)
            .unwrap_or(sleep)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_serde_agrees() {
        for c in PathClass::ALL {
            assert_eq!(PathClass::from_name(c.as_str()), Some(c));
            assert_eq!(serde_json::to_value(c).unwrap(), c.as_str());
        }
        assert_eq!(PathClass::from_name("aws_nlb"), None);
    }

    #[test]
    fn delays_default_from_evidence_and_follow_the_sleep_where_kube_proxy_routes() {
        let d = Delays::default();
        assert_eq!(d.of(PathClass::AwsNlb, 5), 125);
        assert_eq!(d.of(PathClass::AwsAlb, 5), 20);
        assert_eq!(d.of(PathClass::Cluster, 5), 5);
        assert_eq!(d.of(PathClass::Cluster, 8), 8);
        assert_eq!(d.of(PathClass::None, 5), 5);
        let d = Delays {
            classes: [(PathClass::Cluster, 2), (PathClass::AwsNlb, 180)].into(),
            unrouted: Some(1),
        };
        assert_eq!(d.of(PathClass::Cluster, 5), 2);
        assert_eq!(d.of(PathClass::AwsNlb, 5), 180);
        assert_eq!(d.of(PathClass::None, 5), 1);
    }
}

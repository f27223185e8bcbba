"""The convergence instrument's pure parts: which pod addresses a ruleset routes to (samples cut
from real listings of kube-proxy 1.37.2 on the node), when a node stopped, and the summary."""
import threading

import convergence
import rules

# `nft list table ip kube-proxy` in a client node, nftables mode (cut).
NFTABLES = """\
	chain services {
		ip daddr @cluster-ips ip saddr != 198.18.0.0/16 meta mark set meta mark | 0x00004000 comment "masquerade clusterIP traffic from outside cluster"
	}
	chain masquerading {
		ct status dnat ip saddr . ip daddr . meta l4proto . th dport @hairpin-connections masquerade fully-random
	}
	chain service-2QRHZV4L-default/kubernetes/tcp/https {
		meta l4proto tcp dnat to 198.18.0.1:39415
	}
	chain service-ZAV43H2I-convergence/app/tcp/http {
		meta l4proto tcp dnat ip to numgen random mod 3 map { 0 : 198.18.2.90 . 8080, 1 : 198.18.2.91 . 8080, 2 : 198.18.2.92 . 8080 }
	}
"""

# `iptables-save -t nat` on the node, iptables mode (cut).
IPTABLES = """\
-A KUBE-SEP-6E7XQMQ4RAYOWTTM -s 198.18.1.5/32 -m comment --comment "convergence/app:http" -j KUBE-MARK-MASQ
-A KUBE-SEP-6E7XQMQ4RAYOWTTM -p tcp -m comment --comment "convergence/app:http" -m tcp -j DNAT --to-destination 198.18.1.5:8080
-A KUBE-SEP-IRMT6RY5EEEBXDLQ -p tcp -m comment --comment "default/kubernetes:https" -m tcp -j DNAT --to-destination 198.18.0.1:39415
-A KUBE-SVC-ZAV43H2I -m comment --comment "convergence/app:http -> 198.18.1.5:8080" -j KUBE-SEP-6E7XQMQ4RAYOWTTM
"""


def test_targets_are_the_pods_a_dnat_names_in_either_mode():
    assert rules.targets(NFTABLES) == {"198.18.2.90", "198.18.2.91", "198.18.2.92"}
    # The masquerade rule and the comment name the pod too, but only the DNAT routes to it; the
    # apiserver on the bridge (198.18.0.x) is not a pod.
    assert rules.targets(IPTABLES) == {"198.18.1.5"}
    assert rules.targets(IPTABLES.replace("-j DNAT", "-j KUBE-MARK-DROP")) == set()


def node(name, changes):
    """A NodeRules holding recorded changes, without its monitor (no node needed)."""
    n = rules.NodeRules.__new__(rules.NodeRules)
    n.name, n.changes, n.lock = name, changes, threading.Lock()
    return n


def cluster(*nodes):
    c = rules.ClusterRules.__new__(rules.ClusterRules)
    c.nodes = list(nodes)
    return c


def test_convergence_counts_from_the_earliest_evidence_of_the_deletion():
    pod = {"name": "a", "ip": "198.18.1.5", "deleted": 102.4, "not_ready": 101.9, "deletion_second": 101.0}
    c = cluster(node("n1", [(100.5, "198.18.1.5", "del"), (102.6, "198.18.1.5", "del")]),
                node("n2", [(104.0, "198.18.1.5", "del")]),
                node("n3", []))
    (got,) = c.convergence([pod, {"name": "b", "ip": "198.18.1.6"}])
    # The not-ready watch event came before the pods' watch saw the deletion: 101.9 is the
    # reference; a removal before the deletion's second belongs to an earlier change.
    assert got["nodes"] == {"n1": 0.7, "n2": 2.1, "n3": None}


def test_summary_takes_a_node_that_never_stopped_as_the_slowest():
    nodes = [("n1", None), ("n2", "zd-c1")]
    records = [{"nodes": {"n1": 0.2, "n2": 0.5}}, {"nodes": {"n1": 0.3, "n2": None}}]
    s = convergence.summary(records, nodes)
    assert s["never_removed"] == 1
    assert s["slowest_node"] == {"p50": 0.5, "p90": convergence.WAIT, "max": convergence.WAIT}
    assert s["per_node"]["n2"] == {"p50": 0.5, "p90": 0.5, "max": 0.5}
    assert s["spread"] == {"p50": 0.3, "p90": 0.3, "max": 0.3}


def test_quantile_is_a_sample_not_an_interpolation():
    assert convergence.quantile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.9) == 9
    assert convergence.quantile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.5) == 5
    assert convergence.quantile([4.0], 0.9) == 4.0

//! The adaptive drain's decision: from snapshots of the pod's TCP sockets, when new work has
//! stopped arriving. Pure: the waiter reads the sockets (sock_diag) and the clock, this decides.
//!
//! The rule, from what a terminating pod sees on each path (experiments/proof/drain_probe.py,
//! docs/proof.md): routing layers that still send work here either open connections (kube-proxy
//! through the Service VIP; they stop within a second of the deletion on our nodes) or send
//! requests on connections they keep open to the pod (an ingress controller or a load balancer
//! routing to pod IPs: Traefik's stopped within a second, a lagging balancer's went on until
//! its lag). So both count as arrival: a new connection, and bytes received on any open one.
//! Snapshots miss connections that open and close between two of them (a client that closes
//! first leaves nothing behind), so the network namespace's count of accepted connections
//! (`PassiveOpens`) is the other input: accepted connections no snapshot explains are arrivals.
//! Not counted: connections the kubelet opens during the wait and that a snapshot shows (its
//! HTTP probes: it asks the server to close, so they linger in TIME-WAIT; the waiter learns its
//! address from the preStop call itself). A TCP probe leaves no trace and counts. The node's
//! address is not only the kubelet's: a proxy on the node (a host-network ingress controller,
//! our lagging balancer) opens its pooled connections from it too, so such a connection counts
//! from its second request on, which a probe never sends (the kubelet turns keep-alive off). A client
//! pinned to the pod through the VIP with a keep-alive connection counts too - the pod cannot
//! tell it from a balancer's pooled connection - and holds the wait until `max`; only the app
//! closing that connection after SIGTERM moves it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

/// How long the waiter may wait: at least `min`, at most `max`, and it answers once nothing has
/// arrived for `quiet`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    pub min: Duration,
    pub quiet: Duration,
    pub max: Duration,
}

/// One accepted TCP connection of the pod's network namespace (its local port is one the
/// namespace listens on; outgoing connections and listeners are left out), in any state from
/// established to TIME-WAIT, as far as the decision needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Socket {
    /// The same for the connection's whole life, TIME-WAIT included (from its addresses and
    /// ports: the kernel's cookie changes when a socket enters TIME-WAIT).
    pub id: u64,
    pub local_port: u16,
    pub peer: IpAddr,
    pub bytes_received: u64,
}

/// What counts as work still arriving (the `drain-count` setting).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Count {
    /// New connections, and bytes received on open ones: right behind balancers and ingress
    /// controllers that pool connections to pod IPs.
    #[default]
    Requests,
    /// New connections only: right where clients come through kube-proxy and keep-alive
    /// connections stay pinned to the pod whatever routing does (they would hold the wait
    /// until `max`; the app's own drain closes them after SIGTERM).
    Connections,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Nothing arrived for the quiet window (and the minimum had passed).
    Quiet,
    /// Work was still arriving at the maximum.
    Max,
}

/// The waiter's answer, and what it saw: its one log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub waited: Duration,
    pub ending: Ending,
    /// Connections opened during the wait (the kubelet's not counted).
    pub new_connections: u32,
    /// Connections that received bytes during the wait.
    pub busy_connections: u32,
    /// When the last arrival was seen, from the start of the wait.
    pub last_arrival: Option<Duration>,
}

/// What is known about a socket seen before.
struct Seen {
    bytes: u64,
    /// Opened during the wait from the kubelet's address: a probe until it carries a second
    /// request.
    probe: bool,
    busy: bool,
}

/// One wait: fed a snapshot at a time, with the time since the preStop call.
pub struct Wait {
    bounds: Bounds,
    count: Count,
    ports: Vec<u16>,
    kubelet: Option<IpAddr>,
    /// The connections of the last snapshot only: memory follows the pod's sockets.
    seen: HashMap<u64, Seen>,
    /// The namespace's accepted connections so far.
    opened: u64,
    /// Accepted connections counted but not yet shown by a snapshot: the counter is read just
    /// after the dump, so a connection accepted in between shows only in the next one.
    owed: u64,
    new_connections: u32,
    busy_connections: u32,
    last_arrival: Option<Duration>,
}

impl Wait {
    /// `first` is the snapshot at the preStop call and `opened` the namespace's accepted
    /// connections then: the baseline. `ports`: the app's ports (empty: every port).
    pub fn new(
        bounds: Bounds,
        ports: Vec<u16>,
        kubelet: Option<IpAddr>,
        first: &[Socket],
        opened: u64,
    ) -> Wait {
        let mut wait = Wait {
            bounds,
            count: Count::Requests,
            ports,
            kubelet,
            seen: HashMap::new(),
            opened,
            owed: 0,
            new_connections: 0,
            busy_connections: 0,
            last_arrival: None,
        };
        for s in first {
            wait.seen.insert(
                s.id,
                Seen {
                    bytes: s.bytes_received,
                    probe: false,
                    busy: false,
                },
            );
        }
        wait
    }

    /// What counts as arrival (requests unless told).
    pub fn counting(mut self, count: Count) -> Wait {
        self.count = count;
        self
    }

    /// Takes a snapshot `at` since the preStop call, with the namespace's accepted connections
    /// so far; the verdict once the wait is over.
    pub fn observe(&mut self, at: Duration, sockets: &[Socket], opened: u64) -> Option<Verdict> {
        let mut arrived = false;
        // Accepted connections this snapshot shows (any port): the rest were missed.
        let mut explained = 0u64;
        let mut seen = HashMap::with_capacity(sockets.len());
        for s in sockets {
            let app = self.ports.is_empty() || self.ports.contains(&s.local_port);
            let now = match self.seen.remove(&s.id) {
                Some(mut known) => {
                    // A socket's id fixes its ports: off the app's ports it never counts.
                    let grew = app && s.bytes_received > known.bytes;
                    // A probe's one request may show only in its second snapshot: bytes on a
                    // probe count once they come on top of bytes already seen.
                    if grew && !(known.probe && known.bytes == 0) {
                        known.probe = false;
                        if !known.busy {
                            self.busy_connections = self.busy_connections.saturating_add(1);
                        }
                        known.busy = true;
                        arrived |= self.count == Count::Requests;
                    }
                    known.bytes = s.bytes_received;
                    known
                }
                None => {
                    explained += 1;
                    let probe = app && self.kubelet == Some(s.peer);
                    if app && !probe {
                        self.new_connections = self.new_connections.saturating_add(1);
                        arrived = true;
                    }
                    Seen {
                        bytes: s.bytes_received,
                        probe,
                        busy: false,
                    }
                }
            };
            seen.insert(s.id, now);
        }
        self.seen = seen;
        // What the last snapshot owed and this one does not show either was missed; what this
        // one counted and does not show may still show in the next.
        let paid = self.owed.min(explained);
        let missed = self.owed - paid;
        let counted = opened.saturating_sub(self.opened);
        self.owed = counted.saturating_sub(explained - paid);
        self.opened = self.opened.max(opened);
        if missed > 0 {
            let missed = u32::try_from(missed).unwrap_or(u32::MAX);
            self.new_connections = self.new_connections.saturating_add(missed);
            arrived = true;
        }
        if arrived {
            self.last_arrival = Some(at);
        }
        let quiet_since = self.last_arrival.unwrap_or(Duration::ZERO);
        let ending = if at >= self.bounds.max {
            Ending::Max
        } else if at >= self.bounds.min && at.saturating_sub(quiet_since) >= self.bounds.quiet {
            Ending::Quiet
        } else {
            return None;
        };
        Some(Verdict {
            waited: at,
            ending,
            new_connections: self.new_connections,
            busy_connections: self.busy_connections,
            last_arrival: self.last_arrival,
        })
    }
}

//! The adaptive drain's decision: from snapshots of the pod's TCP sockets, when new work has
//! stopped arriving. Pure: the waiter reads the sockets (sock_diag) and the clock, this decides.
//!
//! The rule, from what a terminating pod sees on each path (experiments/proof/drain_probe.py,
//! docs/proof.md): routing layers that still send work here either open connections (kube-proxy
//! through the Service VIP; they stop within a second of the deletion on our nodes) or send
//! requests on connections they keep open to the pod (an ingress controller or a load balancer
//! routing to pod IPs: Traefik's stopped within a second, a lagging balancer's went on until
//! its lag). So both count as arrival: a new connection, and bytes received on any open one.
//! Not counted: connections the kubelet opens during the wait (its probes; the waiter learns
//! its address from the preStop call itself). A client pinned to the pod through the VIP with a
//! keep-alive connection counts too - the pod cannot tell it from a balancer's pooled connection
//! - and holds the wait until `max`; only the app closing that connection after SIGTERM moves it.

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

/// One TCP socket of the pod's network namespace, as far as the decision needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Socket {
    /// Stable for the socket's life (sock_diag's cookie).
    pub id: u64,
    pub local_port: u16,
    pub peer: IpAddr,
    pub established: bool,
    pub bytes_received: u64,
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
    /// Opened by the kubelet during the wait: ignored for good.
    ignored: bool,
    busy: bool,
}

/// One wait: fed a snapshot at a time, with the time since the preStop call.
pub struct Wait {
    bounds: Bounds,
    ports: Vec<u16>,
    kubelet: Option<IpAddr>,
    seen: HashMap<u64, Seen>,
    new_connections: u32,
    last_arrival: Option<Duration>,
}

impl Wait {
    /// `first` is the snapshot at the preStop call: what was open then is the baseline.
    /// `ports`: the app's ports (empty: every port but the waiter's own, which the caller
    /// leaves out of the snapshots).
    pub fn new(bounds: Bounds, ports: Vec<u16>, kubelet: Option<IpAddr>, first: &[Socket]) -> Wait {
        let mut wait = Wait {
            bounds,
            ports,
            kubelet,
            seen: HashMap::new(),
            new_connections: 0,
            last_arrival: None,
        };
        for s in first.iter().filter(|s| watched(&wait.ports, s)) {
            wait.seen.insert(
                s.id,
                Seen {
                    bytes: s.bytes_received,
                    ignored: false,
                    busy: false,
                },
            );
        }
        wait
    }

    /// Takes a snapshot `at` since the preStop call; the verdict once the wait is over.
    pub fn observe(&mut self, at: Duration, sockets: &[Socket]) -> Option<Verdict> {
        let mut arrived = false;
        for s in sockets.iter().filter(|s| watched(&self.ports, s)) {
            match self.seen.get_mut(&s.id) {
                Some(seen) => {
                    if s.bytes_received > seen.bytes && !seen.ignored {
                        seen.busy = true;
                        arrived = true;
                    }
                    seen.bytes = s.bytes_received;
                }
                None => {
                    let ignored = self.kubelet == Some(s.peer);
                    if !ignored {
                        self.new_connections += 1;
                        arrived = true;
                    }
                    let seen = Seen {
                        bytes: s.bytes_received,
                        ignored,
                        busy: false,
                    };
                    self.seen.insert(s.id, seen);
                }
            }
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
            busy_connections: self.seen.values().filter(|s| s.busy).count() as u32,
            last_arrival: self.last_arrival,
        })
    }
}

/// An established connection on one of the app's ports (any port when none are given).
fn watched(ports: &[u16], s: &Socket) -> bool {
    s.established && (ports.is_empty() || ports.contains(&s.local_port))
}

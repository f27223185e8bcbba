//! The adaptive drain's decision, on socket snapshots shaped like those the probe recorded on
//! each path (experiments/proof/drain_probe.py): VIP new connections that stop, a pooled
//! balancer connection that goes on until its lag, kubelet probes, a pinned keep-alive client.
// Helpers outside #[test] functions unwrap too (clippy.toml allows it only inside them).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::IpAddr;
use std::time::Duration;
use zerodrop_core::drain::{Bounds, Count, Ending, Socket, Wait};

const APP: u16 = 8080;
const BOUNDS: Bounds = Bounds {
    min: Duration::from_secs(1),
    quiet: Duration::from_secs(2),
    max: Duration::from_secs(30),
};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn sock(id: u64, peer: &str, bytes: u64) -> Socket {
    Socket {
        id,
        local_port: APP,
        peer: ip(peer),
        bytes_received: bytes,
    }
}

fn kubelet_ip() -> Option<IpAddr> {
    Some(ip("198.18.0.1"))
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Feeds one snapshot every 100 ms from `snapshot(at_ms)` until a verdict; the namespace's
/// accepted connections are those the snapshots show (none missed).
fn run(wait: &mut Wait, snapshot: impl Fn(u64) -> Vec<Socket>) -> zerodrop_core::drain::Verdict {
    let ever = std::cell::RefCell::new(std::collections::HashSet::new());
    run_counted(wait, |at| {
        let sockets = snapshot(at);
        let mut ever = ever.borrow_mut();
        ever.extend(sockets.iter().map(|s| s.id));
        (sockets, ever.len() as u64)
    })
}

/// The same, with the accepted-connection count given by `snapshot`.
fn run_counted(
    wait: &mut Wait,
    snapshot: impl Fn(u64) -> (Vec<Socket>, u64),
) -> zerodrop_core::drain::Verdict {
    (1..=400)
        .find_map(|step| {
            let (sockets, opened) = snapshot(step * 100);
            wait.observe(ms(step * 100), &sockets, opened)
        })
        .expect("a verdict by the maximum")
}

#[test]
fn nothing_routed_ends_at_the_minimum_plus_the_quiet_window() {
    let mut wait = Wait::new(BOUNDS, vec![APP], None, &[], 0);
    let v = run(&mut wait, |_| vec![]);
    assert_eq!((v.ending, v.waited), (Ending::Quiet, ms(2000)));
    assert_eq!(
        (v.new_connections, v.busy_connections, v.last_arrival),
        (0, 0, None)
    );
}

#[test]
fn new_connections_through_the_vip_hold_the_wait_until_they_stop() {
    // A new connection every 100 ms until 1.3 s after the deletion (kube-proxy converged).
    let mut wait = Wait::new(BOUNDS, vec![APP], None, &[], 0);
    let v = run(&mut wait, |at| {
        (1..=at.min(1300) / 100)
            .map(|i| sock(i, "198.18.0.11", 120))
            .collect()
    });
    assert_eq!(v.ending, Ending::Quiet);
    assert_eq!(v.last_arrival, Some(ms(1300)));
    assert_eq!(v.waited, ms(3300));
    assert_eq!(v.new_connections, 13);
}

#[test]
fn a_balancers_pooled_connection_holds_the_wait_until_its_lag_ends() {
    // Open before the preStop call, receiving until the balancer's 15 s lag is over.
    let before = [sock(1, "198.18.0.1", 5_000)];
    let mut wait = Wait::new(BOUNDS, vec![APP], None, &before, 1);
    let v = run(&mut wait, |at| {
        vec![sock(1, "198.18.0.1", 5_000 + at.min(15_000))]
    });
    assert_eq!((v.ending, v.waited), (Ending::Quiet, ms(17_000)));
    assert_eq!((v.new_connections, v.busy_connections), (0, 1));
}

#[test]
fn kubelet_probes_do_not_count_but_a_proxy_on_the_nodes_address_does() {
    let kubelet = Some(ip("198.18.0.1"));
    // A probe connection every 500 ms from the kubelet's address: ignored, also as it sends.
    let mut wait = Wait::new(BOUNDS, vec![APP], kubelet, &[], 0);
    let v = run(&mut wait, |at| {
        (1..=at / 500)
            .map(|i| sock(100 + i, "198.18.0.1", 90))
            .collect()
    });
    assert_eq!(
        (v.ending, v.waited, v.new_connections),
        (Ending::Quiet, ms(2000), 0)
    );
    // A connection from that address open before the call (a proxy on the host network) that
    // keeps receiving counts.
    let before = [sock(1, "198.18.0.1", 10)];
    let mut wait = Wait::new(BOUNDS, vec![APP], kubelet, &before, 1);
    let v = run(&mut wait, |at| {
        vec![sock(1, "198.18.0.1", 10 + at.min(4_000))]
    });
    assert_eq!((v.ending, v.waited), (Ending::Quiet, ms(6_000)));
}

#[test]
fn a_proxy_on_the_nodes_address_that_opens_a_connection_during_the_wait_counts_from_its_second_request()
 {
    // The matrix's podinfo under the lagging balancer (docs/proof.md): the balancer, on the
    // node, reconnected to the pod 1 s into the wait from the kubelet's address, sent a request
    // every 50 ms on that connection until its lag (8 s) ran out, and the waiter, which had
    // ignored the connection as a probe, answered at 3 s.
    let kubelet = kubelet_ip();
    let mut wait = Wait::new(BOUNDS, vec![APP], kubelet, &[], 0);
    let v = run(&mut wait, |at| {
        if at < 1_000 {
            vec![]
        } else {
            vec![sock(
                7,
                "198.18.0.1",
                100 * ((at.min(8_000) - 1_000) / 50 + 1),
            )]
        }
    });
    assert_eq!((v.ending, v.waited), (Ending::Quiet, ms(10_000)));
    assert_eq!((v.new_connections, v.busy_connections), (0, 1));
    // A probe seen before its request arrived, then with it, then in TIME-WAIT: not counted.
    let mut wait = Wait::new(BOUNDS, vec![APP], kubelet, &[], 0);
    let v = run(&mut wait, |at| match at {
        0..=1_000 => vec![],
        1_100 => vec![sock(8, "198.18.0.1", 0)],
        _ => vec![sock(8, "198.18.0.1", 120)],
    });
    assert_eq!(
        (v.ending, v.waited, v.busy_connections),
        (Ending::Quiet, ms(2_000), 0)
    );
}

#[test]
fn a_pinned_keep_alive_client_holds_the_wait_to_the_maximum() {
    let before = [sock(1, "198.18.0.12", 0)];
    let mut wait = Wait::new(BOUNDS, vec![APP], None, &before, 1);
    let v = run(&mut wait, |at| vec![sock(1, "198.18.0.12", at)]);
    assert_eq!((v.ending, v.waited), (Ending::Max, ms(30_000)));
}

#[test]
fn counting_connections_lets_a_pinned_client_go_on_and_still_waits_for_new_ones() {
    // The pinned keep-alive client of the test above no longer holds the wait.
    let before = [sock(1, "198.18.0.12", 0)];
    let mut wait = Wait::new(BOUNDS, vec![APP], None, &before, 1).counting(Count::Connections);
    let v = run(&mut wait, |at| vec![sock(1, "198.18.0.12", at)]);
    assert_eq!((v.ending, v.waited), (Ending::Quiet, ms(2_000)));
    assert_eq!(v.busy_connections, 1);
    // New connections through the VIP for 4 s still do.
    let mut wait = Wait::new(BOUNDS, vec![APP], None, &[], 0).counting(Count::Connections);
    let v = run(&mut wait, |at| {
        (1..=at.min(4_000) / 250)
            .map(|i| sock(i, "198.18.0.12", 100))
            .collect()
    });
    assert_eq!((v.ending, v.waited), (Ending::Quiet, ms(6_000)));
}

#[test]
fn connections_to_other_ports_are_not_the_apps_traffic() {
    let mut wait = Wait::new(BOUNDS, vec![APP], None, &[], 0);
    let v = run(&mut wait, |at| {
        let mut other = sock(at, "198.18.0.11", at);
        other.local_port = 9090;
        vec![other]
    });
    assert_eq!(
        (v.ending, v.waited, v.new_connections),
        (Ending::Quiet, ms(2000), 0)
    );
    // Nor requests on a kept connection to another port (opened before the call or during it).
    let mut kept = sock(1, "198.18.0.11", 0);
    kept.local_port = 9090;
    let mut wait = Wait::new(BOUNDS, vec![APP], None, std::slice::from_ref(&kept), 1);
    let v = run(&mut wait, |at| {
        let mut during = sock(2, "198.18.0.11", at);
        during.local_port = 9090;
        vec![
            Socket {
                bytes_received: at,
                ..kept.clone()
            },
            during,
        ]
    });
    assert_eq!(
        (v.ending, v.waited, v.busy_connections),
        (Ending::Quiet, ms(2000), 0)
    );
    // No port given: every port counts.
    let mut wait = Wait::new(BOUNDS, vec![], None, &[], 0);
    let v = run(&mut wait, |at| {
        let mut other = sock(at / 100, "198.18.0.11", 1);
        other.local_port = 9090;
        if at <= 3000 { vec![other] } else { vec![] }
    });
    assert_eq!((v.ending, v.last_arrival), (Ending::Quiet, Some(ms(3000))));
}

#[test]
fn connections_no_snapshot_caught_count_from_the_namespaces_accept_counter() {
    // A client that closes first leaves nothing behind: 5 accepted per 100 ms until 2.5 s,
    // never seen in a snapshot.
    let mut wait = Wait::new(BOUNDS, vec![APP], None, &[], 1_000);
    let v = run_counted(&mut wait, |at| (vec![], 1_000 + at.min(2_500) / 20));
    // (Counted one snapshot late: the next one might have shown them.)
    assert_eq!((v.ending, v.last_arrival), (Ending::Quiet, Some(ms(2600))));
    assert_eq!(v.new_connections, 125);
    // A kubelet probe accepted between a dump and the counter's read: counted by the counter
    // first, shown by the next snapshot, neither missed nor new.
    let mut wait = Wait::new(BOUNDS, vec![APP], kubelet_ip(), &[], 0);
    let v = run_counted(&mut wait, |at| {
        let shown: Vec<_> = (1..=(at - 100) / 300)
            .map(|i| sock(i, "198.18.0.1", 90))
            .collect();
        (shown, at / 300)
    });
    assert_eq!((v.ending, v.new_connections), (Ending::Quiet, 0));
    // Those a snapshot shows are not counted twice, the kubelet's included.
    let kubelet = Some(ip("198.18.0.1"));
    let mut wait = Wait::new(BOUNDS, vec![APP], kubelet, &[], 0);
    let v = run_counted(&mut wait, |at| {
        let probes: Vec<_> = (1..=at / 500).map(|i| sock(i, "198.18.0.1", 90)).collect();
        let opened = probes.len() as u64;
        (probes, opened)
    });
    assert_eq!(
        (v.ending, v.waited, v.new_connections),
        (Ending::Quiet, ms(2000), 0)
    );
}

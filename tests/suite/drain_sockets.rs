//! The drain waiter's view of the network namespace, read for real: accepted connections with
//! their received bytes (outgoing ones left out), and the namespace's accept counter.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use zerodrop::drain::sockets::{passive_opens, read_passive_opens, view};

#[test]
fn accepted_connections_and_their_bytes_are_seen_outgoing_ones_are_not() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let before = read_passive_opens().expect("/proc/net/snmp has PassiveOpens");
    let mut client = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let client_port = client.local_addr().unwrap().port();
    let (mut server, _) = listener.accept().unwrap();
    client.write_all(&[7u8; 1000]).unwrap();
    let mut got = [0u8; 1000];
    server.read_exact(&mut got).unwrap();

    let seen = view().unwrap();
    assert!(seen.listening.contains(&port), "{:?}", seen.listening);
    let sockets = seen.accepted;
    let ours: Vec<_> = sockets.iter().filter(|s| s.local_port == port).collect();
    assert_eq!(ours.len(), 1, "{sockets:?}");
    assert_eq!(
        ours[0].peer,
        "127.0.0.1".parse::<std::net::IpAddr>().unwrap()
    );
    assert!(ours[0].bytes_received >= 1000, "{:?}", ours[0]);
    assert!(
        !sockets.iter().any(|s| s.local_port == client_port),
        "the outgoing side was counted"
    );
    assert!(read_passive_opens().unwrap() > before);

    // More bytes, the same connection: the id stays, the count grows.
    client.write_all(&[7u8; 500]).unwrap();
    server.read_exact(&mut got[..500]).unwrap();
    let again = view().unwrap().accepted;
    let same = again.iter().find(|s| s.id == ours[0].id).expect("same id");
    assert!(same.bytes_received >= ours[0].bytes_received + 500);

    // Closed by the server first: TIME-WAIT, still the same connection.
    drop(server);
    let mut rest = Vec::new();
    let _ = client.read_to_end(&mut rest);
    drop(client);
    let closed = view().unwrap().accepted;
    assert!(
        closed.iter().any(|s| s.id == ours[0].id),
        "TIME-WAIT not seen as the same connection"
    );
}

#[test]
fn passive_opens_is_read_from_the_tcp_lines() {
    let snmp = "Ip: Forwarding DefaultTTL\nIp: 1 64\nTcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails\nTcp: 1 200 120000 -1 4213 1877 12\nUdp: InDatagrams\nUdp: 5\n";
    assert_eq!(passive_opens(snmp), Some(1877));
    assert_eq!(passive_opens("Tcp: ActiveOpens\nTcp: 4\n"), None);
    assert_eq!(passive_opens(""), None);
}

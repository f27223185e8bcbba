//! The network namespace's accepted TCP connections over sock_diag (what `ss -tin` prints; any
//! user may read them, no capability needed), and its count of accepted connections.

use netlink_packet_core::{
    NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_sock_diag::SockDiagMessage;
use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6, IPPROTO_TCP};
use netlink_packet_sock_diag::inet::nlas::Nla;
use netlink_packet_sock_diag::inet::{ExtensionFlags, InetRequest, SocketId, StateFlags};
use netlink_sys::protocols::NETLINK_SOCK_DIAG;
use netlink_sys::{Socket as Netlink, SocketAddr};
use std::collections::HashSet;
use std::hash::BuildHasher;
use std::net::IpAddr;
use zerodrop_core::drain::Socket;

/// More sockets than any pod has: a dump beyond it is cut (and says so), memory stays bounded.
pub const MAX_SOCKETS: usize = 65_536;
const TCP_LISTEN: u8 = 10;

#[derive(Debug, thiserror::Error)]
pub enum SocketsError {
    #[error("sock_diag: {0}")]
    Io(#[from] std::io::Error),
    #[error("sock_diag answered what it should not: {0}")]
    Decode(String),
    #[error("more than {MAX_SOCKETS} sockets")]
    TooMany,
    #[error("no PassiveOpens in /proc/net/snmp")]
    NoCounter,
}

/// What the waiter reads of its network namespace at one moment.
#[derive(Debug, Clone)]
pub struct View {
    /// Ports something listens on.
    pub listening: Vec<u16>,
    /// Every accepted connection (its local port is one of `listening`), IPv4 and IPv6, in any
    /// state but LISTEN.
    pub accepted: Vec<Socket>,
    /// Connections the namespace has accepted so far (`PassiveOpens`).
    pub passive_opens: u64,
}

pub fn view() -> Result<View, SocketsError> {
    let mut all = Vec::new();
    for family in [AF_INET, AF_INET6] {
        dump(family, &mut all)?;
    }
    let passive_opens = read_passive_opens().ok_or(SocketsError::NoCounter)?;
    let listening: HashSet<u16> = all
        .iter()
        .filter(|r| r.state == TCP_LISTEN)
        .map(|r| r.socket.local_port)
        .collect();
    let accepted = all
        .into_iter()
        .filter(|r| r.state != TCP_LISTEN && listening.contains(&r.socket.local_port))
        .map(|r| r.socket)
        .collect();
    let mut listening: Vec<u16> = listening.into_iter().collect();
    listening.sort_unstable();
    Ok(View {
        listening,
        accepted,
        passive_opens,
    })
}

struct Row {
    state: u8,
    socket: Socket,
}

fn dump(family: u8, into: &mut Vec<Row>) -> Result<(), SocketsError> {
    let mut socket = Netlink::new(NETLINK_SOCK_DIAG)?;
    socket.bind_auto()?;
    socket.connect(&SocketAddr::new(0, 0))?;
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    let mut request = NetlinkMessage::new(
        header,
        SockDiagMessage::InetRequest(InetRequest {
            family,
            protocol: IPPROTO_TCP,
            extensions: ExtensionFlags::INFO,
            states: StateFlags::all(),
            socket_id: if family == AF_INET {
                SocketId::new_v4()
            } else {
                SocketId::new_v6()
            },
        })
        .into(),
    );
    request.finalize();
    let mut buf = vec![0; request.buffer_len()];
    request.serialize(&mut buf);
    socket.send(&buf, 0)?;
    let mut received = vec![0u8; 64 * 1024];
    loop {
        let size = socket.recv(&mut &mut received[..], 0)?;
        let mut offset = 0;
        while offset < size {
            let message = NetlinkMessage::<SockDiagMessage>::deserialize(&received[offset..size])
                .map_err(|e| SocketsError::Decode(e.to_string()))?;
            let length = message.header.length as usize;
            match message.payload {
                NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(response)) => {
                    if into.len() >= MAX_SOCKETS {
                        return Err(SocketsError::TooMany);
                    }
                    let id = &response.header.socket_id;
                    let bytes_received = response
                        .nlas
                        .iter()
                        .find_map(|nla| match nla {
                            Nla::TcpInfo(info) => Some(info.bytes_received),
                            _ => None,
                        })
                        .unwrap_or(0);
                    // A dual-stack listener sees IPv4 peers as ::ffff:a.b.c.d; the kubelet's
                    // address is compared in its canonical form.
                    let (local, peer) = (
                        id.source_address.to_canonical(),
                        id.destination_address.to_canonical(),
                    );
                    into.push(Row {
                        state: response.header.state,
                        socket: Socket {
                            id: connection_id(local, id.source_port, peer, id.destination_port),
                            local_port: id.source_port,
                            peer,
                            bytes_received,
                        },
                    });
                }
                NetlinkPayload::Done(_) => return Ok(()),
                NetlinkPayload::Error(e) => return Err(SocketsError::Decode(format!("{e:?}"))),
                _ => {}
            }
            if length == 0 {
                break;
            }
            offset += length;
        }
    }
}

/// The same for a connection's whole life: its addresses and ports (the kernel's cookie changes
/// when it enters TIME-WAIT).
fn connection_id(local: IpAddr, local_port: u16, peer: IpAddr, peer_port: u16) -> u64 {
    foldhash::fast::FixedState::with_seed(0).hash_one((local, local_port, peer, peer_port))
}

/// `PassiveOpens` of `/proc/net/snmp`'s `Tcp:` lines: connections the namespace has accepted.
pub fn passive_opens(snmp: &str) -> Option<u64> {
    let mut tcp = snmp.lines().filter(|l| l.starts_with("Tcp:"));
    let (names, values) = (tcp.next()?, tcp.next()?);
    let at = names.split_whitespace().position(|n| n == "PassiveOpens")?;
    values.split_whitespace().nth(at)?.parse().ok()
}

/// The same, read from this process's network namespace.
pub fn read_passive_opens() -> Option<u64> {
    passive_opens(&std::fs::read_to_string("/proc/net/snmp").ok()?)
}

//! Where the registry client may connect: never to link-local addresses (where cloud metadata
//! services live) or their well-known names, whether written as an IP or resolved from a name.

use futures::future::BoxFuture;
use hyper_util::client::legacy::connect::dns::{GaiResolver, Name};
use std::net::{IpAddr, SocketAddr};
use std::task::{Context, Poll};
use tower_service::Service;

/// A host (name or IP literal) zerodrop refuses before resolving anything.
pub fn forbidden_host(host: &str) -> bool {
    if matches!(
        host,
        "metadata.google.internal" | "metadata" | "instance-data"
    ) {
        return true;
    }
    host.parse::<IpAddr>().is_ok_and(forbidden_ip)
}

/// Link-local (169.254.0.0/16, fe80::/10, IPv4-mapped link-local), unspecified, broadcast.
pub fn forbidden_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local() || v4.is_unspecified() || v4.is_broadcast(),
        IpAddr::V6(v6) => {
            (v6.segments()[0] & 0xffc0) == 0xfe80
                || v6.is_unspecified()
                || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_link_local())
        }
    }
}

/// The addresses a name resolved to that may be connected to; none left is an error.
pub fn allowed(
    name: &str,
    addrs: impl Iterator<Item = SocketAddr>,
) -> std::io::Result<Vec<SocketAddr>> {
    let (mut kept, mut dropped) = (Vec::new(), 0);
    for addr in addrs {
        if forbidden_ip(addr.ip()) {
            dropped += 1;
        } else {
            kept.push(addr);
        }
    }
    if kept.is_empty() && dropped > 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!("{name} resolves only to link-local or metadata addresses"),
        ));
    }
    Ok(kept)
}

/// The system resolver (getaddrinfo on a blocking thread, as hyper's default), filtered.
#[derive(Clone)]
pub struct SafeResolver(GaiResolver);

impl Default for SafeResolver {
    fn default() -> Self {
        SafeResolver(GaiResolver::new())
    }
}

impl Service<Name> for SafeResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = BoxFuture<'static, std::io::Result<Self::Response>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let shown = name.as_str().to_owned();
        if forbidden_host(&shown) {
            return Box::pin(std::future::ready(Err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                format!("{shown} is a metadata address"),
            ))));
        }
        let lookup = self.0.call(name);
        Box::pin(async move { Ok(allowed(&shown, lookup.await?)?.into_iter()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_and_link_local_are_refused_as_names_literals_and_resolved_addresses() {
        for bad in [
            "169.254.169.254",
            "fe80::1",
            "metadata.google.internal",
            "0.0.0.0",
            "::ffff:169.254.1.1",
        ] {
            assert!(forbidden_host(bad), "{bad}");
        }
        for ok in ["127.0.0.1", "registry.example.com", "10.0.0.1", "::1"] {
            assert!(!forbidden_host(ok), "{ok}");
        }
        let addr = |s: &str| s.parse::<SocketAddr>().unwrap();
        let mixed = [addr("169.254.169.254:443"), addr("10.0.0.7:443")];
        assert_eq!(
            allowed("r.example", mixed.into_iter()).unwrap(),
            vec![addr("10.0.0.7:443")]
        );
        let err = allowed("evil.example", [addr("169.254.169.254:80")].into_iter()).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied);
        assert!(err.to_string().contains("evil.example"), "{err}");
    }
}

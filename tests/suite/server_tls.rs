//! Real TLS on an ephemeral port: handshake, hot reload by symlink swap under load, broken
//! pairs never replacing the working one, and client-certificate enforcement.

use crate::admission_load as support;

use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zerodrop::metrics::Metrics;
use zerodrop::server::listener::Connections;
use zerodrop::server::{Backend, CertSource, Config, Limits, Server, State};
use zerodrop_core::engine::{Capabilities, Engine};
use zerodrop_core::policy::{ClusterPolicy, Layer, Mode};

const BODY: &str = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"group":"","version":"v1","kind":"Pod"},"operation":"CREATE","namespace":"n","object":{"metadata":{"name":"p"},"spec":{"containers":[{"name":"a","image":"i"}]}}}}"#;

pub(crate) struct Pair {
    pub(crate) ca: String,
    pub(crate) cert: String,
    pub(crate) key: String,
}

pub(crate) fn pair() -> Pair {
    let b = zerodrop::certs::generate(
        &["localhost".into()],
        &["127.0.0.1".parse().unwrap()],
        time::Duration::days(3),
    )
    .unwrap();
    Pair {
        ca: b.ca_cert_pem,
        cert: b.cert_pem,
        key: b.key_pem,
    }
}

/// Lays out a Secret mount like the kubelet does: tls.crt -> ..data/tls.crt -> ..<ts>/tls.crt.
pub(crate) fn mount(dir: &Path, version: &str, cert: &str, key: &str) {
    let target = dir.join(format!("..{version}"));
    std::fs::create_dir_all(&target).unwrap();
    std::fs::write(target.join("tls.crt"), cert).unwrap();
    std::fs::write(target.join("tls.key"), key).unwrap();
    let tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(format!("..{version}"), &tmp).unwrap();
    // rename(2) over the old link is the atomic swap.
    std::fs::rename(&tmp, dir.join("..data")).unwrap();
    for f in ["tls.crt", "tls.key"] {
        if std::fs::symlink_metadata(dir.join(f)).is_err() {
            std::os::unix::fs::symlink(format!("..data/{f}"), dir.join(f)).unwrap();
        }
    }
}

async fn start(dir: &Path, client_ca: Option<PathBuf>) -> (Server, Arc<Metrics>) {
    start_with(
        dir,
        client_ca,
        Limits::default(),
        bounds(Duration::from_secs(5)),
    )
    .await
}

/// The default bounds with another header timeout.
pub(crate) fn bounds(header_timeout: Duration) -> Connections {
    Connections {
        header_timeout,
        ..Connections::DEFAULT
    }
}

pub(crate) async fn start_with(
    dir: &Path,
    client_ca: Option<PathBuf>,
    limits: Limits,
    connections: Connections,
) -> (Server, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::new());
    let backend = Backend::fixed(
        Engine::new(ClusterPolicy::default(), Capabilities::LATEST),
        Arc::new(HashMap::<String, Arc<Layer>>::new()),
        1024,
    );
    let state = Arc::new(State::new(backend, Mode::Audit, metrics.clone(), limits));
    let config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        admin_listen: "127.0.0.1:0".parse().unwrap(),
        certs: CertSource::Files {
            cert: dir.join("tls.crt"),
            key: dir.join("tls.key"),
            reload_every: Duration::from_millis(100),
        },
        client_ca,
        unknown_namespace_mode: Mode::Audit,
        shutdown_delay: Duration::ZERO,
        shutdown_timeout: Duration::from_secs(1),
        connections,
    };
    (Server::bind(config, state).await.unwrap(), metrics)
}

fn roots(cas: &[&str]) -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    for ca in cas {
        for c in CertificateDer::pem_slice_iter(ca.as_bytes()) {
            roots.add(c.unwrap()).unwrap();
        }
    }
    roots
}

fn client_config(
    cas: &[&str],
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> rustls::ClientConfig {
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots(cas))
        .with_no_client_auth()
}

/// The leaf certificate the server presents on a new connection.
async fn served_cert(port: u16, ca: &[&str]) -> Result<Vec<u8>, std::io::Error> {
    let config = client_config(ca, rustls::DEFAULT_VERSIONS);
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await?;
    Ok(tls.get_ref().1.peer_certificates().unwrap()[0].to_vec())
}

fn der(pem: &str) -> Vec<u8> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()
        .unwrap()
        .unwrap()
        .to_vec()
}

fn http_client(cas: &[&str]) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false);
    for ca in cas {
        b = b.add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).unwrap());
    }
    b.build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_with_tls12_and_tls13() {
    let dir = tempfile::tempdir().unwrap();
    let p = pair();
    mount(dir.path(), "1", &p.cert, &p.key);
    let (server, _) = start(dir.path(), None).await;
    let port = server.tls_addr.port();
    tokio::spawn(server.serve(std::future::pending()));
    for versions in [
        &[&rustls::version::TLS12][..],
        &[&rustls::version::TLS13][..],
    ] {
        let connector =
            tokio_rustls::TlsConnector::from(Arc::new(client_config(&[&p.ca], versions)));
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let tls = connector
            .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
            .await
            .unwrap();
        assert_eq!(
            tls.get_ref().1.protocol_version(),
            Some(versions[0].version)
        );
    }
    let resp = mutate(&http_client(&[&p.ca]), port).await.unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symlink_swap_reloads_under_load_and_broken_pairs_never_replace_it() {
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = (pair(), pair());
    mount(dir.path(), "1", &old.cert, &old.key);
    let (server, metrics) = start(dir.path(), None).await;
    let port = server.tls_addr.port();
    tokio::spawn(server.serve(std::future::pending()));
    let cas = [old.ca.as_str(), new.ca.as_str()];

    let load = support::Load::start(
        &http_client(&cas),
        &format!("https://localhost:{port}/mutate"),
        BODY,
        4,
    );
    tokio::time::sleep(Duration::from_millis(300)).await;

    // A half-written pair and a mismatched pair are refused; the old one keeps serving.
    let failures = |m: &Metrics| {
        let text = m.encode();
        let line = text
            .lines()
            .find(|l| l.starts_with(r#"zerodrop_certificate_reloads_total{result="failure"}"#));
        line.and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    for (version, cert, key) in [
        ("2", &new.cert[..new.cert.len() / 2], new.key.as_str()),
        ("3", &new.cert, &old.key),
    ] {
        let before = failures(&metrics);
        mount(dir.path(), version, cert, key);
        let started = Instant::now();
        while failures(&metrics) == before {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "pair {version} was not tried"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            served_cert(port, &cas).await.unwrap(),
            der(&old.cert),
            "pair {version} replaced the good one"
        );
    }

    mount(dir.path(), "4", &new.cert, &new.key);
    let swapped = Instant::now();
    while served_cert(port, &cas).await.unwrap() != der(&new.cert) {
        assert!(
            swapped.elapsed() < Duration::from_secs(2),
            "new certificate not served within the poll interval"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (ok, failed, refused) = load.finish().await;
    let failed = failed + refused;
    assert_eq!(failed, 0, "requests failed during rotation");
    assert!(ok > 50, "too little load: {ok}");
    let text = metrics.encode();
    assert!(
        text.contains(r#"zerodrop_certificate_reloads_total{result="success"} 1"#),
        "{text}"
    );
    let new_der = der(&new.cert);
    let (_, x509) = x509_parser::parse_x509_certificate(&new_der).unwrap();
    let expiry = format!(
        "zerodrop_certificate_expiry_timestamp_seconds {}",
        x509.validity().not_after.timestamp()
    );
    assert!(text.contains(&expiry), "{text}");
}

/// A client trusting `server_ca` and presenting a client certificate signed by the given CA.
/// POSTs the test review to /mutate.
async fn mutate(client: &reqwest::Client, port: u16) -> reqwest::Result<reqwest::Response> {
    client
        .post(format!("https://localhost:{port}/mutate"))
        .header("content-type", "application/json")
        .body(BODY)
        .send()
        .await
}

fn client_signed_by(server_ca: &str, ca_cert: &str, ca_key: &str) -> reqwest::Client {
    let ca_key = rcgen::KeyPair::from_pem(ca_key).unwrap();
    let issuer = rcgen::Issuer::from_ca_cert_pem(ca_cert, ca_key).unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["kube-apiserver".into()]).unwrap();
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    let identity = format!("{}{}", cert.pem(), key.serialize_pem());
    reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(server_ca.as_bytes()).unwrap())
        .identity(reqwest::Identity::from_pem(identity.as_bytes()).unwrap())
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_ca_rejects_connections_without_a_valid_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let b = zerodrop::certs::generate(&["localhost".into()], &[], time::Duration::days(1)).unwrap();
    mount(dir.path(), "1", &b.cert_pem, &b.key_pem);
    let client_ca =
        zerodrop::certs::generate(&["unused".into()], &[], time::Duration::days(1)).unwrap();
    std::fs::write(dir.path().join("client-ca.pem"), &client_ca.ca_cert_pem).unwrap();
    let (server, _) = start(dir.path(), Some(dir.path().join("client-ca.pem"))).await;
    let port = server.tls_addr.port();
    tokio::spawn(server.serve(std::future::pending()));

    let anonymous = http_client(&[&b.ca_cert_pem]);
    assert!(mutate(&anonymous, port).await.is_err());

    let stranger = zerodrop::certs::generate(&["x".into()], &[], time::Duration::days(1)).unwrap();
    let wrong = client_signed_by(&b.ca_cert_pem, &stranger.ca_cert_pem, &stranger.ca_key_pem);
    assert!(mutate(&wrong, port).await.is_err());

    let apiserver = client_signed_by(
        &b.ca_cert_pem,
        &client_ca.ca_cert_pem,
        &client_ca.ca_key_pem,
    );
    let resp = mutate(&apiserver, port).await.unwrap();
    assert_eq!(resp.status(), 200);
}

/// A raw TLS connection for writing partial requests.
pub(crate) async fn raw(
    port: u16,
    ca: &str,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    connect(port, ca).await.unwrap()
}

pub(crate) async fn connect(
    port: u16,
    ca: &str,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let connector =
        tokio_rustls::TlsConnector::from(Arc::new(client_config(&[ca], rustls::DEFAULT_VERSIONS)));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
}

/// Reads until the server answers or closes; returns what it sent and how long it took.
async fn read_all(
    conn: &mut tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
) -> (String, Duration) {
    let started = Instant::now();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), conn.read_to_end(&mut buf)).await;
    (
        String::from_utf8_lossy(&buf).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off_and_overload_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let p = pair();
    mount(dir.path(), "1", &p.cert, &p.key);
    let limits = Limits::new(1, Duration::from_millis(500));
    let (server, metrics) =
        start_with(dir.path(), None, limits, bounds(Duration::from_millis(500))).await;
    let port = server.tls_addr.port();
    tokio::spawn(server.serve(std::future::pending()));

    // Slowloris: headers never finish; the connection is closed after the header timeout.
    let mut slow = raw(port, &p.ca).await;
    slow.write_all(b"POST /mutate HTTP/1.1\r\nhost: localhost\r\n")
        .await
        .unwrap();
    let (_, took) = read_all(&mut slow).await;
    assert!(
        took < Duration::from_secs(3),
        "header timeout not enforced: {took:?}"
    );

    // A slow body holds the only slot: another request is refused with 503 at once.
    let mut holder = raw(port, &p.ca).await;
    let head = format!(
        "POST /mutate HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        BODY.len()
    );
    holder.write_all(head.as_bytes()).await.unwrap();
    holder.write_all(&BODY.as_bytes()[..10]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let client = http_client(&[&p.ca]);
    let started = Instant::now();
    let refused = mutate(&client, port).await.unwrap();
    assert_eq!(refused.status(), 503);
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "503 was not immediate"
    );
    assert!(metrics.encode().contains("zerodrop_overloaded_total 1"));

    // The slow body itself times out with a 4xx, which frees the slot.
    let (answer, took) = read_all(&mut holder).await;
    assert!(answer.starts_with("HTTP/1.1 4"), "{answer}");
    assert!(
        took < Duration::from_secs(3),
        "body timeout not enforced: {took:?}"
    );
    // Its pod went unprotected (failurePolicy Ignore): counted, not only answered.
    let text = metrics.encode();
    assert!(
        text.contains(
            r#"zerodrop_admission_requests_total{endpoint="mutate",operation="",result="body-timeout"} 1"#
        ),
        "{text}"
    );
    let ok = mutate(&client, port).await.unwrap();
    assert_eq!(ok.status(), 200);
}

//! Load generator for experiments/benchmarks/run.sh: keep-alive HTTP/1.1 over TLS with N connections for a fixed
//! duration, or fresh connections one request each. Prints one JSON line of results.
//! Usage: loadgen URL CA_FILE BODY_FILE CONNECTIONS SECONDS [fresh]

use hyper::Request;
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use std::time::{Duration, Instant};

type Sender = hyper::client::conn::http1::SendRequest<http_body_util::Full<bytes::Bytes>>;

struct Target {
    host: String,
    port: u16,
    path: String,
    connector: tokio_rustls::TlsConnector,
    body: bytes::Bytes,
}

impl Target {
    async fn connect(&self) -> anyhow::Result<Sender> {
        let tcp = tokio::net::TcpStream::connect((self.host.as_str(), self.port)).await?;
        tcp.set_nodelay(true)?;
        let name = rustls::pki_types::ServerName::try_from(self.host.clone())?;
        let tls = self.connector.connect(name, tcp).await?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
        tokio::spawn(conn);
        Ok(sender)
    }

    async fn send(&self, sender: &mut Sender) -> anyhow::Result<()> {
        let req = Request::post(self.path.as_str())
            .header("host", self.host.as_str())
            .header("content-type", "application/json")
            .body(http_body_util::Full::new(self.body.clone()))?;
        let resp = sender.send_request(req).await?;
        let ok = resp.status().is_success();
        let _ = http_body_util::BodyExt::collect(resp.into_body()).await?;
        anyhow::ensure!(ok, "non-2xx");
        Ok(())
    }
}

fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    anyhow::ensure!(
        args.len() >= 5,
        "usage: loadgen URL CA_FILE BODY_FILE CONNECTIONS SECONDS [fresh]"
    );
    let url: hyper::Uri = args[0].parse()?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::pem::PemObject::pem_file_iter(&args[1])? {
        roots.add(cert?)?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let target = Arc::new(Target {
        host: url.host().unwrap_or("127.0.0.1").to_owned(),
        port: url.port_u16().unwrap_or(443),
        path: url.path().to_owned(),
        connector: tokio_rustls::TlsConnector::from(Arc::new(config)),
        body: std::fs::read(&args[2])?.into(),
    });
    let connections: usize = args[3].parse()?;
    let seconds: f64 = args[4].parse()?;
    let fresh = args.get(5).is_some_and(|a| a == "fresh");
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let target = target.clone();
        tasks.push(tokio::spawn(async move {
            let (mut latencies, mut errors) = (Vec::new(), 0u64);
            let mut sender = None;
            while Instant::now() < deadline {
                let t = Instant::now();
                if fresh || sender.is_none() {
                    sender = target.connect().await.ok();
                }
                let result = match sender.as_mut() {
                    Some(s) => target.send(s).await,
                    None => Err(anyhow::anyhow!("connect failed")),
                };
                match result {
                    Ok(()) => latencies.push(t.elapsed().as_micros() as u32),
                    Err(_) => {
                        errors += 1;
                        sender = None;
                    }
                }
                if fresh {
                    // One request per connection, at a gentle pace: this measures setup cost.
                    sender = None;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
            (latencies, errors)
        }));
    }
    let (mut all, mut errors) = (Vec::new(), 0);
    for t in tasks {
        let (l, e) = t.await?;
        all.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_unstable();
    println!(
        "{{\"requests\":{},\"errors\":{},\"rps\":{:.1},\"p50_us\":{},\"p99_us\":{},\"p999_us\":{}}}",
        all.len(),
        errors,
        all.len() as f64 / elapsed,
        percentile(&all, 0.5),
        percentile(&all, 0.99),
        percentile(&all, 0.999)
    );
    Ok(())
}

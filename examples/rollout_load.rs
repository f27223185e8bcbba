//! Load for the node experiment (tests/node): a steady request rate to one URL, each request on
//! a new connection (so every request is routed afresh by kube-proxy), counting every failure.
//!
//! rollout_load --target HOST:PORT [--rate PER_SEC] [--timeout-ms MS]
//! Runs until SIGTERM/SIGINT or stdin closes, then prints one JSON summary on stdout:
//! {"sent", "ok", "failed", "by_kind": {kind: n}, "failures": [[ms_since_start, kind], ...]}

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper_util::rt::TokioIo;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::signal::unix::{SignalKind, signal};

/// Failures kept with their time; the counts cover all of them.
const KEEP_FAILURES: usize = 500;

#[derive(Default)]
struct Tally {
    sent: u64,
    ok: u64,
    by_kind: BTreeMap<String, u64>,
    failures: Vec<(u128, String)>,
}

async fn one(target: &str, timeout: Duration) -> Result<(), String> {
    let attempt = async {
        let stream = TcpStream::connect(target)
            .await
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::ConnectionRefused => "connect_refused".to_owned(),
                _ => format!("connect_{:?}", e.kind()).to_lowercase(),
            })?;
        let _ = stream.set_nodelay(true);
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|_| "handshake".to_owned())?;
        tokio::spawn(conn);
        let req = Request::get("/")
            .header("host", target)
            .header("connection", "close")
            .body(Empty::<Bytes>::new())
            .map_err(|e| e.to_string())?;
        let resp = sender.send_request(req).await.map_err(|e| {
            if e.is_incomplete_message() {
                "reset".to_owned()
            } else {
                "io".to_owned()
            }
        })?;
        let status = resp.status();
        resp.into_body()
            .collect()
            .await
            .map_err(|_| "body".to_owned())?;
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("status_{}", status.as_u16()))
        }
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .unwrap_or_else(|_| Err("timeout".to_owned()))
}

#[tokio::main]
async fn main() {
    let mut target = String::new();
    let mut rate = 200u64;
    let mut timeout_ms = 2000u64;
    let usage = |why: String| -> ! {
        eprintln!("rollout_load: {why}");
        std::process::exit(2);
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .unwrap_or_else(|| usage(format!("{flag} needs a value")));
        let number = |v: &str| {
            v.parse()
                .unwrap_or_else(|_| usage(format!("{flag}: not a number: {v}")))
        };
        match flag.as_str() {
            "--target" => target = value,
            "--rate" => rate = number(&value),
            "--timeout-ms" => timeout_ms = number(&value),
            _ => usage(format!("unknown flag {flag}")),
        }
    }
    if target.is_empty() || rate == 0 {
        eprintln!("rollout_load: --target HOST:PORT and a positive --rate are required");
        std::process::exit(2);
    }
    let tally = Arc::new(Mutex::new(Tally::default()));
    let started = Instant::now();
    let target: Arc<str> = target.into();
    let timeout = Duration::from_millis(timeout_ms);
    let mut tick = tokio::time::interval(Duration::from_nanos(1_000_000_000 / rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        std::process::exit(1);
    };
    // The driver stops us by closing stdin, so a driver that dies never leaves load running.
    let (closed_tx, mut stdin_closed) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        let _ = closed_tx.send(());
    });
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let (target, tally) = (target.clone(), tally.clone());
                tasks.spawn(async move {
                    let at = started.elapsed().as_millis();
                    let outcome = one(&target, timeout).await;
                    let Ok(mut t) = tally.lock() else { return };
                    t.sent += 1;
                    match outcome {
                        Ok(()) => t.ok += 1,
                        Err(kind) => {
                            *t.by_kind.entry(kind.clone()).or_default() += 1;
                            if t.failures.len() < KEEP_FAILURES {
                                t.failures.push((at, kind));
                            }
                        }
                    }
                });
                while tasks.try_join_next().is_some() {}
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = &mut stdin_closed => break,
        }
    }
    // Requests already sent get their answer (or their timeout) before the count is final.
    while tasks.join_next().await.is_some() {}
    let t = match tally.lock() {
        Ok(t) => t,
        Err(p) => p.into_inner(),
    };
    let failed: u64 = t.by_kind.values().sum();
    let summary = serde_json::json!({
        "sent": t.sent,
        "ok": t.ok,
        "failed": failed,
        "duration_ms": started.elapsed().as_millis() as u64,
        "by_kind": t.by_kind,
        "failures": t.failures,
    });
    println!("{summary}");
}

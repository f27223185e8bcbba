//! Test app for the node experiment (experiments/proof): an HTTP server with the shutdown and start-up
//! behaviours real apps have, switchable by flags, so rollouts can be measured against it.
//!
//! rollout_app [--listen ADDR] [--on-sigterm exit|drain|close-drain] [--drain-window SECS]
//!             [--ready-after SECS] [--work-ms MS]
//!   exit          leaves at once on SIGTERM (most apps)
//!   drain         stops accepting, finishes requests in flight, closes idle keep-alive
//!                 connections at once (what hyper's and Go's graceful shutdown do)
//!   close-drain   keeps serving for --drain-window (default 2 s), every answer with
//!                 `Connection: close`, then drains as `drain`: keep-alive clients learn the
//!                 connection ends from an answer instead of racing its close
//!   GET /         200 "ok <hostname>" after --work-ms, 503 while starting
//!   GET /ready    200 once started, 503 before and while draining
//!   GET /healthz  200 always

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};

struct App {
    started: Instant,
    ready_after: Duration,
    work: Duration,
    draining: AtomicBool,
    /// Answers carry `Connection: close` (close-drain's window).
    closing: AtomicBool,
    host: String,
}

impl App {
    fn starting(&self) -> bool {
        self.started.elapsed() < self.ready_after
    }

    async fn answer(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let (status, body) = match req.uri().path() {
            "/healthz" => (StatusCode::OK, "alive".to_owned()),
            "/ready" if self.starting() || self.draining.load(Ordering::Relaxed) => {
                (StatusCode::SERVICE_UNAVAILABLE, "not ready".to_owned())
            }
            "/ready" => (StatusCode::OK, "ready".to_owned()),
            // An app that listens before it has initialised fails the requests it gets.
            _ if self.starting() => (StatusCode::SERVICE_UNAVAILABLE, "starting".to_owned()),
            _ => {
                tokio::time::sleep(self.work).await;
                (StatusCode::OK, format!("ok {}", self.host))
            }
        };
        let mut resp = Response::new(Full::new(Bytes::from(body)));
        *resp.status_mut() = status;
        if self.closing.load(Ordering::Relaxed) {
            resp.headers_mut().insert(
                hyper::header::CONNECTION,
                hyper::header::HeaderValue::from_static("close"),
            );
        }
        resp
    }
}

#[derive(Clone, Copy, PartialEq)]
enum OnSigterm {
    Exit,
    Drain,
    CloseDrain,
}

struct Args {
    listen: String,
    on_sigterm: OnSigterm,
    ready_after: u64,
    work_ms: u64,
    drain_window: u64,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        listen: "0.0.0.0:8080".into(),
        on_sigterm: OnSigterm::Exit,
        ready_after: 0,
        work_ms: 20,
        drain_window: 2,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--listen" => args.listen = value,
            "--on-sigterm" => {
                args.on_sigterm = match value.as_str() {
                    "exit" => OnSigterm::Exit,
                    "drain" => OnSigterm::Drain,
                    "close-drain" => OnSigterm::CloseDrain,
                    _ => {
                        return Err(format!(
                            "--on-sigterm: exit, drain or close-drain, not {value}"
                        ));
                    }
                }
            }
            "--ready-after" => args.ready_after = value.parse().map_err(|e| format!("{e}"))?,
            "--work-ms" => args.work_ms = value.parse().map_err(|e| format!("{e}"))?,
            "--drain-window" => args.drain_window = value.parse().map_err(|e| format!("{e}"))?,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(args)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("rollout_app: {e}");
            std::process::exit(2);
        }
    };
    let app = Arc::new(App {
        started: Instant::now(),
        ready_after: Duration::from_secs(args.ready_after),
        work: Duration::from_millis(args.work_ms),
        draining: AtomicBool::new(false),
        closing: AtomicBool::new(false),
        host: std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_default(),
    });
    let listener = match TcpListener::bind(&args.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("rollout_app: listen {}: {e}", args.listen);
            std::process::exit(1);
        }
    };
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        eprintln!("rollout_app: cannot install signal handlers");
        std::process::exit(1);
    };
    // The bound address (port 0 picks one), for whoever started us.
    match listener.local_addr() {
        Ok(addr) => eprintln!("rollout_app: listening on {addr}"),
        Err(_) => eprintln!("rollout_app: listening on {}", args.listen),
    }
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let serve = |stream: tokio::net::TcpStream| {
        let app = app.clone();
        let conn = http1::Builder::new().serve_connection(
            TokioIo::new(stream),
            service_fn(move |req| {
                let app = app.clone();
                async move { Ok::<_, std::convert::Infallible>(app.answer(req).await) }
            }),
        );
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            let _ = conn.await;
        });
    };
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted { serve(stream) }
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    if args.on_sigterm == OnSigterm::Exit {
        // What most apps do: the process ends, requests in flight and queued connections fail.
        eprintln!("rollout_app: SIGTERM, exiting now");
        std::process::exit(0);
    }
    app.draining.store(true, Ordering::Relaxed);
    if args.on_sigterm == OnSigterm::CloseDrain {
        eprintln!(
            "rollout_app: SIGTERM, answering Connection: close for {}s",
            args.drain_window
        );
        app.closing.store(true, Ordering::Relaxed);
        let window = tokio::time::sleep(Duration::from_secs(args.drain_window));
        tokio::pin!(window);
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    if let Ok((stream, _)) = accepted { serve(stream) }
                }
                () = &mut window => break,
            }
        }
    }
    eprintln!("rollout_app: SIGTERM, draining");
    drop(listener);
    let _ = tokio::time::timeout(Duration::from_secs(60), graceful.shutdown()).await;
    eprintln!("rollout_app: drained, exiting");
}

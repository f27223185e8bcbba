//! `zerodrop load`: an open-loop request rate to one HTTP/1.1 target, on a new connection per
//! request or over keep-alive connections, retrying nothing, every failure classified and
//! timed: what `zerodrop verify` (and the node experiment) measure a rollout with.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// Failures kept with their time in the final summary; the counts cover all of them.
const KEEP_FAILURES: usize = 1000;
/// Failures waiting for the next progress report at most (a dead target at a high rate);
/// beyond it they are counted in `unreported`, never kept.
const PENDING_FAILURES: usize = 10_000;
/// Requests in flight at most (open loop, but a dead target cannot grow tasks without bound:
/// beyond it a tick counts as `overload` and sends nothing).
const MAX_IN_FLIGHT: usize = 4096;
/// A POST's body: small, as health-style writes are.
const POST_BODY: &[u8] = br#"{"zerodrop":"load"}"#;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Method {
    Get,
    Post,
}

/// What to send, how often and over what.
#[derive(Debug, Clone)]
pub struct Plan {
    /// `host:port` to connect to.
    pub target: String,
    pub path: String,
    /// The Host header; `None`: the target.
    pub host: Option<String>,
    pub method: Method,
    /// Requests per second, sent on schedule whatever the answers (open loop).
    pub rate: u32,
    /// Keep-alive connections reused across requests (at most `connections` of them idle);
    /// `false`: a new connection per request.
    pub keepalive: bool,
    pub connections: usize,
    pub timeout: Duration,
}

/// Why a request failed, as a client sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Failure {
    /// Nothing listens at the address (RST to SYN).
    Refused,
    /// Could not connect for another reason (unreachable, no route).
    Connect,
    /// The connection was reset.
    Reset,
    /// The connection closed before a whole response: on a reused keep-alive connection this is
    /// the race between the server closing it and the next request.
    Eof,
    /// A non-2xx answer (the code is in `status`).
    Status,
    /// No whole answer within the timeout.
    Timeout,
    /// The schedule could not send: too many requests already in flight.
    Overload,
}

impl Failure {
    /// The summary's `by_kind` key, and the JSON value.
    pub fn as_str(self) -> &'static str {
        match self {
            Failure::Refused => "refused",
            Failure::Connect => "connect",
            Failure::Reset => "reset",
            Failure::Eof => "eof",
            Failure::Status => "status",
            Failure::Timeout => "timeout",
            Failure::Overload => "overload",
        }
    }
}

/// One failure: when (ms since start), what, on a reused connection or a new one.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub at_ms: u64,
    #[serde(serialize_with = "kind")]
    pub kind: Failure,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    pub reused: bool,
}

fn kind<S: serde::Serializer>(kind: &Failure, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(kind.as_str())
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct Summary {
    /// When the first request was due, in ms since the Unix epoch: places `at_ms` on the wall
    /// clock, next to a cluster's events.
    pub started_unix_ms: u64,
    pub sent: u64,
    pub ok: u64,
    pub failed: u64,
    pub duration_ms: u64,
    pub by_kind: BTreeMap<String, u64>,
    pub failures: Vec<Event>,
    /// Failures since the last progress report (all of them, not only the first
    /// `KEEP_FAILURES`: verify places each in its rollout).
    #[serde(skip)]
    pending: Vec<Event>,
    #[serde(skip)]
    unreported: u64,
}

impl Summary {
    fn record(&mut self, event: Option<Event>) {
        self.sent += 1;
        let Some(event) = event else {
            self.ok += 1;
            return;
        };
        self.failed += 1;
        let key = match event.status {
            Some(code) => format!("status-{code}"),
            None => event.kind.as_str().to_owned(),
        };
        *self.by_kind.entry(key).or_default() += 1;
        if self.pending.len() < PENDING_FAILURES {
            self.pending.push(event.clone());
        } else {
            self.unreported += 1;
        }
        if self.failures.len() < KEEP_FAILURES {
            self.failures.push(event);
        }
    }

    /// The progress so far, handing over the failures recorded since the last call.
    fn progress(&mut self, started_unix_ms: u64, at_ms: u64) -> Progress {
        Progress {
            started_unix_ms,
            at_ms,
            sent: self.sent,
            ok: self.ok,
            failed: self.failed,
            by_kind: self.by_kind.clone(),
            unreported: self.unreported,
            failures: std::mem::take(&mut self.pending),
        }
    }
}

/// Idle keep-alive connections, shared by the request tasks.
type Pool = Arc<Mutex<Vec<SendRequest<Full<Bytes>>>>>;

/// Sends `plan` until `stop` resolves, then waits for the requests in flight (or their timeout).
pub async fn run(plan: Plan, stop: impl std::future::Future<Output = ()>) -> Summary {
    run_reporting(plan, stop, None).await
}

/// Where the load stands, every `--report-every`: counts so far (by class, adding up to
/// `failed`) and every failure recorded since the last report (what `zerodrop verify` follows
/// in the load pod's log).
#[derive(Debug, Clone, Serialize)]
pub struct Progress {
    pub started_unix_ms: u64,
    pub at_ms: u64,
    pub sent: u64,
    pub ok: u64,
    pub failed: u64,
    pub by_kind: BTreeMap<String, u64>,
    /// Failures counted but not listed, so far (more than 10,000 between two reports).
    pub unreported: u64,
    pub failures: Vec<Event>,
}

/// A progress callback and how often to call it.
pub type Reporter = (Duration, Box<dyn FnMut(Progress) + Send>);

/// `run`, calling `reporter` on its period with the progress so far.
pub async fn run_reporting(
    plan: Plan,
    stop: impl std::future::Future<Output = ()>,
    reporter: Option<Reporter>,
) -> Summary {
    let plan = Arc::new(plan);
    let summary = Arc::new(Mutex::new(Summary::default()));
    let pool: Pool = Arc::default();
    let started = Instant::now();
    let started_unix_ms = super::clock::unix_ms();
    let period = Duration::from_nanos(1_000_000_000 / u64::from(plan.rate.max(1)));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = tokio::task::JoinSet::new();
    let (every, mut report) = match reporter {
        Some((every, f)) => (every, Some(f)),
        None => (Duration::from_secs(3600), None),
    };
    let mut progress = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = progress.tick(), if report.is_some() => {
                let p = lock(&summary).progress(started_unix_ms, elapsed_ms(started));
                if let Some(f) = report.as_mut() {
                    f(p);
                }
            }
            _ = tick.tick() => {
                while tasks.try_join_next().is_some() {}
                let at_ms = elapsed_ms(started);
                if tasks.len() >= MAX_IN_FLIGHT {
                    let event = Event { at_ms, kind: Failure::Overload, status: None, reused: false };
                    lock(&summary).record(Some(event));
                    continue;
                }
                let (plan, pool, summary) = (plan.clone(), pool.clone(), summary.clone());
                tasks.spawn(async move {
                    let outcome = one(&plan, &pool).await;
                    let event = outcome.err().map(|(kind, status, reused)| Event { at_ms, kind, status, reused });
                    lock(&summary).record(event);
                });
            }
            () = &mut stop => break,
        }
    }
    while tasks.join_next().await.is_some() {}
    let mut out = lock(&summary).clone();
    out.duration_ms = elapsed_ms(started);
    out.started_unix_ms = started_unix_ms;
    out
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn elapsed_ms(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

type Outcome = Result<(), (Failure, Option<u16>, bool)>;

/// One request, on a pooled connection or a new one; never retried.
async fn one(plan: &Plan, pool: &Pool) -> Outcome {
    let reused = if plan.keepalive { checkout(pool) } else { None };
    let is_reused = reused.is_some();
    let attempt = async {
        let mut sender = match reused {
            Some(sender) => sender,
            None => connect(&plan.target).await.map_err(|f| (f, None, false))?,
        };
        let method = match plan.method {
            Method::Get => hyper::Method::GET,
            Method::Post => hyper::Method::POST,
        };
        let body = match plan.method {
            Method::Get => Bytes::new(),
            Method::Post => Bytes::from_static(POST_BODY),
        };
        let mut req = Request::builder()
            .method(method)
            .uri(plan.path.as_str())
            .header(
                hyper::header::HOST,
                plan.host.as_deref().unwrap_or(&plan.target),
            );
        if plan.method == Method::Post {
            req = req.header(hyper::header::CONTENT_TYPE, "application/json");
        }
        if !plan.keepalive {
            req = req.header(hyper::header::CONNECTION, "close");
        }
        let req = req
            .body(Full::new(body))
            .map_err(|_| (Failure::Connect, None, is_reused))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| (classify(&e), None, is_reused))?;
        let status = resp.status();
        let closing = resp
            .headers()
            .get(hyper::header::CONNECTION)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
        resp.into_body()
            .collect()
            .await
            .map_err(|e| (classify(&e), None, is_reused))?;
        // A connection the server did not close goes back for the next request.
        if plan.keepalive && !closing && sender.is_ready() {
            let mut idle = lock(pool);
            if idle.len() < plan.connections.max(1) {
                idle.push(sender);
            }
        }
        if status.is_success() {
            Ok(())
        } else {
            Err((Failure::Status, Some(status.as_u16()), is_reused))
        }
    };
    tokio::time::timeout(plan.timeout, attempt)
        .await
        .unwrap_or(Err((Failure::Timeout, None, is_reused)))
}

/// An idle connection the server has not closed. Every real client's pool drops a connection
/// once it has seen the server's FIN; what is left is the true race (a request sent while the
/// FIN is on its way), not a client that ignores what it was told.
fn checkout(pool: &Pool) -> Option<SendRequest<Full<Bytes>>> {
    let mut idle = lock(pool);
    while let Some(sender) = idle.pop() {
        if sender.is_ready() {
            return Some(sender);
        }
    }
    None
}

async fn connect(target: &str) -> Result<SendRequest<Full<Bytes>>, Failure> {
    let stream = TcpStream::connect(target)
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::ConnectionRefused => Failure::Refused,
            std::io::ErrorKind::ConnectionReset => Failure::Reset,
            _ => Failure::Connect,
        })?;
    let _ = stream.set_nodelay(true);
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| classify(&e))?;
    tokio::spawn(conn);
    Ok(sender)
}

/// hyper's error, as the client experienced it.
fn classify(e: &hyper::Error) -> Failure {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return match io.kind() {
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe => {
                    Failure::Reset
                }
                std::io::ErrorKind::ConnectionRefused => Failure::Refused,
                _ => Failure::Eof,
            };
        }
        source = err.source();
    }
    Failure::Eof
}

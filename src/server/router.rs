//! HTTP routes: the admission endpoints (TLS port) and health/metrics (admin port).

use super::limit::{self, BLOCKING_THRESHOLD, MAX_BODY, Ticket};
use super::state::State;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State as Shared;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::BytesMut;
use futures::StreamExt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower_http::catch_panic::CatchPanicLayer;
use zerodrop_core::admission::{self, Context, Endpoint, Fetch, Outcome};

/// At most this long asking the apiserver for a namespace the watch has not delivered yet.
const MAX_FETCH: Duration = Duration::from_secs(2);

/// When the apiserver gives no `?timeout=`, its own default for webhooks.
const DEFAULT_DEADLINE: Duration = Duration::from_secs(10);

pub fn admission(state: Arc<State>) -> Router {
    // One handler does what layers would (the request's bounds, the body's deadline, closing
    // when leaving): a layer costs every request an allocation or a timer, these cost one
    // only when needed.
    Router::new()
        .route("/mutate", post(admit))
        .route("/validate", post(admit))
        .layer(CatchPanicLayer::custom(on_panic))
        .with_state(state)
}

/// The apiserver's `?timeout=10s` (Go duration: `500ms`, `10s`, `1m0s`), minus a margin so the
/// answer arrives before it gives up.
pub fn deadline(query: Option<&str>) -> Duration {
    let raw = query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .find_map(|kv| kv.strip_prefix("timeout="));
    let total = raw
        .and_then(go_duration)
        .unwrap_or(DEFAULT_DEADLINE)
        .min(Duration::from_secs(30));
    total.saturating_sub((total / 10).min(Duration::from_millis(100)))
}

fn go_duration(raw: &str) -> Option<Duration> {
    let parsed: kube::core::Duration = raw.parse().ok()?;
    (!parsed.is_negative()).then(|| parsed.into())
}

pub fn admin(state: Arc<State>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// Both admission routes: the path says which endpoint. The request's slot is taken before
/// its body is read (a slow upload holds it like any request); while shutting down an answer
/// closes its connection, so the client opens its next one elsewhere instead of racing our
/// later close of an idle one.
async fn admit(Shared(state): Shared<Arc<State>>, request: axum::extract::Request) -> Response {
    // The whole request, not its parts as extractors: those would copy the headers.
    let (parts, body) = request.into_parts();
    let announced = limit::content_length(&parts.headers);
    let mut response = match limit::admit(&state, announced) {
        Some(ticket) => admitted(&state, ticket, &parts, announced, body).await,
        None => limit::refused(),
    };
    if state.shutting_down() {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

async fn admitted(
    state: &Arc<State>,
    ticket: Ticket,
    parts: &Parts,
    announced: Option<usize>,
    body: Body,
) -> Response {
    let endpoint = if parts.uri.path() == "/validate" {
        Endpoint::Validate
    } else {
        Endpoint::Mutate
    };
    let read = within(state.limits.body_timeout, read_body(body, announced)).await;
    let body = match read.unwrap_or(Err(BodyError::Late)) {
        Ok(body) => body,
        Err(e) => {
            // Not answered: the apiserver admits the pod unchanged (failurePolicy Ignore).
            state.metrics.record_error(endpoint.as_str(), e.result());
            tracing::warn!(
                endpoint = endpoint.as_str(),
                error = e.result(),
                "admission request body refused"
            );
            return e.into_response();
        }
    };
    let call = Call {
        endpoint,
        deadline: deadline(parts.uri.query()),
        ticket,
    };
    review(state.clone(), call, &parts.headers, body).await
}

/// `work` within `limit`; a body that has already arrived (the usual case) costs no timer.
async fn within<T>(limit: Duration, work: impl Future<Output = T>) -> Option<T> {
    let mut work = std::pin::pin!(work);
    let first = std::future::poll_fn(|cx| std::task::Poll::Ready(work.as_mut().poll(cx))).await;
    match first {
        std::task::Poll::Ready(done) => Some(done),
        std::task::Poll::Pending => tokio::time::timeout(limit, work).await.ok(),
    }
}

/// Why a request's body was not read.
enum BodyError {
    /// Not all of it within the body timeout, or the connection failed while sending it.
    Late,
    TooLarge,
}

impl BodyError {
    /// The `result` label of `zerodrop_admission_requests_total`.
    fn result(&self) -> &'static str {
        match self {
            BodyError::Late => "body-timeout",
            BodyError::TooLarge => "too-large",
        }
    }

    fn into_response(self) -> Response {
        match self {
            BodyError::Late => (
                StatusCode::REQUEST_TIMEOUT,
                "request body not received in time\n",
            ),
            BodyError::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "request body over 8 MiB\n"),
        }
        .into_response()
    }
}

/// The body in one buffer: the first chunk as it is when it holds the whole body (the usual
/// case, no copy), else all chunks in one buffer of the announced size, filled chunk by chunk
/// (collecting chunks and then joining them holds a large body twice).
async fn read_body(body: Body, announced: Option<usize>) -> Result<Bytes, BodyError> {
    if announced.is_some_and(|n| n > MAX_BODY) {
        return Err(BodyError::TooLarge);
    }
    let mut stream = body.into_data_stream();
    let first = match stream.next().await {
        None => return Ok(Bytes::new()),
        Some(chunk) => chunk.map_err(|_| BodyError::Late)?,
    };
    if first.len() > MAX_BODY {
        return Err(BodyError::TooLarge);
    }
    if announced == Some(first.len()) {
        return Ok(first);
    }
    let mut buf = BytesMut::with_capacity(announced.unwrap_or(0).max(first.len()));
    buf.extend_from_slice(&first);
    drop(first);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| BodyError::Late)?;
        if buf.len() + chunk.len() > MAX_BODY {
            return Err(BodyError::TooLarge);
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// One admission call: which endpoint, how long it may take, what it holds.
struct Call {
    endpoint: Endpoint,
    deadline: Duration,
    ticket: Ticket,
}

async fn review(state: Arc<State>, call: Call, headers: &HeaderMap, body: Bytes) -> Response {
    let Call {
        endpoint, deadline, ..
    } = call;
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
        });
    if !is_json {
        state
            .metrics
            .record_error(endpoint.as_str(), "unsupported-media-type");
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "content type must be application/json\n",
        )
            .into_response();
    }
    let started = Instant::now();
    let mut result = match run(&state, &call, &body, deadline).await {
        Ok(result) => result,
        Err(answered) => return answered,
    };
    if let Ok(outcome) = &result
        && outcome.unseen_namespace
    {
        // Created a moment ago, together with its workloads: ask the apiserver rather than
        // fall back to --unknown-namespace-mode, within what is left of the deadline (a
        // source that cannot ask answers at once, without a timer).
        let left = deadline.saturating_sub(started.elapsed());
        let namespace = outcome.request.namespace_name();
        let fetched = within(
            (left / 2).min(MAX_FETCH),
            state.backend().namespaces.fetch(namespace),
        )
        .await
        .unwrap_or(Fetch::Failed);
        if fetched == Fetch::Found {
            let left = deadline.saturating_sub(started.elapsed());
            result = match run(&state, &call, &body, left).await {
                Ok(result) => result,
                Err(answered) => return answered,
            };
        }
    }
    if let Ok(outcome) = &result
        && !outcome.answer.image_misses.is_empty()
        && let Some(lookup) = state.images.lookup.clone()
    {
        let budget = match endpoint {
            Endpoint::Validate => state.images.validate_budget,
            Endpoint::Mutate => state.images.mutate_budget,
        };
        let left = deadline.saturating_sub(started.elapsed());
        let wait = budget.min(left / 2);
        let misses = outcome.answer.image_misses.clone();
        let puller = outcome.answer.puller.clone().unwrap_or_default();
        let inspections = misses.iter().filter_map(|(image, platform)| {
            // Each inspection holds a warming slot, so floods of new images stay bounded.
            let slot = state.images.warming.clone().try_acquire_owned().ok()?;
            let work = lookup.inspect(image.clone(), platform.clone(), puller.clone());
            Some(tokio::spawn(async move {
                let facts = work.await;
                drop(slot);
                facts
            }))
        });
        let running: Vec<_> = inspections.collect();
        if !wait.is_zero() && !running.is_empty() {
            // Whatever finishes in time is cached; the rest goes on for the pods that follow.
            let _ = tokio::time::timeout(wait, futures::future::join_all(running)).await;
            let left = deadline.saturating_sub(started.elapsed());
            result = match run(&state, &call, &body, left).await {
                Ok(result) => result,
                Err(answered) => return answered,
            };
        }
    }
    match result {
        Ok(outcome) => {
            let elapsed = started.elapsed();
            state
                .metrics
                .record(endpoint.as_str(), &outcome, elapsed.as_secs_f64());
            log(endpoint, &outcome, elapsed.as_micros());
            json(outcome.encode())
        }
        Err(e) => {
            state.metrics.record_error(endpoint.as_str(), "bad-request");
            tracing::warn!(endpoint = endpoint.as_str(), error = %e, "rejected malformed AdmissionReview");
            (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response()
        }
    }
}

type Evaluated = Result<Outcome, admission::DecodeError>;

/// Evaluates on this worker, or off the async workers for big bodies (then bounded by
/// `deadline` and by the evaluation slots; `Err` is the answer already given).
async fn run(
    state: &Arc<State>,
    call: &Call,
    body: &Bytes,
    deadline: Duration,
) -> Result<Evaluated, Response> {
    let endpoint = call.endpoint;
    if body.len() <= BLOCKING_THRESHOLD {
        return Ok(evaluate(state, endpoint, body));
    }
    let started = Instant::now();
    let slots = state.limits.evaluations.clone();
    let Ok(Ok(slot)) = tokio::time::timeout(deadline, slots.acquire_owned()).await else {
        // Waited the whole deadline for a slot: nothing was started.
        return Err(late(state, call, body, deadline).await);
    };
    let (shared, input, held) = (state.clone(), body.clone(), call.ticket.clone());
    let work = tokio::task::spawn_blocking(move || {
        // The request's permits and the slot stay taken until this work ends, even when the
        // answer went out at the deadline: that is what bounds memory and threads.
        let _held = (held, slot);
        evaluate(&shared, endpoint, &input)
    });
    let left = deadline.saturating_sub(started.elapsed());
    match tokio::time::timeout(left, work).await {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(_)) => Err(on_panic(Box::new("evaluation task failed"))),
        Err(_) => Err(late(state, call, body, deadline).await),
    }
}

/// No decision within the apiserver's deadline: admit unchanged (as failurePolicy Ignore would,
/// but with an answer the apiserver can log) and say so. Finding the uid means parsing the
/// body, so that happens off the async workers too, in a free evaluation slot; with none free
/// the answer is 503 (the apiserver treats both alike: failurePolicy Ignore).
async fn late(state: &Arc<State>, call: &Call, body: &Bytes, deadline: Duration) -> Response {
    let endpoint = call.endpoint;
    state.metrics.record_error(endpoint.as_str(), "deadline");
    tracing::warn!(
        endpoint = endpoint.as_str(),
        ?deadline,
        "no decision within the deadline; admitted unchanged"
    );
    let Ok(slot) = state.limits.evaluations.clone().try_acquire_owned() else {
        state.metrics.overloaded.inc();
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "no decision within the deadline and no capacity to answer it\n",
        )
            .into_response();
    };
    let (input, held) = (body.clone(), call.ticket.clone());
    let uid = tokio::task::spawn_blocking(move || {
        let _held = (held, slot);
        uid_of(&input)
    })
    .await
    .ok()
    .flatten();
    let Some(uid) = uid else {
        return (
            StatusCode::BAD_REQUEST,
            "AdmissionReview request has no uid\n",
        )
            .into_response();
    };
    let response = admission::review::Response {
        allowed: true,
        warnings: vec!["zerodrop: no decision within the deadline; admitted unchanged".into()],
        ..Default::default()
    };
    json(admission::review::encode(&uid, &response))
}

fn uid_of(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Uid {
        request: Option<UidOnly>,
    }
    #[derive(serde::Deserialize)]
    struct UidOnly {
        uid: String,
    }
    serde_json::from_slice::<Uid>(body)
        .ok()?
        .request
        .map(|r| r.uid)
}

/// An encoded AdmissionReview as the response.
fn json(bytes: Vec<u8>) -> Response {
    let mut response = bytes.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn evaluate(state: &State, endpoint: Endpoint, body: &[u8]) -> Evaluated {
    let backend = state.backend();
    let ctx = Context {
        engine: &backend.engine,
        cache: Some(&backend.cache),
        namespaces: backend.namespaces.as_ref(),
        unknown_namespace_mode: state.unknown_namespace_mode,
        images: state.images.lookup.as_deref(),
        paths: backend.paths.as_deref(),
    };
    admission::handle(endpoint, body, &ctx)
}

fn log(endpoint: Endpoint, o: &Outcome, micros: u128) {
    let r = &o.request;
    tracing::info!(
        endpoint = endpoint.as_str(),
        uid = %r.uid,
        namespace = r.namespace.as_deref().unwrap_or(""),
        name = r.display_name(),
        kind = %r.kind.kind,
        operation = %r.operation,
        dry_run = r.dry_run.unwrap_or(false),
        mode = o.answer.mode.map_or("", |m| m.as_str()),
        decision = o.answer.verdict.as_str(),
        changes = %o.answer.changes.join(","),
        findings = %o.answer.findings.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(","),
        duration_us = micros as u64,
        "admission"
    );
}

fn on_panic(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("panic while handling an admission request; answered 500");
    (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response()
}

async fn readyz(Shared(state): Shared<Arc<State>>) -> Response {
    match state.not_ready_reason() {
        None => (StatusCode::OK, "ok\n").into_response(),
        Some(reason) => (StatusCode::SERVICE_UNAVAILABLE, format!("{reason}\n")).into_response(),
    }
}

async fn metrics(Shared(state): Shared<Arc<State>>) -> Response {
    state
        .metrics
        .ready
        .set(i64::from(state.not_ready_reason().is_none()));
    let mut response = state.metrics.encode().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}

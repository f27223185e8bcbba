//! Admission's bounds: a slot among the requests in flight and a share of the bytes, or 503.

use super::state::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use tokio::sync::OwnedSemaphorePermit;

/// Above what the apiserver can send: objects up to 3 MiB, plus oldObject, plus the envelope.
pub const MAX_BODY: usize = 8 * 1024 * 1024;
/// Bodies above this are evaluated off the async workers so one huge pod cannot stall others.
pub const BLOCKING_THRESHOLD: usize = 256 * 1024;

/// What a request holds while it is in flight: its place among the requests and its bytes.
/// Shared with the evaluation off the async workers, so both are given back only when the
/// work has really ended, not when the answer has been sent.
#[derive(Clone)]
pub(super) struct Ticket {
    _permits: Arc<(OwnedSemaphorePermit, OwnedSemaphorePermit)>,
}

/// Refuses at once when too many requests or too many bytes are in flight: queueing would
/// only make every answer late (the apiserver gives up after its timeout anyway).
pub(super) fn admit(state: &State, announced: Option<usize>) -> Option<Ticket> {
    // The apiserver always sends Content-Length; a body without one may be as large as any.
    let bytes = announced.unwrap_or(MAX_BODY).min(MAX_BODY);
    let kib = u32::try_from(bytes.div_ceil(1024).max(1)).unwrap_or(u32::MAX);
    let limits = &state.limits;
    let share = if bytes <= BLOCKING_THRESHOLD {
        &limits.small_kib
    } else {
        &limits.large_kib
    };
    let permits = limits
        .in_flight
        .clone()
        .try_acquire_owned()
        .ok()
        .and_then(|request| {
            let bytes = share.clone().try_acquire_many_owned(kib).ok()?;
            Some((request, bytes))
        });
    let Some(permits) = permits else {
        state.metrics.overloaded.inc();
        return None;
    };
    Some(Ticket {
        _permits: Arc::new(permits),
    })
}

/// The request's Content-Length, read once for the bound and the body's buffer.
pub(super) fn content_length(headers: &HeaderMap) -> Option<usize> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
}

/// The answer when `admit` refused.
pub(super) fn refused() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "too many admission requests or bytes in flight\n",
    )
        .into_response()
}

//! The series each admission increments, resolved once: a family's lookup hashes its labels
//! under a lock on every use, and every request would pay it several times.

use super::{CodeLabels, EndpointLabels, KindLabels, RequestLabels};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use std::borrow::Cow;
use std::sync::OnceLock;
use zerodrop_core::admission::Verdict;
use zerodrop_core::engine::Change;
use zerodrop_core::findings::Code;

const ENDPOINTS: [&str; 2] = ["mutate", "validate"];
/// The operation labels (metrics' `operation_label`).
pub(super) const OPERATIONS: [&str; 5] = ["CREATE", "UPDATE", "DELETE", "CONNECT", "other"];
/// Every `Verdict`, by its discriminant.
const VERDICTS: usize = 6;

/// Resolved on first use, so only series that happened are exported (as with the families).
#[derive(Default)]
pub(super) struct Handles {
    requests: [[[OnceLock<Counter>; VERDICTS]; OPERATIONS.len()]; ENDPOINTS.len()],
    mutations: [OnceLock<Counter>; Change::KINDS.len()],
    findings: [OnceLock<Counter>; Code::ALL.len()],
    duration: [OnceLock<Histogram>; ENDPOINTS.len()],
}

fn endpoint_index(endpoint: &str) -> usize {
    ENDPOINTS.iter().position(|e| *e == endpoint).unwrap_or(0)
}

/// The resolved series, or the family's own when no slot was made for the labels (a variant
/// added without a slot is still counted, only not resolved in advance).
pub(super) type Series<'a> = Cow<'a, Counter>;

impl Handles {
    pub(super) fn request(
        &self,
        family: &Family<RequestLabels, Counter>,
        endpoint: &'static str,
        operation: &'static str,
        verdict: Verdict,
    ) -> Series<'_> {
        let labels = || RequestLabels {
            endpoint,
            operation,
            result: verdict.as_str(),
        };
        let slot = OPERATIONS
            .iter()
            .position(|o| *o == operation)
            .and_then(|op| self.requests[endpoint_index(endpoint)][op].get(verdict as usize));
        match slot {
            Some(slot) => {
                Cow::Borrowed(slot.get_or_init(|| family.get_or_create(&labels()).clone()))
            }
            None => Cow::Owned(family.get_or_create(&labels()).clone()),
        }
    }

    pub(super) fn mutation(
        &self,
        family: &Family<KindLabels, Counter>,
        kind: &'static str,
    ) -> Series<'_> {
        let resolve = || family.get_or_create(&KindLabels { kind }).clone();
        match Change::KINDS.iter().position(|k| *k == kind) {
            Some(i) => Cow::Borrowed(self.mutations[i].get_or_init(resolve)),
            None => Cow::Owned(resolve()),
        }
    }

    pub(super) fn finding(&self, family: &Family<CodeLabels, Counter>, code: Code) -> Series<'_> {
        let resolve = || {
            let code = code.as_str();
            family.get_or_create(&CodeLabels { code }).clone()
        };
        match Code::ALL.iter().position(|c| *c == code) {
            Some(i) => Cow::Borrowed(self.findings[i].get_or_init(resolve)),
            None => Cow::Owned(resolve()),
        }
    }

    pub(super) fn duration(
        &self,
        family: &Family<EndpointLabels, Histogram>,
        endpoint: &'static str,
    ) -> &Histogram {
        let i = endpoint_index(endpoint);
        self.duration[i].get_or_init(|| {
            let endpoint = ENDPOINTS[i];
            family.get_or_create(&EndpointLabels { endpoint }).clone()
        })
    }
}

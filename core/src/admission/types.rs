//! The admission module's shared types: what the handler, the cache, the router and the
//! namespace sources all speak.

use super::review::{Encoded, Request, Response};
use crate::engine::image::{ImageFacts, Platform};
use crate::findings::Code;
use crate::paths::Paths;
use crate::policy::{Layer, Mode};
use std::collections::HashMap;
use std::sync::Arc;

/// A boxed future, as the lookups return it (the core names no async runtime).
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// Pods: the engine's patch.
    Mutate,
    /// Workloads: warnings about what will happen to their pods; never a patch.
    Validate,
}

impl Endpoint {
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::Mutate => "mutate",
            Endpoint::Validate => "validate",
        }
    }
}

/// The namespace layer, from whatever knows the cluster's namespaces. Shared, not rebuilt:
/// it is asked on every admission.
pub trait NamespaceLookup: Send + Sync {
    /// `None` when the namespace is not known (cache not synced, or created a moment ago).
    fn layer(&self, namespace: &str) -> Option<Arc<Layer>>;

    /// Asks the source of truth for a namespace `layer` does not know: a namespace applied
    /// together with its workloads reaches admission before the watch delivers it. After
    /// `Found`, `layer` knows it. Fixed sets have nothing to ask.
    fn fetch(&self, _namespace: &str) -> BoxFuture<'static, Fetch> {
        Box::pin(std::future::ready(Fetch::Unsupported))
    }
}

/// Image facts for the webhook: what is known already (no waiting), and an inspection to run
/// (with a budget, by whoever calls) for what is not. Facts read with a namespace's pull
/// secrets are known to that namespace only.
pub trait ImageLookup: Send + Sync {
    fn cached(&self, image: &str, platform: &Platform, namespace: &str) -> Option<ImageFacts>;
    /// Changes whenever `cached` may answer differently (a fact stored, one expiring): answers
    /// found under one generation hold while it lasts.
    fn generation(&self) -> u64;
    fn inspect(
        &self,
        image: String,
        platform: Platform,
        puller: Arc<Puller>,
    ) -> BoxFuture<'static, ImageFacts>;
}

/// What routes to a pod, from an index kept in memory (paths::PathIndex behind the server's
/// watches): answered at once, never by asking the apiserver.
pub trait PathLookup: Send + Sync {
    fn paths(
        &self,
        namespace: &str,
        labels: Option<&serde_json::Map<String, serde_json::Value>>,
    ) -> Paths;

    /// Changes whenever the index does: answers found under one generation hold while it lasts.
    fn generation(&self) -> u64;
}

/// A fixed index (the offline audit's, tests') answers like the server's watched one.
impl PathLookup for crate::paths::PathIndex {
    fn paths(
        &self,
        namespace: &str,
        labels: Option<&serde_json::Map<String, serde_json::Value>>,
    ) -> Paths {
        self.lookup(namespace, labels)
    }

    fn generation(&self) -> u64 {
        self.version()
    }
}

/// Who pulls a pod's images, as its kubelet will: the pod's namespace and pull secrets. A pod
/// template naming none gets its ServiceAccount's when each pod is created (the ServiceAccount
/// admission plugin copies them in, before webhooks run), so for templates that account is
/// named too.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Puller {
    pub namespace: String,
    pub secrets: Vec<String>,
    pub service_account: Option<String>,
}

/// At most this many pull secrets are read for one pod (the kubelet tries them all; a pod
/// listing more is unusual, and each costs an apiserver call).
pub const MAX_PULL_SECRETS: usize = 8;

impl Puller {
    pub fn of(template: &serde_json::Value, namespace: &str, is_pod: bool) -> Puller {
        use crate::engine::pod;
        let secrets: Vec<String> = pod::at(template, &["spec", "imagePullSecrets"])
            .and_then(serde_json::Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|s| s.get("name")?.as_str())
            .filter(|s| !s.is_empty())
            .take(MAX_PULL_SECRETS)
            .map(str::to_owned)
            .collect();
        let service_account = (!is_pod && secrets.is_empty()).then(|| {
            ["serviceAccountName", "serviceAccount"]
                .iter()
                .find_map(|k| pod::at(template, &["spec", k])?.as_str())
                .filter(|s| !s.is_empty())
                .unwrap_or("default")
                .to_owned()
        });
        Puller {
            namespace: namespace.to_owned(),
            secrets,
            service_account,
        }
    }
}

/// What asking for an unknown namespace gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fetch {
    Found,
    /// The apiserver has no such namespace.
    Absent,
    /// The apiserver could not be asked or did not answer.
    Failed,
    Unsupported,
}

impl Fetch {
    pub fn as_str(self) -> &'static str {
        match self {
            Fetch::Found => "found",
            Fetch::Absent => "absent",
            Fetch::Failed => "failed",
            Fetch::Unsupported => "unsupported",
        }
    }
}

/// A fixed set of namespaces, for standalone runs and tests.
impl NamespaceLookup for HashMap<String, Arc<Layer>> {
    fn layer(&self, namespace: &str) -> Option<Arc<Layer>> {
        self.get(namespace).cloned()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Not ours: other kind, operation or subresource.
    Ignored,
    /// Out of scope (mode off, Job pod, ...).
    Skipped,
    Unchanged,
    Mutated,
    /// Audit mode with something to change.
    WouldMutate,
    /// Validate endpoint: warnings only.
    Advised,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ignored => "ignored",
            Verdict::Skipped => "skipped",
            Verdict::Unchanged => "unchanged",
            Verdict::Mutated => "mutated",
            Verdict::WouldMutate => "would-mutate",
            Verdict::Advised => "advised",
        }
    }
}

/// Everything of an outcome that does not depend on the request: the decision cache keeps it
/// and every request answered alike shares it.
#[derive(Debug)]
pub struct Answer {
    /// The response, encoded once (all a request needs of it is its bytes).
    pub encoded: Encoded,
    pub verdict: Verdict,
    pub mode: Option<Mode>,
    pub changes: Vec<&'static str>,
    pub findings: Vec<Code>,
    /// The images not known when it was computed, and who pulls them: a hit without lookups
    /// still has their inspections started (and waited for, within the budget).
    pub image_misses: Vec<(String, Platform)>,
    pub puller: Option<Arc<Puller>>,
}

impl Answer {
    /// Allowed, nothing to say: for requests the endpoint does not decide on (one, shared).
    pub fn ignored() -> Arc<Answer> {
        static IGNORED: std::sync::LazyLock<Arc<Answer>> = std::sync::LazyLock::new(|| {
            let response = Response {
                allowed: true,
                ..Response::default()
            };
            Arc::new(Answer {
                encoded: Encoded::of(&response),
                verdict: Verdict::Ignored,
                mode: None,
                changes: Vec::new(),
                findings: Vec::new(),
                image_misses: Vec::new(),
                puller: None,
            })
        });
        IGNORED.clone()
    }
}

/// The request and its answer: what the response, the log line and the metrics need.
pub struct Outcome {
    pub request: Request,
    pub answer: Arc<Answer>,
    /// Answered from the decision cache.
    pub cached: bool,
    /// `NamespaceLookup` did not know the request's namespace: decided with
    /// `unknown_namespace_mode`.
    pub unseen_namespace: bool,
}

impl Outcome {
    /// The AdmissionReview to send back.
    pub fn encode(&self) -> Vec<u8> {
        self.answer.encoded.with_uid(&self.request.uid)
    }
}

//! What each endpoint does with a decoded request; no I/O, so the router and tests share it.

use super::cache::{DecisionCache, Generations, Key};
use super::response::{self, Advice};
use super::review::{self, DecodeError, Encoded, Request, Response};
use super::types::{
    Answer, Endpoint, ImageLookup, NamespaceLookup, Outcome, PathLookup, Puller, Verdict,
};
use crate::engine::image::{Images, Platform};
use crate::engine::{Decision, Engine, Facts, Workload, pod};
use crate::policy::{Layer, Mode, Partial};
use serde_json::Value;
use std::sync::{Arc, LazyLock};

pub struct Context<'a> {
    pub engine: &'a Engine,
    /// Answers of identical requests (None: always evaluate).
    pub cache: Option<&'a DecisionCache>,
    pub namespaces: &'a dyn NamespaceLookup,
    /// Mode for namespaces we cannot see: the webhook was called, so the namespace opted in,
    /// but whether to enforce or audit is unknown.
    pub unknown_namespace_mode: Mode,
    /// Known image facts (None: image inspection is off).
    pub images: Option<&'a dyn ImageLookup>,
    /// What routes to pods (None: no index, the sleep is `prestop-sleep`).
    pub paths: Option<&'a dyn PathLookup>,
}

pub fn handle(endpoint: Endpoint, body: &[u8], ctx: &Context<'_>) -> Result<Outcome, DecodeError> {
    let request = review::decode(body)?;
    let Some((workload, object, template)) = subject(endpoint, &request) else {
        return Ok(Outcome {
            request,
            answer: Answer::ignored(),
            cached: false,
            unseen_namespace: false,
        });
    };
    let namespace = request.namespace_name();
    let known = ctx.namespaces.layer(namespace);
    let unseen_namespace = known.is_none();
    let layer = known.unwrap_or_else(|| unknown_namespace(ctx.unknown_namespace_mode));
    let key = Key {
        endpoint,
        workload,
        namespace,
        layer: &layer,
        object,
        template,
        // Read before the facts: a change in between leaves the entry older, never newer.
        generations: Generations {
            images: ctx.images.map_or(0, |l| l.generation()),
            paths: ctx.paths.map_or(0, |p| p.generation()),
        },
        size: body.len(),
    };
    let (answer, cached) = decide(ctx, &key);
    Ok(Outcome {
        answer,
        cached,
        unseen_namespace,
        request,
    })
}

/// The answer for `key`: the decision cache's when it has one for it (current, or for the
/// same facts), else evaluated and stored. `true` when it came from the cache.
fn decide(ctx: &Context<'_>, key: &Key<'_>) -> (Arc<Answer>, bool) {
    let mut miss = None;
    if let Some(cache) = ctx.cache {
        match cache.current(key) {
            Ok(hit) => return (hit, true),
            Err(m) => miss = Some(m),
        }
    }
    let (template, namespace) = (key.template, key.namespace);
    let (images, image_misses) = known_images(ctx.images, template, namespace);
    let puller = (!image_misses.is_empty()).then(|| {
        let is_pod = key.endpoint == Endpoint::Mutate;
        Arc::new(Puller::of(template, namespace, is_pod))
    });
    let paths = ctx.paths.map(|index| {
        let labels = pod::at(template, &["metadata", "labels"]).and_then(Value::as_object);
        index.paths(namespace, labels)
    });
    let facts = Facts {
        images: &images,
        paths: paths.as_ref(),
    };
    if let (Some(cache), Some(m)) = (ctx.cache, miss.take()) {
        match cache.get(m, key, facts) {
            Ok(hit) => return (hit, true),
            Err(m) => miss = Some(m),
        }
    }
    let decision = ctx
        .engine
        .evaluate_with(template, key.workload, key.layer, facts);
    let mut response = Response {
        allowed: true,
        ..Response::default()
    };
    let verdict = match key.endpoint {
        Endpoint::Mutate => mutate(&decision, &mut response),
        Endpoint::Validate => validate(&decision, &mut response),
    };
    let answer = Arc::new(Answer {
        encoded: Encoded::of(&response),
        verdict,
        mode: Some(decision.mode),
        changes: decision.changes.iter().map(|c| c.kind()).collect(),
        findings: decision.findings.iter().map(|f| f.code).collect(),
        image_misses,
        puller,
    });
    if let (Some(cache), Some(miss)) = (ctx.cache, miss) {
        cache.put(miss, key, facts, answer.clone());
    }
    (answer, false)
}

/// The object a request is about and the pod (template) in it, or `None` when the endpoint
/// ignores it.
fn subject(endpoint: Endpoint, req: &Request) -> Option<(Workload, &Arc<Value>, &Value)> {
    if req.sub_resource.as_deref().is_some_and(|s| !s.is_empty()) {
        return None;
    }
    let object = req.object.as_ref()?;
    match endpoint {
        Endpoint::Mutate => {
            let is_pod = req.kind.group.is_empty() && req.kind.kind == "Pod";
            (is_pod && req.operation == "CREATE").then_some((Workload::Pod, object, object))
        }
        Endpoint::Validate => {
            if !matches!(req.operation.as_str(), "CREATE" | "UPDATE") {
                return None;
            }
            // Workloads of apps and batch (what the ValidatingWebhookConfiguration sends).
            let workload = Workload::from_kind(&req.kind.kind).filter(|w| {
                matches!(w.api_group(), "apps" | "batch") && w.api_group() == req.kind.group
            })?;
            Some((workload, object, pod::at(object, workload.template_path())?))
        }
    }
}

/// The facts known for the template's images, and the images still to inspect.
fn known_images(
    lookup: Option<&dyn ImageLookup>,
    template: &Value,
    namespace: &str,
) -> (Images, Vec<(String, Platform)>) {
    let (mut known, mut misses) = (Images::new(), Vec::new());
    let Some(lookup) = lookup else {
        return (known, misses);
    };
    let (images, platform) = crate::engine::image::images_of(template);
    for image in images {
        match lookup.cached(image, &platform, namespace) {
            Some(facts) => {
                known.insert(image.to_owned(), facts);
            }
            None => misses.push((image.to_owned(), platform.clone())),
        }
    }
    (known, misses)
}

/// The layer of a namespace `NamespaceLookup` does not know: only the mode, shared (every
/// request of a namespace not seen yet would otherwise build and compare its own).
fn unknown_namespace(mode: Mode) -> Arc<Layer> {
    static LAYERS: LazyLock<[Arc<Layer>; 3]> = LazyLock::new(|| {
        Mode::ALL.map(|mode| {
            Arc::new(Layer {
                all: Partial {
                    mode: Some(mode),
                    ..Partial::default()
                },
                ..Layer::default()
            })
        })
    });
    let i = Mode::ALL
        .iter()
        .position(|m| *m == mode)
        .unwrap_or_default();
    LAYERS[i].clone()
}

fn mutate(decision: &Decision, response: &mut Response) -> Verdict {
    response.warnings = response::warnings(decision, Advice::Pod);
    if decision.skipped.is_some() {
        return Verdict::Skipped;
    }
    response.audit_annotations = response::audit_annotations(decision);
    if decision.patch.0.is_empty() {
        return Verdict::Unchanged;
    }
    match decision.mode {
        Mode::Enforce => match response::encode_patch(&decision.patch) {
            Some(patch) => {
                response.patch_type = Some("JSONPatch");
                response.patch = Some(patch);
                Verdict::Mutated
            }
            None => Verdict::Unchanged,
        },
        Mode::Audit => Verdict::WouldMutate,
        Mode::Off => Verdict::Skipped,
    }
}

fn validate(decision: &Decision, response: &mut Response) -> Verdict {
    if decision.skipped.is_some() {
        return Verdict::Skipped;
    }
    response.warnings = response::warnings(decision, Advice::Workload);
    Verdict::Advised
}

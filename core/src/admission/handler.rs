//! What each endpoint does with a decoded request; no I/O, so the router and tests share it.

use super::cache::{Answer, DecisionCache, Generations, Key};
use super::response::{self, Advice};
use super::review::{self, DecodeError, Request, Response};
use super::types::{Endpoint, ImageLookup, NamespaceLookup, Outcome, PathLookup, Puller, Verdict};
use crate::engine::image::{Images, Platform};
use crate::engine::{Decision, Engine, Facts, Workload, pod};
use crate::policy::{Layer, Mode, Partial};
use serde_json::Value;
use std::sync::Arc;

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
    let response = Response {
        uid: request.uid.clone(),
        allowed: true,
        ..Response::default()
    };
    let mut outcome = Outcome {
        response,
        request,
        verdict: Verdict::Ignored,
        mode: None,
        changes: Vec::new(),
        findings: Vec::new(),
        cached: false,
        unseen_namespace: None,
        image_misses: Vec::new(),
        puller: None,
    };
    let Some((workload, object, template)) = subject(endpoint, &outcome.request) else {
        return Ok(outcome);
    };
    let (namespace, known) = namespace_layer(ctx, &outcome.request);
    let layer = known.unwrap_or_else(|| {
        outcome.unseen_namespace = Some(namespace.to_owned());
        Arc::new(Layer {
            all: Partial {
                mode: Some(ctx.unknown_namespace_mode),
                ..Partial::default()
            },
            ..Layer::default()
        })
    });
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
    let mut miss = None;
    if let Some(cache) = ctx.cache {
        match cache.current(&key) {
            Ok(hit) => return Ok(answered(outcome, &hit)),
            Err(m) => miss = Some(m),
        }
    }
    let (images, misses) = known_images(ctx.images, template, namespace);
    if !misses.is_empty() {
        let is_pod = endpoint == Endpoint::Mutate;
        outcome.puller = Some(Arc::new(Puller::of(template, namespace, is_pod)));
    }
    outcome.image_misses = misses;
    let paths = ctx.paths.map(|index| {
        let labels = pod::at(template, &["metadata", "labels"]).and_then(Value::as_object);
        index.paths(namespace, labels)
    });
    let facts = Facts {
        images: &images,
        paths: paths.as_ref(),
    };
    if let (Some(cache), Some(m)) = (ctx.cache, miss.take()) {
        match cache.get(m, &key, facts) {
            Ok(hit) => return Ok(answered(outcome, &hit)),
            Err(m) => miss = Some(m),
        }
    }
    let decision = ctx.engine.evaluate_with(template, workload, &layer, facts);
    outcome.mode = Some(decision.mode);
    outcome.changes = decision.changes.iter().map(|c| c.kind()).collect();
    outcome.findings = decision.findings.iter().map(|f| f.code).collect();
    outcome.verdict = match endpoint {
        Endpoint::Mutate => mutate(&decision, &mut outcome.response),
        Endpoint::Validate => validate(&decision, &mut outcome.response),
    };
    if let (Some(cache), Some(miss)) = (ctx.cache, miss) {
        let answer = Answer {
            response: Response {
                uid: String::new(),
                ..outcome.response.clone()
            },
            verdict: outcome.verdict,
            mode: outcome.mode,
            changes: outcome.changes.clone(),
            findings: outcome.findings.clone(),
            image_misses: outcome.image_misses.clone(),
            puller: outcome.puller.clone(),
        };
        cache.put(miss, &key, facts, answer);
    }
    Ok(outcome)
}

/// The outcome of a request answered from the decision cache: the stored answer with this
/// request's uid.
fn answered(mut outcome: Outcome, hit: &Answer) -> Outcome {
    let uid = std::mem::take(&mut outcome.response.uid);
    outcome.response = Response {
        uid,
        ..hit.response.clone()
    };
    outcome.verdict = hit.verdict;
    outcome.mode = hit.mode;
    outcome.changes.clone_from(&hit.changes);
    outcome.findings.clone_from(&hit.findings);
    outcome.image_misses.clone_from(&hit.image_misses);
    outcome.puller.clone_from(&hit.puller);
    outcome.cached = true;
    outcome
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

fn namespace_layer<'r>(ctx: &Context<'_>, req: &'r Request) -> (&'r str, Option<Arc<Layer>>) {
    let namespace = req
        .namespace
        .as_deref()
        .or_else(|| {
            req.object
                .as_ref()?
                .pointer("/metadata/namespace")?
                .as_str()
        })
        .unwrap_or_default();
    (namespace, ctx.namespaces.layer(namespace))
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

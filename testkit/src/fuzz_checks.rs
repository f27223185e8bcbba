//! What must hold for any input; shared by the fuzz targets and by tests/suite/fuzz_corpus.rs, which
//! replays the saved corpus on every CI run.

use base64::Engine as _;
use serde_json::Value;
use std::collections::HashMap;
use zerodrop_core::admission::{Context, Endpoint, handle};
use zerodrop_core::engine::{Capabilities, Engine};
use zerodrop_core::findings::MAX_MESSAGE;
use zerodrop_core::policy::{ClusterPolicy, Layer, Mode, Setting, Source, duration};

/// Any body: a DecodeError with a reason, or a valid response whose patch applies.
pub fn admission_body(data: &[u8]) {
    let engine = Engine::new(ClusterPolicy::default(), Capabilities::LATEST);
    let namespaces: HashMap<String, std::sync::Arc<Layer>> = HashMap::new();
    let ctx = Context {
        engine: &engine,
        cache: None,
        namespaces: &namespaces,
        unknown_namespace_mode: Mode::Enforce,
        images: None,
        paths: None,
    };
    for endpoint in [Endpoint::Mutate, Endpoint::Validate] {
        match handle(endpoint, data, &ctx) {
            Err(e) => assert!(!e.to_string().is_empty()),
            Ok(outcome) => {
                let bytes = outcome.encode();
                let answer: Value = serde_json::from_slice(&bytes).expect("response is JSON");
                assert_eq!(answer["response"]["allowed"], true);
                assert_eq!(
                    answer["response"]["uid"],
                    Value::String(outcome.request.uid.clone())
                );
                let warnings = answer["response"]["warnings"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                assert!(warnings.len() <= 8);
                assert!(
                    warnings
                        .iter()
                        .all(|w| w.as_str().is_some_and(|w| w.chars().count() <= MAX_MESSAGE))
                );
                if let Some(p) = answer["response"]["patch"].as_str() {
                    assert_eq!(endpoint, Endpoint::Mutate);
                    let raw = base64::engine::general_purpose::STANDARD
                        .decode(p)
                        .expect("base64");
                    let patch: json_patch::Patch = serde_json::from_slice(&raw).expect("patch");
                    // Fields zerodrop does not read are skipped, not validated (a bad \u escape in
                    // one is tolerated); when the whole body is valid JSON the patch must apply to it.
                    if let Ok(full) = serde_json::from_slice::<Value>(data) {
                        let mut object = full["request"]["object"].clone();
                        json_patch::patch(&mut object, &patch)
                            .expect("patch applies to the whole object");
                    }
                }
            }
        }
    }
}

/// Any text as a policy value, a duration, or an annotation key=value: never a panic.
pub fn policy_values(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = duration::parse_seconds(&text);
    let _ = duration::parse_up_to(&text, u64::MAX);
    for setting in Setting::ALL {
        let mut p = zerodrop_core::policy::Partial::default();
        let _ = setting.parse_into(&text, &mut p);
    }
    let (key, value) = text.split_once('=').unwrap_or((&text, ""));
    let layer = Layer::from_annotations(Source::Pod, [(key, value)]);
    assert!(
        layer
            .findings
            .iter()
            .all(|f| f.message.chars().count() <= MAX_MESSAGE)
    );
    let _ = Layer::for_namespace(Some(value), [(key, value)]);
    let _ = ClusterPolicy::from_yaml(&text);
}

/// Any bytes as what the image inspector parses: a reference, a manifest or index, an image
/// config, a layer (tar, gzip or zstd), an entrypoint script. Errors are fine, panics are not;
/// bounds hold.
pub fn image_inputs(data: &[u8]) {
    use zerodrop::images::{layers, manifest, reference::Reference};
    let text = String::from_utf8_lossy(data);
    if let Ok(r) = Reference::parse(&text) {
        assert!(!r.repository.is_empty());
        assert!(r.tag.is_some() || r.digest.is_some());
    }
    let _ = manifest::parse_manifest(data);
    let _ = manifest::parse_config(data);
    match zerodrop_core::engine::image::classify_script(&text) {
        zerodrop_core::engine::image::Script::HandsOver => {}
        zerodrop_core::engine::image::Script::Keeps { line, .. } => {
            assert!(line <= text.lines().count())
        }
    }
    let wanted = vec!["bin/sh".to_owned(), "start.sh".to_owned()];
    if let Ok(found) = layers::scan(data, &wanted, 1 << 20, 4096) {
        for (path, entry) in found {
            assert!(wanted.contains(&path));
            if let layers::Entry::File(bytes) = entry {
                assert!(bytes.len() <= 4096);
            }
        }
    }
}

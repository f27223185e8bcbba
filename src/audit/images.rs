//! The images of the workloads the cluster audit reads, inspected as their pods' kubelets would
//! pull them (each workload's own pull secrets), 8 at a time, one page at a time.

use serde_json::Value;
use std::sync::Arc;
use zerodrop_core::admission::{ImageLookup, Puller};
use zerodrop_core::engine::Workload;
use zerodrop_core::engine::image::{Images, images_of};

/// Inspections under way at once (the inspector's cache and singleflight share the rest).
const AT_ONCE: usize = 8;

/// What is known of each object's images, in the objects' order; with `inspect`, images the
/// lookup does not know yet are inspected, else left out (nothing is said about them).
pub async fn of_page(
    lookup: &dyn ImageLookup,
    namespace: &str,
    objs: &[Value],
    inspect: bool,
) -> Vec<Images> {
    let mut out = Vec::with_capacity(objs.len());
    for chunk in objs.chunks(AT_ONCE) {
        let each: Vec<_> = chunk
            .iter()
            .map(|obj| of_object(lookup, namespace, obj, inspect))
            .collect();
        out.extend(futures::future::join_all(each).await);
    }
    out
}

async fn of_object(
    lookup: &dyn ImageLookup,
    namespace: &str,
    obj: &Value,
    inspect: bool,
) -> Images {
    let mut known = Images::new();
    let Some(workload) = obj
        .get("kind")
        .and_then(Value::as_str)
        .and_then(Workload::from_kind)
    else {
        return known;
    };
    let Some(template) = zerodrop_core::engine::pod::at(obj, workload.template_path()) else {
        return known;
    };
    let (images, platform) = images_of(template);
    let puller = Arc::new(Puller::of(template, namespace, workload == Workload::Pod));
    for image in images {
        let facts = match lookup.cached(image, &platform, namespace) {
            Some(facts) => facts,
            None if inspect => {
                lookup
                    .inspect(image.to_owned(), platform.clone(), puller.clone())
                    .await
            }
            None => continue,
        };
        known.insert(image.to_owned(), facts);
    }
    known
}

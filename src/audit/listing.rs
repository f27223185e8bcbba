//! Reading the cluster for the audits: namespaces as policy scopes (metadata only), and
//! collections page by page, so memory stays bounded whatever the cluster's size.

use k8s_openapi::api::core::v1::Namespace;
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, PartialObjectMeta, TypeMeta};
use serde_json::Value;
use zerodrop_core::policy::{Layer, MODE_LABEL};

/// A namespace as the audit needs it: its policy layer and when it opted in.
pub struct Scope {
    pub name: String,
    pub label: Option<String>,
    pub layer: Layer,
    /// When the `zerodrop.dev/mode` label was last written (its managedFields entry).
    pub opted_in_at: Option<i64>,
}

const PAGE: u32 = 500;

/// A collection read page by page (kube's paging), each item as JSON with every field the
/// server sent; only one page is held at a time.
pub struct Pages<'a> {
    api: &'a Api<DynamicObject>,
    resource: &'a ApiResource,
    params: Option<ListParams>,
}

impl<'a> Pages<'a> {
    pub fn new(api: &'a Api<DynamicObject>, resource: &'a ApiResource) -> Pages<'a> {
        let params = Some(ListParams::default().limit(PAGE));
        Pages {
            api,
            resource,
            params,
        }
    }

    /// The next page, `None` after the last.
    pub async fn next(&mut self) -> Result<Option<Vec<Value>>, kube::Error> {
        let Some(params) = self.params.take() else {
            return Ok(None);
        };
        let page = self.api.list(&params).await?;
        if let Some(token) = page.metadata.continue_.filter(|t| !t.is_empty()) {
            self.params = Some(params.continue_token(&token));
        }
        let mut items = Vec::with_capacity(page.items.len());
        for mut item in page.items {
            // List items carry no apiVersion/kind; put them back so reports are self-describing.
            item.types = Some(TypeMeta {
                api_version: self.resource.api_version.clone(),
                kind: self.resource.kind.clone(),
            });
            items.push(serde_json::to_value(item).map_err(kube::Error::SerdeError)?);
        }
        Ok(Some(items))
    }
}

/// The namespaces to audit (metadata only, paged, those `selector` matches), or the one named.
pub async fn scopes(
    client: &Client,
    only: Option<&str>,
    selector: Option<&str>,
) -> Result<Vec<Scope>, kube::Error> {
    let api: Api<Namespace> = Api::all(client.clone());
    let mut out = Vec::new();
    if let Some(name) = only {
        out.push(scope(&api.get_metadata(name).await?));
        return Ok(out);
    }
    let mut params = ListParams::default().limit(PAGE);
    if let Some(selector) = selector {
        params = params.labels(selector);
    }
    loop {
        let page = api.list_metadata(&params).await?;
        out.extend(page.items.iter().map(scope));
        match page.metadata.continue_.filter(|t| !t.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(out),
        }
    }
}

fn scope(ns: &PartialObjectMeta<Namespace>) -> Scope {
    let meta = &ns.metadata;
    let label = meta
        .labels
        .as_ref()
        .and_then(|l| l.get(MODE_LABEL))
        .cloned();
    let pairs = meta
        .annotations
        .iter()
        .flatten()
        .map(|(k, v)| (k.as_str(), v.as_str()));
    let opted_in_at = meta
        .managed_fields
        .iter()
        .flatten()
        .filter(|f| {
            f.fields_v1
                .as_ref()
                .and_then(|v| v.0.pointer("/f:metadata/f:labels"))
                .and_then(|labels| labels.get(format!("f:{MODE_LABEL}")))
                .is_some()
        })
        .filter_map(|f| Some(f.time.as_ref()?.0.as_second()))
        .max();
    Scope {
        name: meta.name.clone().unwrap_or_default(),
        layer: Layer::for_namespace(label.as_deref(), pairs),
        label,
        opted_in_at,
    }
}

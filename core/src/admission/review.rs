//! AdmissionReview v1 wire types: decoded leanly, the object kept as raw JSON.

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use std::sync::Arc;

pub const API_VERSION: &str = "admission.k8s.io/v1";
pub const KIND: &str = "AdmissionReview";

/// Why a body is not an AdmissionReview we can answer; each becomes a 4xx with this text.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("body is not valid JSON: {0}")]
    Json(String),
    #[error("apiVersion must be {API_VERSION}, got {0:?}")]
    ApiVersion(String),
    #[error("kind must be {KIND}, got {0:?}")]
    Kind(String),
    #[error("AdmissionReview has no request")]
    MissingRequest,
    #[error("AdmissionReview request has no uid")]
    MissingUid,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    request: Option<Request>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct GroupVersionKind {
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub kind: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Request {
    #[serde(default)]
    pub uid: String,
    #[serde(default)]
    pub kind: GroupVersionKind,
    #[serde(default)]
    pub sub_resource: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub operation: String,
    #[serde(default)]
    pub dry_run: Option<bool>,
    /// Only what the engine reads (see `projection`); patch paths are the object's own.
    #[serde(default, deserialize_with = "super::projection::object")]
    pub object: Option<Arc<Value>>,
    /// Never read: skipping it without building a tree halves the work on UPDATE.
    #[serde(default, rename = "oldObject")]
    _old_object: Option<IgnoredAny>,
}

impl Request {
    /// Name for logs: pods created by controllers have only generateName at admission.
    pub fn display_name(&self) -> &str {
        if let Some(n) = self.name.as_deref().filter(|n| !n.is_empty()) {
            return n;
        }
        let meta = self.object.as_ref().and_then(|o| o.get("metadata"));
        ["name", "generateName"]
            .into_iter()
            .find_map(|k| meta?.get(k)?.as_str().filter(|n| !n.is_empty()))
            .unwrap_or("")
    }
}

pub fn decode(body: &[u8]) -> Result<Request, DecodeError> {
    let envelope: Envelope =
        serde_json::from_slice(body).map_err(|e| DecodeError::Json(e.to_string()))?;
    if envelope.api_version != API_VERSION {
        return Err(DecodeError::ApiVersion(envelope.api_version));
    }
    if envelope.kind != KIND {
        return Err(DecodeError::Kind(envelope.kind));
    }
    let request = envelope.request.ok_or(DecodeError::MissingRequest)?;
    if request.uid.is_empty() {
        return Err(DecodeError::MissingUid);
    }
    Ok(request)
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Response {
    pub uid: String,
    pub allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch_type: Option<&'static str>,
    /// base64 of the JSON Patch, as a JSON string literal: base64 never needs escaping, so
    /// it is written out as it is rather than scanned byte by byte again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch: Option<Box<RawValue>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub audit_annotations: BTreeMap<String, String>,
}

impl Response {
    /// The base64 patch text.
    pub fn patch_base64(&self) -> Option<&str> {
        self.patch.as_ref().map(|p| p.get().trim_matches('"'))
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Outgoing<'a> {
    api_version: &'static str,
    kind: &'static str,
    response: &'a Response,
}

pub fn encode(response: &Response) -> Vec<u8> {
    let out = Outgoing {
        api_version: API_VERSION,
        kind: KIND,
        response,
    };
    // Serialising plain strings, bools and maps cannot fail; an empty body would be a 500 upstream.
    serde_json::to_vec(&out).unwrap_or_default()
}

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
    /// The namespace of the request, else of its object (some clients leave the request's
    /// empty); `""` for none.
    pub fn namespace_name(&self) -> &str {
        self.namespace
            .as_deref()
            .or_else(|| {
                self.object
                    .as_ref()?
                    .pointer("/metadata/namespace")?
                    .as_str()
            })
            .unwrap_or_default()
    }

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

/// An AdmissionReview response but its uid: what the pods of one template share (the decision
/// cache keeps it with its encoding, `Encoded`).
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Response {
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

/// The envelope up to the uid: `response.uid` is written first, so all that follows it is the
/// same for every request answered alike.
const HEAD: &[u8] =
    br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"#;

/// A response encoded once, without its uid: each request writes its own in front of it (a
/// rollout's pods cost a copy, not a serialisation).
#[derive(Debug, Clone)]
pub struct Encoded(Box<[u8]>);

impl Encoded {
    pub fn of(response: &Response) -> Encoded {
        let mut rest = Vec::with_capacity(256);
        write_rest(&mut rest, response);
        Encoded(rest.into_boxed_slice())
    }

    /// The whole AdmissionReview answering the request `uid`.
    pub fn with_uid(&self, uid: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEAD.len() + uid.len() + 2 + self.0.len());
        write_uid(&mut out, uid);
        out.extend_from_slice(&self.0);
        out
    }
}

/// The envelope up to and with the uid.
fn write_uid(out: &mut Vec<u8>, uid: &str) {
    out.extend_from_slice(HEAD);
    // A string cannot fail to serialise into a Vec.
    let _ = serde_json::to_writer(&mut *out, uid);
}

/// The response's fields after the uid, then the response's and the envelope's ends.
fn write_rest(out: &mut Vec<u8>, response: &Response) {
    let at = out.len();
    // Plain strings, bools and maps cannot fail to serialise; `allowed` is always written,
    // so the object is never `{}`.
    if serde_json::to_writer(&mut *out, response).is_err() || out.len() < at + 2 {
        out.truncate(at);
        out.extend_from_slice(b"{\"allowed\":true}");
    }
    // Its `{` becomes the comma after the uid.
    if let Some(open) = out.get_mut(at) {
        *open = b',';
    }
    out.push(b'}');
}

/// The AdmissionReview answering the request `uid` with `response`, in one buffer.
pub fn encode(uid: &str, response: &Response) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEAD.len() + uid.len() + 256);
    write_uid(&mut out, uid);
    write_rest(&mut out, response);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn the_uid_goes_in_front_of_the_shared_rest() {
        let full = Response {
            allowed: true,
            patch_type: Some("JSONPatch"),
            patch: RawValue::from_string("\"W10=\"".into()).ok(),
            warnings: vec!["a \"quoted\" warning".into()],
            audit_annotations: BTreeMap::from([("mode".into(), "enforce".into())]),
        };
        let encoded = Encoded::of(&full);
        for (uid, response) in [
            ("u-1", &full),
            ("we\"ird\\", &full),
            ("u-2", &Response::default()),
        ] {
            let bytes = Encoded::of(response).with_uid(uid);
            let got: Value = serde_json::from_slice(&bytes).unwrap();
            let mut want = json!({"apiVersion": API_VERSION, "kind": KIND, "response": response});
            want["response"]["uid"] = json!(uid);
            assert_eq!(got, want);
        }
        assert_eq!(
            serde_json::from_slice::<Value>(&encoded.with_uid("x")).unwrap()["response"]["patch"],
            "W10="
        );
    }
}

//! Dry-run policy audits: what zerodrop would do, over manifests or a live cluster, through
//! the very engine the webhook uses.

pub mod cluster;
pub mod drift;
pub mod evaluate;
pub mod fix;
pub mod images;
pub mod listing;
pub mod manifests;
pub mod output;
pub mod policy_report;
pub mod report;
pub mod sarif;

pub use evaluate::{audit_documents, evaluate, evaluate_with, images_of};
pub use report::{ChangeOut, Entry, FailOn, Report, SCHEMA_VERSION};

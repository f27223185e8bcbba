//! The integration tests, one binary (the crate is linked once): the engine's rules and
//! properties, the router in process, real TLS, shutdown, hostile inputs, audits, the chart,
//! the CLI, the rollout tools, and the end-to-end suite behind a real apiserver (tests/harness).

// Helpers outside #[test] functions panic on purpose: a failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod audit_offline;
mod chart;
mod cli;
mod e2e;
mod engine_images;
mod engine_props;
mod engine_rules;
mod fuzz_corpus;
mod hostile_inputs;
mod images_faults;
mod images_registry;
mod json_outputs;
mod load;
mod rollout_tools;
mod server_namespaces;
mod server_overload;
mod server_router;
mod server_shutdown;
mod server_startup;
mod server_tls;
mod verify_advice;
mod verify_rules;

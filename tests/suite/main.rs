//! The in-process tests, what plain `cargo test` runs on a machine with nothing but Rust: the
//! router, real TLS on loopback, shutdown and start-up, overload, hostile inputs, the fuzz
//! corpus, offline audits and their golden files, the CLI, the load generator, verify's rules,
//! and every JSON output parsed strictly. (The engine's own tests are core's; tests needing
//! built tools are the `tools` and `e2e` targets: docs/development.md.)

// Helpers outside #[test] functions panic on purpose: a failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod admission_load;
mod serve;

mod audit_offline;
mod cli;
mod drain_sockets;
mod drain_waiter;
mod fuzz_corpus;
mod hostile_inputs;
mod images_faults;
mod json_outputs;
mod load;
mod reference;
mod server_connections;
mod server_namespaces;
mod server_overload;
mod server_router;
mod server_shutdown;
mod server_startup;
mod server_tls;
mod structure;
mod verify_advice;
mod verify_rules;

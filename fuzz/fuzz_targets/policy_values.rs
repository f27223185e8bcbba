//! Fuzz target: annotation values, durations and the cluster config parser.
#![no_main]

#[allow(dead_code)] // each target uses one of the shared checks
#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::policy_values(data));

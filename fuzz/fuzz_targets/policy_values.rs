//! Fuzz target: annotation values, durations and the cluster config parser.
#![no_main]

use zerodrop_testkit::fuzz_checks as checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::policy_values(data));

//! Fuzz target: HTTP body -> AdmissionReview handler (both endpoints).
#![no_main]

use zerodrop_testkit::fuzz_checks as checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::admission_body(data));

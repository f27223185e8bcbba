//! Fuzz target: what the image inspector parses (references, manifests, configs, layers, scripts).
#![no_main]

use zerodrop_testkit::fuzz_checks as checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::image_inputs(data));

//! Fuzz target: what the image inspector parses (references, manifests, configs, layers, scripts).
#![no_main]

#[allow(dead_code)] // each target uses one of the shared checks
#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::image_inputs(data));

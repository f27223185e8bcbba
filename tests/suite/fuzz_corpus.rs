//! Replays the fuzz corpus (fuzz/corpus/<target>/*) through the fuzz targets' checks, so every
//! input fuzzing ever kept stays a regression test on stable Rust.

use zerodrop_testkit::fuzz_checks as checks;

fn replay(target: &str, check: fn(&[u8])) -> usize {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        check(&std::fs::read(&path).unwrap());
        n += 1;
    }
    n
}

#[test]
fn admission_body_corpus() {
    assert!(replay("admission_body", checks::admission_body) >= 10);
}

#[test]
fn policy_values_corpus() {
    assert!(replay("policy_values", checks::policy_values) >= 10);
}

#[test]
fn image_inputs_corpus() {
    assert!(replay("image_inputs", checks::image_inputs) >= 10);
}

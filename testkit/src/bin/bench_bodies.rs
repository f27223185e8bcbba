//! Writes the benchmark AdmissionReviews (small, typical, large) to a folder for experiments/benchmarks/run.sh.
//! Usage: bench_bodies DIR

// A measuring tool, not the request path: a failed step aborts the run with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use zerodrop_testkit::reviews;

fn main() -> std::io::Result<()> {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| ".".into()));
    std::fs::create_dir_all(&dir)?;
    for (name, body) in [
        ("small", reviews::small()),
        ("typical", reviews::typical()),
        ("large", reviews::large()),
    ] {
        std::fs::write(dir.join(format!("{name}.json")), body)?;
    }
    println!("{}", reviews::namespace());
    Ok(())
}

//! The binary's edges: `certs generate`, and `serve` refusing a bad config with a clear error.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

fn zerodrop(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_zerodrop"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn certs_generate_writes_a_usable_pair_with_private_keys() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("certs");
    let o = zerodrop(&[
        "certs",
        "generate",
        "--out",
        out.to_str().unwrap(),
        "--dns",
        "zerodrop.zerodrop.svc",
        "--ip",
        "127.0.0.1",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let read = |f: &str| std::fs::read(out.join(f)).unwrap();
    let loaded = zerodrop::certs::load_pair(&read("tls.crt"), &read("tls.key")).unwrap();
    assert!(loaded.not_after > time::OffsetDateTime::now_utc().unix_timestamp() + 300 * 86_400);
    let der = rustls::pki_types::pem::PemObject::pem_slice_iter(&read("tls.crt"))
        .next()
        .unwrap();
    let der: rustls::pki_types::CertificateDer<'static> = der.unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    let sans = format!(
        "{:?}",
        cert.subject_alternative_name()
            .unwrap()
            .unwrap()
            .value
            .general_names
    );
    assert!(
        sans.contains("zerodrop.zerodrop.svc") && sans.contains("[127, 0, 0, 1]"),
        "{sans}"
    );
    for key in ["ca.key", "tls.key"] {
        let mode = std::fs::metadata(out.join(key))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{key}");
    }
}

#[test]
fn serve_refuses_a_bad_config_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("policy.yaml");
    std::fs::write(&config, "defaults:\n  prestop-sleep: banana\n").unwrap();
    let o = zerodrop(&[
        "serve",
        "--standalone",
        "--config",
        config.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("prestop-sleep") && err.contains("banana") && err.contains("policy.yaml"),
        "{err}"
    );
}

/// The README's first five minutes, as a newcomer types them: `serve` on its embedded default,
/// the captured AdmissionReview posted to it (audit answer standalone, the enforce patch with
/// `--unknown-namespace-mode enforce`), and `audit -f` on the shipped example manifest.
#[tokio::test]
async fn the_readme_first_five_minutes_work_as_shown() {
    use base64::Engine as _;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let review = "tests/fixtures/admission/pod-create.json";
    let manifest = "examples/manifests/web.yaml";
    for shown in [
        review,
        manifest,
        "--unknown-namespace-mode enforce",
        "would-patch",
    ] {
        assert!(readme.contains(shown), "the README no longer shows {shown}");
    }
    let body = std::fs::read(root.join(review)).unwrap();

    let standalone = crate::serve::Served::start(&[]).await;
    let answer = standalone.review("/mutate", &body).await;
    let response = &answer["response"];
    assert_eq!(response["allowed"], true);
    assert!(
        response.get("patch").is_none(),
        "standalone answers in audit mode: {answer}"
    );
    assert_eq!(response["auditAnnotations"]["mode"], "audit");
    assert!(
        response["auditAnnotations"]["would-patch"]
            .as_str()
            .unwrap()
            .contains("preStop")
    );

    let enforcing = crate::serve::Served::start(&["--unknown-namespace-mode", "enforce"]).await;
    let answer = enforcing.review("/mutate", &body).await;
    let patch = answer["response"]["patch"]
        .as_str()
        .expect("an enforce patch");
    let ops: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(patch)
            .unwrap(),
    )
    .unwrap();
    assert!(ops.to_string().contains("preStop"), "{ops}");

    let o = Command::new(env!("CARGO_BIN_EXE_zerodrop"))
        .args(["audit", "-f", manifest])
        .current_dir(root)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "something would change: {out}");
    for line in ["preStop sleep 5s", "readiness probe upgraded tcp", "ZD301"] {
        assert!(out.contains(line), "{line} missing from:\n{out}");
    }
}

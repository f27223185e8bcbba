//! The chart installed into the real apiserver, and self-managed certificates against it.

use crate::harness::{Zerodrop, client, server_minor};
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use zerodrop_testkit::cluster::{
    create_pod, namespace, pod, post, register_url, wait_for_webhook, web,
};

/// API collection of a rendered object; webhook configurations are only dry-run created so the
/// release's selector does not reach into the namespaces of tests running in parallel.
fn collection(obj: &Value, ns: &str) -> (String, bool) {
    let version = obj["apiVersion"].as_str().unwrap();
    let kind = obj["kind"].as_str().unwrap();
    let base = if version == "v1" {
        "/api/v1".to_owned()
    } else {
        format!("/apis/{version}")
    };
    let plural = match kind {
        "PodDisruptionBudget" => "poddisruptionbudgets".to_owned(),
        "NetworkPolicy" => "networkpolicies".to_owned(),
        "ServiceMonitor" => "servicemonitors".to_owned(),
        "MutatingAdmissionPolicy" => "mutatingadmissionpolicies".to_owned(),
        k => format!("{}s", k.to_lowercase()),
    };
    let cluster_scoped = matches!(
        kind,
        "ClusterRole"
            | "ClusterRoleBinding"
            | "MutatingWebhookConfiguration"
            | "ValidatingWebhookConfiguration"
            | "MutatingAdmissionPolicy"
            | "MutatingAdmissionPolicyBinding"
    );
    let dry = kind.ends_with("WebhookConfiguration");
    let path = if cluster_scoped {
        format!("{base}/{plural}")
    } else {
        format!("{base}/namespaces/{ns}/{plural}")
    };
    (
        if dry {
            format!("{path}?dryRun=All")
        } else {
            path
        },
        dry,
    )
}

#[tokio::test]
async fn rendered_chart_is_accepted_by_the_real_apiserver() {
    let c = client().await;
    let crds: Vec<Value> =
        serde_json::from_str(include_str!("../fixtures/cert-manager-crds.json")).unwrap();
    for crd in &crds {
        post(
            &c,
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            crd,
        )
        .await;
    }
    let provided = [
        "certificates.mode=provided",
        "certificates.provided.secretName=zd-tls",
        "certificates.provided.caBundle=Y2E=",
    ];
    for (release, sets) in [
        ("zd-sm", vec![]),
        ("zd-cm", vec!["certificates.mode=certManager"]),
        ("zd-pr", provided.to_vec()),
        // The NetworkPolicy and the dashboard ConfigMap (the PrometheusRule needs the
        // Prometheus Operator's CRD; promtool checks it in tests/tools/chart.rs).
        (
            "zd-np",
            vec![
                "networkPolicy.enabled=true",
                "grafanaDashboard.enabled=true",
                "server.clientCAConfigMap=apiserver-ca",
            ],
        ),
    ] {
        let ns = namespace(&c, "none", None, json!({})).await;
        let objs = zerodrop_testkit::helm::render_release(release, &ns, &sets).unwrap();
        assert!(objs.len() >= 9, "{release}: {} objects", objs.len());
        for obj in &objs {
            let (path, _) = collection(obj, &ns);
            let started = Instant::now();
            loop {
                let r = post(&c, &path, obj).await;
                if (200..300).contains(&r.status) {
                    break;
                }
                // Freshly created CRDs take a moment to be served.
                let crd_pending = r.status == 404
                    && obj["apiVersion"]
                        .as_str()
                        .unwrap()
                        .starts_with("cert-manager");
                assert!(
                    crd_pending && started.elapsed() < Duration::from_secs(30),
                    "{release} {}: {} {}",
                    obj["kind"],
                    r.status,
                    r.body
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// `admission=policy`: the chart's objects accepted by the apiserver, and its policy mutating a
/// pod with the chart's values (the binding narrowed to this test's namespace, so it reaches
/// no other test's); below 1.36 the chart refuses to render.
#[tokio::test]
async fn the_chart_under_admission_policy_mutates_pods_in_the_apiserver() {
    let c = client().await;
    let minor = server_minor(&c).await;
    let version = format!("1.{minor}.0");
    let ns = namespace(&c, "none", None, json!({})).await;
    let sets = ["admission=policy", "policy.defaults.prestop-sleep=6s"];
    let rendered = zerodrop_testkit::helm::render_for("zd-pol", &ns, Some(&version), &sets);
    if minor < zerodrop_core::export::MIN_MINOR {
        let err = rendered.unwrap_err();
        assert!(err.contains("needs Kubernetes 1.36 or later"), "{err}");
        return;
    }
    let narrow = "e2e.zerodrop.dev/chart-policy";
    for mut obj in rendered.unwrap() {
        if obj["kind"] == "MutatingAdmissionPolicyBinding" {
            let selector = &mut obj["spec"]["matchResources"]["namespaceSelector"];
            selector["matchExpressions"]
                .as_array_mut()
                .unwrap()
                .push(json!({ "key": narrow, "operator": "Exists" }));
        }
        let (path, _) = collection(&obj, &ns);
        let r = post(&c, &path, &obj).await;
        assert!(
            (200..300).contains(&r.status),
            "{}: {} {}",
            obj["kind"],
            r.status,
            r.body
        );
    }
    let target = namespace(&c, "none", Some("enforce"), json!({})).await;
    zerodrop_testkit::cluster::label(&c, &target, json!({ narrow: "yes" })).await;
    zerodrop_testkit::cluster::wait_for(&c, &target, Duration::from_secs(60), |p| {
        zerodrop_testkit::cluster::has_prestop(p)
    })
    .await;
    let got = create_pod(&c, &target, &pod("web", json!({}), json!([web()])), true).await;
    let web = &got.body["spec"]["containers"][0];
    assert_eq!(
        web["lifecycle"]["preStop"]["sleep"]["seconds"], 6,
        "{}",
        got.body
    );
    assert!(
        got.body["metadata"]["annotations"]["zerodrop.dev/injected"].is_string(),
        "{}",
        got.body
    );
}

fn secret_cert(s: &Secret) -> Vec<u8> {
    s.data.as_ref().unwrap()["tls.crt"].0.clone()
}

async fn served(port: u16) -> Vec<u8> {
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .dangerous()
    .with_custom_certificate_verifier(std::sync::Arc::new(AnyCert))
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = connector.connect(name, tcp).await.unwrap();
    tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

fn pem_to_der(pem: &[u8]) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_slice_iter(pem)
        .next()
        .unwrap()
        .unwrap()
        .to_vec()
}

/// Two replicas sharing one self-managed Secret in a fresh namespace `home`, for webhook
/// configurations `name` that the apiserver calls on replica `a`.
pub struct SelfManagedPair {
    pub home: String,
    pub name: String,
    pub a: Zerodrop,
    pub b: Zerodrop,
}

pub async fn self_managed_pair(
    c: &kube::Client,
    validity: &str,
    renew_before: &str,
) -> SelfManagedPair {
    let home = namespace(c, "none", None, json!({})).await;
    let name = format!("sm-{home}");
    let args: Vec<String> = [
        "--self-managed-secret=zerodrop-tls".to_owned(),
        format!("--self-managed-namespace={home}"),
        format!("--self-managed-webhook={name}"),
        "--self-managed-dns=localhost".into(),
        format!("--self-managed-validity={validity}"),
        format!("--self-managed-renew-before={renew_before}"),
        "--self-managed-check-interval=1s".into(),
    ]
    .into();
    // The configurations exist before zerodrop starts (as with Helm), without a caBundle.
    let port = crate::harness::free_port();
    register_url(c, &name, &format!("https://localhost:{port}"), None).await;
    // Two replicas race for the Secret.
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| Zerodrop::start_self_managed(port, &args));
        let b = s.spawn(|| Zerodrop::start_self_managed(0, &args));
        (a.join().unwrap(), b.join().unwrap())
    });
    SelfManagedPair { home, name, a, b }
}

#[tokio::test]
async fn self_managed_certificates_bootstrap_agree_and_rotate_without_failed_admissions() {
    let c = client().await;
    let SelfManagedPair { home, name, a, b } = self_managed_pair(&c, "40s", "30s").await;
    a.wait_ready().await;
    b.wait_ready().await;
    let secrets: Api<Secret> = Api::namespaced(c.clone(), &home);
    let first = secrets.get("zerodrop-tls").await.unwrap();
    let data = first.data.as_ref().unwrap();
    for key in ["ca.crt", "ca.key", "tls.crt", "tls.key"] {
        assert!(data.contains_key(key), "{key}");
    }
    assert_eq!(
        served(a.tls_port).await,
        served(b.tls_port).await,
        "replicas serve different certificates"
    );
    let mutating: Value = c
        .request(
            http::Request::get(format!(
                "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/{name}"
            ))
            .body(Vec::new())
            .unwrap(),
        )
        .await
        .unwrap();
    use base64::Engine as _;
    let bundle = base64::engine::general_purpose::STANDARD
        .decode(
            mutating["webhooks"][0]["clientConfig"]["caBundle"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
    assert_eq!(bundle, data["ca.crt"].0);

    let ns = namespace(&c, &name, Some("enforce"), json!({})).await;
    wait_for_webhook(&c, &ns).await;
    // Certificates live 40 s and renew 30 s before expiry: several renewals in 25 s of traffic.
    let started = Instant::now();
    let (mut ok, mut failed) = (0, 0);
    let mut seen = vec![secret_cert(&first)];
    while started.elapsed() < Duration::from_secs(25) {
        let r = create_pod(&c, &ns, &pod("rot", json!({}), json!([web()])), true).await;
        if r.status == 201
            && r.body
                .pointer("/metadata/annotations/zerodrop.dev~1injected")
                .is_some()
        {
            ok += 1;
        } else {
            failed += 1;
        }
        let now = secret_cert(&secrets.get("zerodrop-tls").await.unwrap());
        if !seen.contains(&now) {
            seen.push(now);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(seen.len() >= 2, "no renewal happened");
    assert_eq!(
        failed,
        0,
        "{failed} admissions failed during renewal ({ok} ok); logs:\n{}",
        a.logs()
    );
    let latest = secret_cert(&secrets.get("zerodrop-tls").await.unwrap());
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        served(a.tls_port).await,
        pem_to_der(&latest),
        "replica a serves a stale certificate"
    );
    assert_eq!(
        served(b.tls_port).await,
        pem_to_der(&latest),
        "replica b serves a stale certificate"
    );
    zerodrop_testkit::cluster::delete_webhooks(&c, &name).await;
}

/// The test reads whatever certificate is served; trust is checked by the apiserver above.
#[derive(Debug)]
struct AnyCert;
impl rustls::client::danger::ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

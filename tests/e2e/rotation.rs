//! Self-managed certificates across a CA rotation: two replicas share the Secret, the
//! apiserver keeps trusting whichever certificate each one serves, no admission fails.

use crate::chart::{SelfManagedPair, self_managed_pair};
use crate::harness::client;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use serde_json::json;
use std::time::{Duration, Instant};
use zerodrop_testkit::cluster::{create_pod, namespace, pod, wait_for_webhook, web};

fn bundle(s: &Secret) -> String {
    String::from_utf8(s.data.as_ref().unwrap()["ca.crt"].0.clone()).unwrap()
}

fn signing_ca(bundle: &str) -> String {
    let end = "-----END CERTIFICATE-----";
    bundle.split(end).next().unwrap().trim().to_owned()
}

#[tokio::test]
async fn a_ca_rotation_fails_no_admission() {
    let c = client().await;
    // Certificates live 6 s and are renewed 4 s before they expire; the CA lives 5x as long
    // (30 s) and is replaced once it would not outlive a new certificate: about 24 s in.
    // The apiserver calls replica a; either replica may be the one that rotates the CA, and a
    // replica that has not re-read the Secret yet still serves a certificate of the old CA.
    let SelfManagedPair {
        home,
        name,
        a,
        b: _b,
    } = self_managed_pair(&c, "6s", "4s").await;
    a.wait_ready().await;
    let secrets: Api<Secret> = Api::namespaced(c.clone(), &home);
    let first_ca = signing_ca(&bundle(&secrets.get("zerodrop-tls").await.unwrap()));
    let ns = namespace(&c, &name, Some("enforce"), json!({})).await;
    wait_for_webhook(&c, &ns).await;

    let started = Instant::now();
    let (mut ok, mut failed, mut widest) = (0, 0, 0);
    let mut rotated: Option<Instant> = None;
    while started.elapsed() < Duration::from_secs(45)
        && rotated.is_none_or(|t| t.elapsed() < Duration::from_secs(6))
    {
        let r = create_pod(&c, &ns, &pod("rot", json!({}), json!([web()])), true).await;
        let mutated = r
            .body
            .pointer("/metadata/annotations/zerodrop.dev~1injected")
            .is_some();
        if r.status == 201 && mutated {
            ok += 1;
        } else {
            failed += 1;
        }
        let now = bundle(&secrets.get("zerodrop-tls").await.unwrap());
        widest = widest.max(now.matches("-----BEGIN CERTIFICATE-----").count());
        if rotated.is_none() && signing_ca(&now) != first_ca {
            rotated = Some(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(rotated.is_some(), "the CA was not rotated in 45 s");
    assert_eq!(
        widest, 2,
        "the old CA never stood next to the new one in the bundle"
    );
    assert_eq!(
        failed,
        0,
        "{failed} admissions failed across the CA rotation ({ok} ok); logs:\n{}",
        a.logs()
    );
    zerodrop_testkit::cluster::delete_webhooks(&c, &name).await;
}

//! The scan's Lease: one replica at a time holds it (kube-lease-manager), and it remembers when
//! no replica was running, so pods created meanwhile can be told apart.

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use kube_lease_manager::{LeaseManagerBuilder, LeaseManagerError};
use std::time::Duration;
use tokio::sync::watch;

/// A span zerodrop was down, Unix seconds: recorded on the Lease by the first replica back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Window {
    pub from: i64,
    pub to: i64,
}

/// Where the outage windows live on the Lease, as JSON.
pub const OUTAGES_ANNOTATION: &str = "zerodrop.dev/outages";
/// Windows kept: enough for the pods of any rollout still running.
const MAX_WINDOWS: usize = 16;
const FIELD_MANAGER: &str = "zerodrop-outages";

#[derive(Debug, Clone)]
pub struct LeaseConfig {
    pub name: String,
    pub namespace: String,
    /// This replica (its pod name), unique among the holders.
    pub identity: String,
    /// How long a holder keeps the Lease without renewing: how fast the scan moves when the
    /// holder is lost.
    pub duration: Duration,
}

impl LeaseConfig {
    fn api(&self, client: &Client) -> Api<Lease> {
        Api::namespaced(client.clone(), &self.namespace)
    }

    /// Starts competing for the Lease: the receiver says whether this replica holds it.
    pub async fn leadership(
        &self,
        client: &Client,
    ) -> Result<watch::Receiver<bool>, LeaseManagerError> {
        let seconds = self.duration.as_secs().max(2);
        let manager = LeaseManagerBuilder::new(client.clone(), &self.name)
            .with_namespace(&self.namespace)
            .with_identity(&self.identity)
            .with_duration(seconds)
            // Renew well before expiry, and leave clocks a little slack.
            .with_grace((seconds / 3).max(1))
            .build()
            .await?;
        let (receiver, _task) = manager.watch().await;
        Ok(receiver)
    }

    /// At start: when the Lease had expired, no replica was running between its last renewal
    /// and now (a running replica would have taken it over within `duration`). Records that
    /// window on the Lease and returns every window it holds.
    pub async fn record_outage(&self, client: &Client) -> Result<Vec<Window>, kube::Error> {
        let Some(lease) = self.api(client).get_opt(&self.name).await? else {
            return Ok(Vec::new());
        };
        let mut windows = windows(&lease);
        let now = Timestamp::now().as_second();
        let spec = lease.spec.unwrap_or_default();
        let renewed = spec
            .renew_time
            .or(spec.acquire_time)
            .map(|t| t.0.as_second());
        let held_for = spec
            .lease_duration_seconds
            .map_or(self.duration.as_secs() as i64, i64::from);
        if let Some(renewed) = renewed
            && renewed + held_for < now
        {
            tracing::warn!(
                from = renewed,
                to = now,
                "no zerodrop replica was running in this window; pods created in it are reported"
            );
            windows.push(Window {
                from: renewed,
                to: now,
            });
            let drop = windows.len().saturating_sub(MAX_WINDOWS);
            windows.drain(..drop);
            let text = serde_json::to_string(&windows).map_err(kube::Error::SerdeError)?;
            let patch = serde_json::json!({
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": { "name": self.name, "annotations": { OUTAGES_ANNOTATION: text } }
            });
            let params = PatchParams::apply(FIELD_MANAGER).force();
            self.api(client)
                .patch(&self.name, &params, &Patch::Apply(&patch))
                .await?;
        }
        Ok(windows)
    }

    /// The outage windows the Lease holds.
    pub async fn outages(&self, client: &Client) -> Result<Vec<Window>, kube::Error> {
        Ok(self
            .api(client)
            .get_opt(&self.name)
            .await?
            .map(|l| windows(&l))
            .unwrap_or_default())
    }
}

fn windows(lease: &Lease) -> Vec<Window> {
    lease
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(OUTAGES_ANNOTATION))
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or_default()
}

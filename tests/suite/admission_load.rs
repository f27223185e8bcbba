//! Continuous admission requests from several keep-alive clients, counting every failure.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

pub struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
    refused: Arc<AtomicUsize>,
    senders: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    /// `senders` tasks POST `body` to `url` in a loop until `finish`.
    pub fn start(client: &reqwest::Client, url: &str, body: &'static str, senders: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let count = || Arc::new(AtomicUsize::new(0));
        let (ok, failed, refused) = (count(), count(), count());
        let senders = (0..senders)
            .map(|_| {
                let (client, url) = (client.clone(), url.to_owned());
                let (stop, ok) = (stop.clone(), ok.clone());
                let (failed, refused) = (failed.clone(), refused.clone());
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let r = client
                            .post(&url)
                            .header("content-type", "application/json")
                            .body(body)
                            .send()
                            .await;
                        match r {
                            Ok(r) if r.status() == 200 => ok.fetch_add(1, Ordering::Relaxed),
                            // The request was never sent (no connection): the caller decides.
                            Err(e) if e.is_connect() => refused.fetch_add(1, Ordering::Relaxed),
                            _ => failed.fetch_add(1, Ordering::Relaxed),
                        };
                    }
                })
            })
            .collect();
        Load {
            stop,
            ok,
            failed,
            refused,
            senders,
        }
    }

    pub fn ok(&self) -> usize {
        self.ok.load(Ordering::Relaxed)
    }

    /// Stops the senders; returns (succeeded, failed, found no connection: TCP or TLS).
    pub async fn finish(self) -> (usize, usize, usize) {
        self.stop.store(true, Ordering::Relaxed);
        for s in self.senders {
            s.await.unwrap();
        }
        (
            self.ok.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
            self.refused.load(Ordering::Relaxed),
        )
    }
}

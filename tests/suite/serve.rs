//! `zerodrop serve` as a child process on ephemeral ports, with its JSON log and CA bundle.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Served {
    pub child: Child,
    /// `host:port` of the TLS admission port and of the admin port, from the "serving" line.
    pub tls: String,
    pub admin: String,
    pub log: PathBuf,
    pub client: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Served {
    /// Starts `zerodrop serve` with `args` after the listen flags, with no cluster credentials
    /// in reach (whatever the machine has); waits for the "serving" line.
    pub async fn start(args: &[&str]) -> Served {
        Served::start_with_env(args, &[]).await
    }

    /// The same with extra environment variables (e.g. credentials to find).
    pub async fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Served {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        let log = dir.path().join("zerodrop.log");
        let child = command(args, dir.path())
            .args(["--log-format", "json", "--ca-bundle-out"])
            .arg(&ca)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let started = Instant::now();
        let (tls, admin) = loop {
            if let Some(found) = serving_line(&log) {
                break found;
            }
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "did not start:\n{text}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let pem = std::fs::read(&ca).unwrap();
        let client = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
            .build()
            .unwrap();
        Served {
            child,
            tls,
            admin,
            log,
            client,
            _dir: dir,
        }
    }

    /// `https://localhost:PORT{path}`: the self-signed certificate is for localhost.
    pub fn url(&self, path: &str) -> String {
        let port = self.tls.rsplit(':').next().unwrap();
        format!("https://localhost:{port}{path}")
    }

    pub async fn admin_get(&self, path: &str) -> (u16, String) {
        let r = reqwest::get(format!("http://{}{path}", self.admin))
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    /// POSTs an AdmissionReview; the decoded response.
    pub async fn review(&self, path: &str, body: &[u8]) -> serde_json::Value {
        let r = self
            .client
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    /// Waits for the process to exit by itself.
    pub async fn exited(&mut self, within: Duration) -> std::process::ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(started.elapsed() < within, "still running after {within:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The value of an unlabelled metric on the admin port.
    pub async fn metric(&self, name: &str) -> Option<f64> {
        let (_, text) = self.admin_get("/metrics").await;
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `zerodrop serve` on ephemeral ports with `args`, no cluster credentials in reach (HOME is
/// `home`) and no registry calls unless `args` ask for them.
pub fn command(args: &[&str], home: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zerodrop"));
    cmd.args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
    ])
    .args(args)
    .args(
        if args.iter().any(|a| a.starts_with("--image-inspection")) {
            &[][..]
        } else {
            &["--image-inspection=false"][..]
        },
    )
    .env_remove("KUBECONFIG")
    .env_remove("KUBERNETES_SERVICE_HOST")
    .env("HOME", home);
    cmd
}

fn serving_line(log: &std::path::Path) -> Option<(String, String)> {
    let text = std::fs::read_to_string(log).ok()?;
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find_map(|v| {
            (v["message"] == "serving").then(|| {
                (
                    v["tls"].as_str().unwrap().to_owned(),
                    v["admin"].as_str().unwrap().to_owned(),
                )
            })
        })
}

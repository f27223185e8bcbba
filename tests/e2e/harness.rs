//! The real control plane (tools/harness) and zerodrop processes, tied to this test process.

use serde::Deserialize;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};
pub use zerodrop_testkit::cluster::free_port;
use zerodrop_testkit::process::spawn_tied;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ControlPlane {
    pub kubeconfig: PathBuf,
}

pub fn harness_bin() -> PathBuf {
    zerodrop_testkit::tools::path(&zerodrop_testkit::tools::HARNESS)
}

/// One control plane per test process.
pub fn control_plane() -> &'static ControlPlane {
    static CP: OnceLock<(ControlPlane, Mutex<Child>)> = OnceLock::new();
    &CP.get_or_init(|| {
        let bin = harness_bin();
        let mut cmd = Command::new(bin.join("controlplane"));
        cmd.arg("--bin")
            .arg(&bin)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = spawn_tied(cmd);
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let ready = loop {
            let line = lines
                .next()
                .expect("control plane exited before READY")
                .unwrap();
            if let Some(json) = line.strip_prefix("READY ") {
                break serde_json::from_str::<ControlPlane>(json).unwrap();
            }
        };
        std::thread::spawn(move || for _ in lines {});
        (ready, Mutex::new(child))
    })
    .0
}

pub async fn client() -> kube::Client {
    let cp = control_plane();
    let kc = kube::config::Kubeconfig::read_from(&cp.kubeconfig).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    kube::Client::try_from(config).unwrap()
}

/// A `zerodrop serve` process with a generated certificate.
pub struct Zerodrop {
    pub child: Child,
    pub tls_port: u16,
    pub admin: String,
    pub ca_pem: String,
    pub dir: tempfile::TempDir,
    pub log: PathBuf,
    /// Everything after the listen and cluster flags, for `restart`.
    args: Vec<String>,
}

impl Zerodrop {
    pub fn start(port: u16) -> Zerodrop {
        Zerodrop::start_against(port, &control_plane().kubeconfig)
    }

    /// With its certificate in files and `extra` flags (the background scan, for instance).
    pub fn start_with(port: u16, extra: &[&str]) -> Zerodrop {
        Zerodrop::start_files(port, &control_plane().kubeconfig, extra)
    }

    /// With its certificate in files, talking to the cluster of `kubeconfig`.
    pub fn start_against(port: u16, kubeconfig: &Path) -> Zerodrop {
        Zerodrop::start_files(port, kubeconfig, &[])
    }

    /// With its certificate in files and `extra` flags, talking to the cluster of `kubeconfig`.
    pub fn start_files(port: u16, kubeconfig: &Path, extra: &[&str]) -> Zerodrop {
        let dir = tempfile::tempdir().unwrap();
        let ip = "127.0.0.1".parse().unwrap();
        let b = zerodrop::certs::generate(&["localhost".into()], &[ip], time::Duration::days(2))
            .unwrap();
        std::fs::write(dir.path().join("tls.crt"), &b.cert_pem).unwrap();
        std::fs::write(dir.path().join("tls.key"), &b.key_pem).unwrap();
        let mut args = Zerodrop::cert_args(dir.path());
        args.extend(extra.iter().map(|a| a.to_string()));
        Zerodrop::start_in(dir, port, b.ca_cert_pem, &args, kubeconfig)
    }

    fn cert_args(dir: &Path) -> Vec<String> {
        let path = |f: &str| dir.join(f).display().to_string();
        vec![
            "--tls-cert".into(),
            path("tls.crt"),
            "--tls-key".into(),
            path("tls.key"),
        ]
    }

    /// A replica that manages its own certificates through the cluster (`--self-managed-*`).
    pub fn start_self_managed(port: u16, args: &[String]) -> Zerodrop {
        let kubeconfig = &control_plane().kubeconfig;
        Zerodrop::start_in(
            tempfile::tempdir().unwrap(),
            port,
            String::new(),
            args,
            kubeconfig,
        )
    }

    /// Restarts with the same certificate and port.
    pub fn restart(self) -> Zerodrop {
        let Zerodrop {
            mut child,
            tls_port,
            ca_pem,
            dir,
            args,
            ..
        } = self;
        let _ = child.kill();
        let _ = child.wait();
        Zerodrop::start_in(dir, tls_port, ca_pem, &args, &control_plane().kubeconfig)
    }

    fn start_in(
        dir: tempfile::TempDir,
        port: u16,
        ca_pem: String,
        args: &[String],
        kubeconfig: &Path,
    ) -> Zerodrop {
        let log = dir
            .path()
            .join(format!("zerodrop-{port}-{}.log", std::process::id()));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_zerodrop"));
        cmd.args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--admin-listen",
            "127.0.0.1:0",
        ])
        .args(args)
        // The background scan and image inspection only where a test asks for them: the
        // scan reads the whole cluster, inspection calls registries.
        .args(if args.iter().any(|a| a == "--scan-interval") {
            &[][..]
        } else {
            &["--scan-interval", "0"][..]
        })
        .args(
            if args.iter().any(|a| a.starts_with("--image-inspection")) {
                &[][..]
            } else {
                &["--image-inspection=false"][..]
            },
        )
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["--shutdown-delay", "0", "--log-format", "json"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
        let child = spawn_tied(cmd);
        let started = Instant::now();
        let (tls, admin) = loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let serving = text
                .lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .find(|v| v["message"] == "serving");
            if let Some(v) = serving {
                break (
                    v["tls"].as_str().unwrap().to_owned(),
                    v["admin"].as_str().unwrap().to_owned(),
                );
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "zerodrop did not start:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        let tls_port = tls.rsplit(':').next().unwrap().parse().unwrap();
        Zerodrop {
            child,
            tls_port,
            admin: format!("http://{admin}"),
            ca_pem,
            dir,
            log,
            args: args.to_vec(),
        }
    }

    /// The admin port's /metrics, or None when it does not answer.
    pub async fn metrics_text(&self) -> Option<String> {
        reqwest::get(format!("{}/metrics", self.admin))
            .await
            .ok()?
            .text()
            .await
            .ok()
    }

    /// The value of one series on the admin port's /metrics, e.g.
    /// `zerodrop_unprotected_pods{namespace="x",reason="y"}`.
    pub async fn metric(&self, series: &str) -> Option<f64> {
        let text = self.metrics_text().await?;
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub async fn wait_ready(&self) {
        let started = Instant::now();
        loop {
            let ready = reqwest::get(format!("{}/readyz", self.admin)).await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "zerodrop not ready"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn stop(&mut self) {
        zerodrop_testkit::process::sigterm(&self.child);
        let _ = self.child.wait();
    }
}

/// The first line of the log `file` that `matches`, waiting up to `within` for it: zerodrop's
/// log writer is non-blocking, so an admission's line may land after its response.
pub async fn log_line(
    file: &Path,
    within: Duration,
    matches: impl Fn(&str) -> bool,
) -> Option<String> {
    let started = Instant::now();
    loop {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        if let Some(line) = text.lines().find(|l| matches(l)) {
            return Some(line.to_owned());
        }
        if started.elapsed() > within {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The minor version the control plane says it is, from its `/version`.
pub async fn server_minor(c: &kube::Client) -> u32 {
    let info = c.apiserver_version().await.unwrap();
    info.minor.trim_end_matches('+').parse().unwrap()
}

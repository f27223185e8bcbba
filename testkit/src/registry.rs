//! A real OCI registry (distribution, built by tools/registry/build.sh) on loopback, and test
//! images written as OCI layouts here and pushed with crane.

use crate::process::spawn_tied;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub fn tools() -> &'static PathBuf {
    static TOOLS: OnceLock<PathBuf> = OnceLock::new();
    TOOLS.get_or_init(|| crate::tools::path(&crate::tools::REGISTRY))
}

pub const USER: &str = "zerodrop";
pub const PASSWORD: &str = "s3cret-for-tests";

pub struct Registry {
    pub host: String,
    /// PEM of the CA its certificate chains to (TLS registries).
    pub ca_pem: Option<String>,
    child: Child,
    dir: tempfile::TempDir,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Registry {
    /// With TLS (a certificate for 127.0.0.1) and htpasswd Basic auth, or plain HTTP without.
    pub fn start(tls_and_auth: bool) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let host = format!("127.0.0.1:{port}");
        let mut http = json!({ "addr": host, "secret": "test" });
        let mut config = json!({
            "version": 0.1,
            "log": { "level": "warn" },
            "storage": { "filesystem": { "rootdirectory": dir.path().join("data") }, "delete": { "enabled": true } },
            "http": {}
        });
        let mut ca_pem = None;
        if tls_and_auth {
            let ip = "127.0.0.1".parse().unwrap();
            let b =
                zerodrop::certs::generate(&["localhost".into()], &[ip], time::Duration::days(1))
                    .unwrap();
            std::fs::write(dir.path().join("tls.crt"), &b.cert_pem).unwrap();
            std::fs::write(dir.path().join("tls.key"), &b.key_pem).unwrap();
            http["tls"] = json!({ "certificate": dir.path().join("tls.crt"), "key": dir.path().join("tls.key") });
            let line = Command::new(tools().join("htpasswd"))
                .args([USER, PASSWORD])
                .output()
                .unwrap();
            assert!(line.status.success());
            std::fs::write(dir.path().join("htpasswd"), &line.stdout).unwrap();
            config["auth"] = json!({ "htpasswd": { "realm": "zerodrop-tests", "path": dir.path().join("htpasswd") } });
            ca_pem = Some(b.ca_cert_pem);
        }
        config["http"] = http;
        let file = dir.path().join("config.json");
        std::fs::write(&file, serde_json::to_vec(&config).unwrap()).unwrap();
        let mut cmd = Command::new(tools().join("registry"));
        cmd.arg("serve")
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = spawn_tied(cmd);
        let started = Instant::now();
        while std::net::TcpStream::connect(&host).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "registry did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let registry = Registry {
            host,
            ca_pem,
            child,
            dir,
        };
        if tls_and_auth {
            registry.crane(&["auth", "login", &registry.host, "-u", USER, "-p", PASSWORD]);
        }
        registry
    }

    /// Runs crane against this registry (its own docker config, TLS not verified: the test's
    /// own CA); panics with crane's output on failure.
    pub fn crane(&self, args: &[&str]) -> String {
        let out = Command::new(tools().join("crane"))
            .args(args)
            .arg("--insecure")
            .env("DOCKER_CONFIG", self.dir.path().join("docker"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "crane {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Pushes `repo:1`, an image written with a shell-form `CMD script` on a Debian-like layer
    /// (`/bin/sh -> dash`); returns its reference.
    pub fn push_shell_form(&self, repo: &str, script: &str) -> String {
        let layers = vec![vec![
            ("bin/sh", "dash", true),
            ("bin/dash", "\x7fELF", false),
        ]];
        let config = serde_json::json!({ "Cmd": ["/bin/sh", "-c", script] });
        self.push(repo, "1", &Layout::single(config, layers)).0
    }

    /// Pushes `image` as `repo:tag`; returns the reference and its manifest digest.
    pub fn push(&self, repo: &str, tag: &str, image: &Layout) -> (String, String) {
        let layout = tempfile::tempdir().unwrap();
        image.write(layout.path());
        let reference = format!("{}/{repo}:{tag}", self.host);
        let mut args = vec![
            "push".to_owned(),
            layout.path().display().to_string(),
            reference.clone(),
        ];
        if image.platforms.len() > 1 {
            args.push("--index".into());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.crane(&args);
        let digest = self.crane(&["digest", &reference]);
        (reference, digest)
    }
}

/// One platform of an image: its config and its layers (bottom first), each a list of
/// (path, content, is-symlink).
#[derive(Clone)]
pub struct Platform {
    pub arch: &'static str,
    pub config: Value,
    pub layers: Vec<Vec<(String, String, bool)>>,
}

/// An image (one platform) or an index (several), written as an OCI layout.
#[derive(Clone)]
pub struct Layout {
    pub platforms: Vec<Platform>,
}

impl Layout {
    pub fn single(config: Value, layers: Vec<Vec<(&str, &str, bool)>>) -> Layout {
        let layers = layers
            .into_iter()
            .map(|l| {
                l.into_iter()
                    .map(|(p, c, s)| (p.to_owned(), c.to_owned(), s))
                    .collect()
            })
            .collect();
        Layout {
            platforms: vec![Platform {
                arch: "amd64",
                config,
                layers,
            }],
        }
    }

    fn write(&self, dir: &Path) {
        let blobs = dir.join("blobs/sha256");
        std::fs::create_dir_all(&blobs).unwrap();
        let put = |bytes: &[u8]| -> (String, usize) {
            let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
            let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
            std::fs::write(blobs.join(&hex), bytes).unwrap();
            (format!("sha256:{hex}"), bytes.len())
        };
        let mut manifests = Vec::new();
        for platform in &self.platforms {
            let mut diff_ids = Vec::new();
            let mut layers = Vec::new();
            for files in &platform.layers {
                let tar = tar_of(files);
                let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                std::io::Write::write_all(&mut gz, &tar).unwrap();
                let (diff, _) = put(&tar);
                diff_ids.push(diff);
                let (digest, size) = put(&gz.finish().unwrap());
                layers.push(json!({ "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest, "size": size }));
            }
            let config = json!({
                "architecture": platform.arch, "os": "linux",
                "config": platform.config,
                "rootfs": { "type": "layers", "diff_ids": diff_ids }
            });
            let (cd, cs) = put(&serde_json::to_vec(&config).unwrap());
            let manifest = json!({
                "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": { "mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs },
                "layers": layers
            });
            let (md, ms) = put(&serde_json::to_vec(&manifest).unwrap());
            manifests.push(json!({
                "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms,
                "platform": { "os": "linux", "architecture": platform.arch }
            }));
        }
        let index = json!({ "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests });
        std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
        std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    }
}

/// A tar of (path, content, is-symlink-to-content).
pub fn tar_of(files: &[(String, String, bool)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, data, link) in files {
        let mut header = tar::Header::new_gnu();
        header.set_mode(if *link { 0o777 } else { 0o755 });
        if *link {
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_size(0);
            builder.append_link(&mut header, path, data).unwrap();
        } else {
            header.set_size(data.len() as u64);
            header.set_cksum();
            builder
                .append_data(&mut header, path, data.as_bytes())
                .unwrap();
        }
    }
    builder.into_inner().unwrap()
}

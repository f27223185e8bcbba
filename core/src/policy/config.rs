//! The cluster layer: a YAML config file of defaults, validated strictly at start.

use super::layer::Layer;
use super::settings::{Partial, Setting, Settings};
use crate::paths::{Delays, PathClass};
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config is not valid YAML for zerodrop: {0}")]
    Yaml(#[from] serde_yaml_ng::Error),
    #[error("config defaults: unknown setting {0:?} (known: {known})", known = known_settings())]
    UnknownSetting(String),
    #[error("config defaults: {key} = {value:?} is invalid: expected {expected}")]
    BadValue {
        key: String,
        value: String,
        expected: &'static str,
    },
}

/// Cluster-wide policy: the defaults layer plus knobs that only make sense cluster-wide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterPolicy {
    pub defaults: Partial,
    /// Containers skipped by name in every pod (mesh proxies manage their own shutdown).
    pub sidecar_containers: Vec<String>,
    /// Upper bound on the grace period zerodrop sets; sleeps are clamped to stay within it.
    pub max_grace_period: Option<u32>,
    /// The adaptive drain's native sidecar: zerodrop's own image (mirrored in air-gapped
    /// clusters) and the port of its preStop endpoint.
    pub drain_waiter: DrainWaiter,
    /// The path classes' delays (`path-classes`) and the unrouted pods' sleep (`unrouted-sleep`).
    pub paths: Delays,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct DrainWaiter {
    #[serde(default = "DrainWaiter::default_image")]
    pub image: String,
    #[serde(default = "DrainWaiter::default_port")]
    pub port: u16,
}

impl DrainWaiter {
    fn default_image() -> String {
        concat!("ghcr.io/zerodrop/zerodrop:", env!("CARGO_PKG_VERSION")).into()
    }

    fn default_port() -> u16 {
        9797
    }
}

impl Default for DrainWaiter {
    fn default() -> Self {
        DrainWaiter {
            image: DrainWaiter::default_image(),
            port: DrainWaiter::default_port(),
        }
    }
}

impl Default for ClusterPolicy {
    fn default() -> Self {
        ClusterPolicy {
            defaults: Partial::default(),
            sidecar_containers: vec!["istio-proxy".into(), "linkerd-proxy".into()],
            max_grace_period: None,
            drain_waiter: DrainWaiter::default(),
            paths: Delays::default(),
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Scalar {
    Int(i64),
    Bool(bool),
    Text(String),
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct File {
    #[serde(default)]
    defaults: BTreeMap<String, Scalar>,
    sidecar_containers: Option<Vec<String>>,
    max_grace_period: Option<Scalar>,
    drain_waiter: Option<DrainWaiter>,
    #[serde(default)]
    path_classes: BTreeMap<String, Scalar>,
    unrouted_sleep: Option<Scalar>,
}

impl ClusterPolicy {
    /// A pod's pod-wide settings: the defaults, then the namespace's layer, then the pod's.
    pub fn settings(&self, namespace: &Layer, pod: &Layer) -> Settings {
        let mut settings = Settings::default();
        for layer in [&self.defaults, &namespace.all, &pod.all] {
            settings.apply(layer);
        }
        settings
    }

    /// A container the policy leaves alone by name: `skip-containers`, or a cluster sidecar.
    pub fn skips(&self, settings: &Settings, container: &str) -> bool {
        settings.skip_containers.iter().any(|s| s == container)
            || self.sidecar_containers.iter().any(|s| s == container)
    }

    pub fn from_yaml(text: &str) -> Result<ClusterPolicy, ConfigError> {
        // An empty file (a ConfigMap with no policy yet) means built-in defaults.
        if text.trim().is_empty() {
            return Ok(ClusterPolicy::default());
        }
        let file: File = serde_yaml_ng::from_str(text)?;
        let mut policy = ClusterPolicy::default();
        for (key, value) in &file.defaults {
            let setting =
                Setting::from_name(key).ok_or_else(|| ConfigError::UnknownSetting(key.clone()))?;
            let value = scalar_text(value);
            setting
                .parse_into(&value, &mut policy.defaults)
                .map_err(|_| ConfigError::BadValue {
                    key: key.clone(),
                    value,
                    expected: setting.expected(),
                })?;
        }
        if let Some(names) = file.sidecar_containers {
            policy.sidecar_containers = names;
        }
        if let Some(cap) = &file.max_grace_period {
            let secs = seconds("max-grace-period", cap)?;
            if secs == 0 {
                return Err(ConfigError::BadValue {
                    key: "max-grace-period".into(),
                    value: "0".into(),
                    expected: "a duration above 0",
                });
            }
            policy.max_grace_period = Some(secs);
        }
        for (key, value) in &file.path_classes {
            let class = PathClass::from_name(key)
                .filter(|c| *c != PathClass::None)
                .ok_or_else(|| ConfigError::BadValue {
                    key: "path-classes".into(),
                    value: key.clone(),
                    expected: "a class: cluster, ingress, load-balancer, aws-alb, aws-nlb, gke-l4 \
                               or azure-app-gateway (unrouted-sleep for pods nothing selects)",
                })?;
            let secs = seconds(&format!("path-classes.{key}"), value)?;
            policy.paths.classes.insert(class, secs);
        }
        if let Some(raw) = &file.unrouted_sleep {
            policy.paths.unrouted = Some(seconds("unrouted-sleep", raw)?);
        }
        if let Some(waiter) = file.drain_waiter {
            let bad = |value: String, expected| ConfigError::BadValue {
                key: "drain-waiter".into(),
                value,
                expected,
            };
            if waiter.port == 0 {
                return Err(bad("port: 0".into(), "a port 1-65535"));
            }
            if waiter.image.trim().is_empty() || waiter.image.contains(char::is_whitespace) {
                return Err(bad(waiter.image, "an image reference"));
            }
            policy.drain_waiter = waiter;
        }
        Ok(policy)
    }
}

fn seconds(key: &str, value: &Scalar) -> Result<u32, ConfigError> {
    let raw = scalar_text(value);
    super::duration::parse_seconds(&raw).ok_or_else(|| ConfigError::BadValue {
        key: key.into(),
        value: raw,
        expected: super::duration::EXPECTED,
    })
}

fn scalar_text(s: &Scalar) -> String {
    match s {
        Scalar::Int(i) => i.to_string(),
        Scalar::Bool(b) => b.to_string(),
        Scalar::Text(t) => t.clone(),
    }
}

fn known_settings() -> String {
    Setting::ALL.map(Setting::name).join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Mode;

    #[test]
    fn reads_defaults_sidecars_and_cap() {
        let p = ClusterPolicy::from_yaml(
            "defaults:\n  mode: audit\n  prestop-sleep: 10\n  shell-exec: true\n  drain-timeout: 1m\n\
             sidecar-containers: [envoy]\nmax-grace-period: 2m\n",
        )
        .unwrap();
        assert_eq!(p.defaults.mode, Some(Mode::Audit));
        assert_eq!(p.defaults.prestop_sleep, Some(10));
        assert_eq!(p.defaults.drain_timeout, Some(60));
        assert_eq!(p.defaults.shell_exec, Some(true));
        assert_eq!(p.sidecar_containers, ["envoy"]);
        assert_eq!(p.max_grace_period, Some(120));
        assert_eq!(p.drain_waiter, DrainWaiter::default());
        assert_eq!(p.paths, Delays::default());
        let p = ClusterPolicy::from_yaml(
            "path-classes:\n  aws-nlb: 3m\n  cluster: 2\nunrouted-sleep: 1s\n",
        )
        .unwrap();
        assert_eq!(p.paths.of(PathClass::AwsNlb, 5), 180);
        assert_eq!(p.paths.of(PathClass::Cluster, 5), 2);
        assert_eq!(p.paths.of(PathClass::None, 5), 1);
        let p = ClusterPolicy::from_yaml(
            "drain-waiter:\n  image: mirror.local/zerodrop:1.2\n  port: 9000\n",
        )
        .unwrap();
        assert_eq!(
            (p.drain_waiter.image.as_str(), p.drain_waiter.port),
            ("mirror.local/zerodrop:1.2", 9000)
        );
    }

    #[test]
    fn empty_file_is_the_builtin_policy() {
        assert_eq!(
            ClusterPolicy::from_yaml("").unwrap(),
            ClusterPolicy::default()
        );
    }

    #[test]
    fn mistakes_are_clear_errors() {
        let cases = [
            (
                "defaults:\n  prestop-sleep: banana\n",
                "prestop-sleep = \"banana\" is invalid",
            ),
            (
                "defaults:\n  prestop-slep: 5\n",
                "unknown setting \"prestop-slep\"",
            ),
            ("default:\n  mode: audit\n", "unknown field `default`"),
            ("max-grace-period: 0\n", "max-grace-period"),
            ("defaults: [1, 2]\n", "not valid YAML"),
            ("drain-waiter:\n  port: 0\n", "drain-waiter"),
            ("drain-waiter:\n  image: \"a b\"\n", "drain-waiter"),
            ("drain-waiter:\n  imge: x\n", "unknown field `imge`"),
            (
                "path-classes:\n  aws-nbl: 2m\n",
                "path-classes = \"aws-nbl\"",
            ),
            ("path-classes:\n  none: 1\n", "unrouted-sleep"),
            ("path-classes:\n  aws-nlb: soon\n", "path-classes.aws-nlb"),
            ("unrouted-sleep: -1\n", "unrouted-sleep"),
        ];
        for (text, want) in cases {
            let err = ClusterPolicy::from_yaml(text).unwrap_err().to_string();
            assert!(err.contains(want), "{text:?}: {err}");
        }
    }
}

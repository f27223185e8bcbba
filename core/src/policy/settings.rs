//! The settings themselves: their names, formats, defaults and parsing, and the modes; what
//! the layers (layer.rs) and the cluster config file (config.rs) are made of.

use super::duration;
use serde::Serialize;
use std::fmt;

/// Prefix of every zerodrop annotation and label.
pub const PREFIX: &str = "zerodrop.dev/";
/// Namespace label that opts a namespace in (and is the webhook's namespaceSelector).
pub const MODE_LABEL: &str = "zerodrop.dev/mode";
/// Annotation recording what zerodrop changed (see engine::ledger).
pub const LEDGER_ANNOTATION: &str = "zerodrop.dev/injected";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Enforce,
    Audit,
    Off,
}

impl Mode {
    pub const ALL: [Mode; 3] = [Mode::Enforce, Mode::Audit, Mode::Off];

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Audit => "audit",
            Mode::Off => "off",
        }
    }
}

/// The inverse of `as_str`: the label's, the annotation's and the flags' spelling.
impl std::str::FromStr for Mode {
    type Err = InvalidValue;

    fn from_str(raw: &str) -> Result<Mode, InvalidValue> {
        Mode::ALL
            .into_iter()
            .find(|m| m.as_str() == raw)
            .ok_or(InvalidValue)
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Hash)]
#[serde(rename_all = "lowercase")]
pub enum PrestopAction {
    Auto,
    Sleep,
    Exec,
}

impl PrestopAction {
    pub fn as_str(self) -> &'static str {
        match self {
            PrestopAction::Auto => "auto",
            PrestopAction::Sleep => "sleep",
            PrestopAction::Exec => "exec",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Hash)]
pub enum Scheme {
    #[serde(rename = "HTTP")]
    Http,
    #[serde(rename = "HTTPS")]
    Https,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "HTTP",
            Scheme::Https => "HTTPS",
        }
    }
}

/// How a protected container waits before SIGTERM: a fixed preStop sleep, or until the drain
/// waiter (a native sidecar, engine::waiter) sees traffic stop arriving.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Hash)]
#[serde(rename_all = "lowercase")]
pub enum DrainMode {
    Sleep,
    Adaptive,
}

impl DrainMode {
    pub fn as_str(self) -> &'static str {
        match self {
            DrainMode::Sleep => "sleep",
            DrainMode::Adaptive => "adaptive",
        }
    }
}

/// What the waiter counts as work still arriving: new connections and requests on open ones
/// (right behind balancers that pool connections to pod IPs), or new connections only (right
/// where clients reach the pod through kube-proxy and keep-alive connections stay pinned).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Hash)]
#[serde(rename_all = "lowercase")]
pub enum DrainCount {
    Requests,
    Connections,
}

impl DrainCount {
    pub fn as_str(self) -> &'static str {
        match self {
            DrainCount::Requests => "requests",
            DrainCount::Connections => "connections",
        }
    }
}

/// A container port given by number or by its name in `ports[].name`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Hash)]
#[serde(untagged)]
pub enum PortRef {
    Number(u16),
    Name(String),
}

/// Effective settings for one container (or the pod, for pod-level settings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub mode: Mode,
    pub prestop_sleep: u32,
    pub drain_timeout: u32,
    pub readiness_path: Option<String>,
    pub readiness_port: Option<PortRef>,
    pub readiness_scheme: Scheme,
    pub prestop_action: PrestopAction,
    pub skip_containers: Vec<String>,
    pub shell_exec: bool,
    pub drain: DrainMode,
    pub drain_min: u32,
    pub drain_quiet: u32,
    pub drain_max: u32,
    pub drain_count: DrainCount,
    /// Seconds the native sidecars need after the app exits; `None`: what the pod shows
    /// (engine::grace::sidecar_drain).
    pub sidecar_drain: Option<u32>,
}

impl Default for Settings {
    /// The documented built-in defaults (README "Policy reference").
    fn default() -> Self {
        Settings {
            mode: Mode::Enforce,
            prestop_sleep: 5,
            drain_timeout: 20,
            readiness_path: None,
            readiness_port: None,
            readiness_scheme: Scheme::Http,
            prestop_action: PrestopAction::Auto,
            skip_containers: Vec::new(),
            shell_exec: false,
            drain: DrainMode::Sleep,
            drain_min: 1,
            drain_quiet: 2,
            drain_max: 30,
            drain_count: DrainCount::Requests,
            sidecar_drain: None,
        }
    }
}

/// One layer's worth of settings: only what that layer sets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Partial {
    pub mode: Option<Mode>,
    pub prestop_sleep: Option<u32>,
    pub drain_timeout: Option<u32>,
    pub readiness_path: Option<String>,
    pub readiness_port: Option<PortRef>,
    pub readiness_scheme: Option<Scheme>,
    pub prestop_action: Option<PrestopAction>,
    pub skip_containers: Option<Vec<String>>,
    pub shell_exec: Option<bool>,
    pub drain: Option<DrainMode>,
    pub drain_min: Option<u32>,
    pub drain_quiet: Option<u32>,
    pub drain_max: Option<u32>,
    pub drain_count: Option<DrainCount>,
    pub sidecar_drain: Option<u32>,
}

impl Settings {
    /// Applies a layer on top: what the layer sets wins.
    pub fn apply(&mut self, p: &Partial) {
        fn set<T: Clone>(slot: &mut T, v: &Option<T>) {
            if let Some(v) = v {
                *slot = v.clone();
            }
        }
        set(&mut self.mode, &p.mode);
        set(&mut self.prestop_sleep, &p.prestop_sleep);
        set(&mut self.drain_timeout, &p.drain_timeout);
        if p.readiness_path.is_some() {
            self.readiness_path.clone_from(&p.readiness_path);
        }
        if p.readiness_port.is_some() {
            self.readiness_port.clone_from(&p.readiness_port);
        }
        set(&mut self.readiness_scheme, &p.readiness_scheme);
        set(&mut self.prestop_action, &p.prestop_action);
        set(&mut self.skip_containers, &p.skip_containers);
        set(&mut self.shell_exec, &p.shell_exec);
        set(&mut self.drain, &p.drain);
        set(&mut self.drain_min, &p.drain_min);
        set(&mut self.drain_quiet, &p.drain_quiet);
        set(&mut self.drain_max, &p.drain_max);
        set(&mut self.drain_count, &p.drain_count);
        if p.sidecar_drain.is_some() {
            self.sidecar_drain = p.sidecar_drain;
        }
    }
}

/// A policy value that does not have the setting's expected format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid value")]
pub struct InvalidValue;

/// Every setting, with its annotation name and the format a person must write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Setting {
    Mode,
    PrestopSleep,
    DrainTimeout,
    ReadinessPath,
    ReadinessPort,
    ReadinessScheme,
    PrestopAction,
    SkipContainers,
    ShellExec,
    Drain,
    DrainMin,
    DrainQuiet,
    DrainMax,
    DrainCount,
    SidecarDrain,
}

impl Setting {
    pub const ALL: [Setting; 15] = [
        Setting::Mode,
        Setting::PrestopSleep,
        Setting::DrainTimeout,
        Setting::ReadinessPath,
        Setting::ReadinessPort,
        Setting::ReadinessScheme,
        Setting::PrestopAction,
        Setting::SkipContainers,
        Setting::ShellExec,
        Setting::Drain,
        Setting::DrainMin,
        Setting::DrainQuiet,
        Setting::DrainMax,
        Setting::DrainCount,
        Setting::SidecarDrain,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Setting::Mode => "mode",
            Setting::PrestopSleep => "prestop-sleep",
            Setting::DrainTimeout => "drain-timeout",
            Setting::ReadinessPath => "readiness-path",
            Setting::ReadinessPort => "readiness-port",
            Setting::ReadinessScheme => "readiness-scheme",
            Setting::PrestopAction => "prestop-action",
            Setting::SkipContainers => "skip-containers",
            Setting::ShellExec => "shell-exec",
            Setting::Drain => "drain",
            Setting::DrainMin => "drain-min",
            Setting::DrainQuiet => "drain-quiet",
            Setting::DrainMax => "drain-max",
            Setting::DrainCount => "drain-count",
            Setting::SidecarDrain => "sidecar-drain",
        }
    }

    pub fn from_name(name: &str) -> Option<Setting> {
        Setting::ALL.into_iter().find(|s| s.name() == name)
    }

    pub fn expected(self) -> &'static str {
        match self {
            Setting::Mode => "enforce, audit or off",
            Setting::PrestopSleep | Setting::DrainTimeout | Setting::SidecarDrain => {
                duration::EXPECTED
            }
            Setting::DrainMin | Setting::DrainQuiet | Setting::DrainMax => {
                "a duration above 0 like 2s or 1m"
            }
            Setting::ReadinessPath => "an absolute HTTP path like /healthz",
            Setting::ReadinessPort => "a port number 1-65535 or a container port name",
            Setting::ReadinessScheme => "HTTP or HTTPS",
            Setting::PrestopAction => "auto, sleep or exec",
            Setting::SkipContainers => "comma-separated container names",
            Setting::ShellExec => "true or false",
            Setting::Drain => "sleep or adaptive",
            Setting::DrainCount => "requests or connections",
        }
    }

    /// Pod-wide settings have no per-container form (the drain's bounds and count belong to
    /// the pod's one waiter; the sidecars' drain to the pod's grace period).
    pub fn per_container(self) -> bool {
        !matches!(
            self,
            Setting::Mode
                | Setting::SkipContainers
                | Setting::DrainMin
                | Setting::DrainQuiet
                | Setting::DrainMax
                | Setting::DrainCount
                | Setting::SidecarDrain
        )
    }

    /// Parses `raw` into `into`; `Err(InvalidValue)` means the value is invalid and nothing was set.
    pub fn parse_into(self, raw: &str, into: &mut Partial) -> Result<(), InvalidValue> {
        let v = raw.trim();
        match self {
            Setting::Mode => into.mode = Some(v.parse()?),
            Setting::PrestopSleep => {
                into.prestop_sleep = Some(duration::parse_seconds(v).ok_or(InvalidValue)?)
            }
            Setting::DrainTimeout => {
                into.drain_timeout = Some(duration::parse_seconds(v).ok_or(InvalidValue)?)
            }
            Setting::ReadinessPath => {
                let ok =
                    v.starts_with('/') && v.len() <= 1024 && !v.chars().any(char::is_whitespace);
                if !ok {
                    return Err(InvalidValue);
                }
                into.readiness_path = Some(v.to_owned());
            }
            Setting::ReadinessPort => {
                into.readiness_port = Some(parse_port(v).ok_or(InvalidValue)?)
            }
            Setting::ReadinessScheme => {
                into.readiness_scheme = Some(match v {
                    "HTTP" | "http" => Scheme::Http,
                    "HTTPS" | "https" => Scheme::Https,
                    _ => return Err(InvalidValue),
                })
            }
            Setting::PrestopAction => {
                into.prestop_action = Some(match v {
                    "auto" => PrestopAction::Auto,
                    "sleep" => PrestopAction::Sleep,
                    "exec" => PrestopAction::Exec,
                    _ => return Err(InvalidValue),
                })
            }
            Setting::SkipContainers => {
                let names: Vec<String> = v
                    .split(',')
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                    .map(str::to_owned)
                    .collect();
                if names.iter().any(|n| !is_dns_label(n)) {
                    return Err(InvalidValue);
                }
                into.skip_containers = Some(names);
            }
            Setting::ShellExec => {
                into.shell_exec = Some(match v {
                    "true" => true,
                    "false" => false,
                    _ => return Err(InvalidValue),
                })
            }
            Setting::Drain => {
                into.drain = Some(match v {
                    "sleep" => DrainMode::Sleep,
                    "adaptive" => DrainMode::Adaptive,
                    _ => return Err(InvalidValue),
                })
            }
            Setting::SidecarDrain => {
                into.sidecar_drain = Some(duration::parse_seconds(v).ok_or(InvalidValue)?)
            }
            Setting::DrainMin => into.drain_min = Some(positive_seconds(v)?),
            Setting::DrainQuiet => into.drain_quiet = Some(positive_seconds(v)?),
            Setting::DrainMax => into.drain_max = Some(positive_seconds(v)?),
            Setting::DrainCount => {
                into.drain_count = Some(match v {
                    "requests" => DrainCount::Requests,
                    "connections" => DrainCount::Connections,
                    _ => return Err(InvalidValue),
                })
            }
        }
        Ok(())
    }
}

fn positive_seconds(v: &str) -> Result<u32, InvalidValue> {
    duration::parse_seconds(v)
        .filter(|s| *s > 0)
        .ok_or(InvalidValue)
}

/// Port names follow IANA_SVC_NAME: at most 15 lowercase alphanumerics or '-', with a letter.
fn parse_port(v: &str) -> Option<PortRef> {
    if v.bytes().all(|b| b.is_ascii_digit()) {
        return v
            .parse::<u16>()
            .ok()
            .filter(|n| *n > 0)
            .map(PortRef::Number);
    }
    let ok = !v.is_empty()
        && v.len() <= 15
        && v.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && v.bytes().any(|b| b.is_ascii_lowercase())
        && !v.starts_with('-')
        && !v.ends_with('-')
        && !v.contains("--");
    ok.then(|| PortRef::Name(v.to_owned()))
}

/// A container name (RFC 1123 label) as `skip-containers` accepts it; the exported policy's
/// ledger check uses it too.
pub(crate) fn is_dns_label(n: &str) -> bool {
    n.len() <= 63
        && n.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !n.starts_with('-')
        && !n.ends_with('-')
}

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
    }
}

/// A policy value that does not have the setting's expected format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid value")]
pub struct InvalidValue;

/// Every setting, with its annotation name and the format a person must write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
}

impl Setting {
    pub const ALL: [Setting; 9] = [
        Setting::Mode,
        Setting::PrestopSleep,
        Setting::DrainTimeout,
        Setting::ReadinessPath,
        Setting::ReadinessPort,
        Setting::ReadinessScheme,
        Setting::PrestopAction,
        Setting::SkipContainers,
        Setting::ShellExec,
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
        }
    }

    pub fn from_name(name: &str) -> Option<Setting> {
        Setting::ALL.into_iter().find(|s| s.name() == name)
    }

    pub fn expected(self) -> &'static str {
        match self {
            Setting::Mode => "enforce, audit or off",
            Setting::PrestopSleep | Setting::DrainTimeout => duration::EXPECTED,
            Setting::ReadinessPath => "an absolute HTTP path like /healthz",
            Setting::ReadinessPort => "a port number 1-65535 or a container port name",
            Setting::ReadinessScheme => "HTTP or HTTPS",
            Setting::PrestopAction => "auto, sleep or exec",
            Setting::SkipContainers => "comma-separated container names",
            Setting::ShellExec => "true or false",
        }
    }

    /// Pod-wide settings have no per-container form.
    pub fn per_container(self) -> bool {
        !matches!(self, Setting::Mode | Setting::SkipContainers)
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
        }
        Ok(())
    }
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

fn is_dns_label(n: &str) -> bool {
    n.len() <= 63
        && n.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !n.starts_with('-')
        && !n.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: Setting, raw: &str) -> Result<Partial, InvalidValue> {
        let mut p = Partial::default();
        s.parse_into(raw, &mut p).map(|()| p)
    }

    #[test]
    fn every_setting_round_trips_its_name() {
        for s in Setting::ALL {
            assert_eq!(Setting::from_name(s.name()), Some(s));
        }
        assert_eq!(Setting::from_name("prestop_sleep"), None);
    }

    #[test]
    fn good_values_parse() {
        assert_eq!(
            parse(Setting::Mode, "audit").unwrap().mode,
            Some(Mode::Audit)
        );
        assert_eq!(
            parse(Setting::PrestopSleep, "1m").unwrap().prestop_sleep,
            Some(60)
        );
        assert_eq!(
            parse(Setting::DrainTimeout, "0").unwrap().drain_timeout,
            Some(0)
        );
        assert_eq!(
            parse(Setting::ReadinessPath, "/ready")
                .unwrap()
                .readiness_path
                .as_deref(),
            Some("/ready")
        );
        assert_eq!(
            parse(Setting::ReadinessPort, "8080")
                .unwrap()
                .readiness_port,
            Some(PortRef::Number(8080))
        );
        assert_eq!(
            parse(Setting::ReadinessPort, "http-admin")
                .unwrap()
                .readiness_port,
            Some(PortRef::Name("http-admin".into()))
        );
        assert_eq!(
            parse(Setting::ReadinessScheme, "HTTPS")
                .unwrap()
                .readiness_scheme,
            Some(Scheme::Https)
        );
        assert_eq!(
            parse(Setting::PrestopAction, "exec")
                .unwrap()
                .prestop_action,
            Some(PrestopAction::Exec)
        );
        assert_eq!(
            parse(Setting::SkipContainers, "a, b,,c")
                .unwrap()
                .skip_containers,
            Some(vec!["a".into(), "b".into(), "c".into()])
        );
        assert_eq!(
            parse(Setting::ShellExec, "true").unwrap().shell_exec,
            Some(true)
        );
    }

    #[test]
    fn bad_values_are_refused() {
        let cases = [
            (Setting::Mode, "Enforce"),
            (Setting::Mode, "on"),
            (Setting::PrestopSleep, "banana"),
            (Setting::PrestopSleep, "-1"),
            (Setting::DrainTimeout, "1.5s"),
            (Setting::ReadinessPath, "healthz"),
            (Setting::ReadinessPath, "/a b"),
            (Setting::ReadinessPort, "0"),
            (Setting::ReadinessPort, "70000"),
            (Setting::ReadinessPort, "HTTP"),
            (Setting::ReadinessPort, "a-very-long-port-name"),
            (Setting::ReadinessScheme, "ftp"),
            (Setting::PrestopAction, "kill"),
            (Setting::SkipContainers, "Bad_Name"),
            (Setting::ShellExec, "yes"),
        ];
        for (s, raw) in cases {
            assert!(
                parse(s, raw).is_err(),
                "{} = {raw:?} should be refused",
                s.name()
            );
        }
    }

    #[test]
    fn later_layers_win_and_unset_fields_fall_through() {
        let mut s = Settings::default();
        let cluster = Partial {
            prestop_sleep: Some(10),
            drain_timeout: Some(40),
            ..Default::default()
        };
        let pod = Partial {
            prestop_sleep: Some(3),
            ..Default::default()
        };
        s.apply(&cluster);
        s.apply(&pod);
        assert_eq!(
            (s.prestop_sleep, s.drain_timeout, s.mode),
            (3, 40, Mode::Enforce)
        );
    }
}

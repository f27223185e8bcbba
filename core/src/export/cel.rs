//! CEL text for one setting (whether an annotation's value is valid, and what it means, exactly
//! as policy::settings parses it) and for the pod facts the engine reads (a hook's sleep).

use crate::policy::Setting;

/// What a missing annotation reads as: invalid for every setting, so the next layer decides.
pub const ABSENT: &str = r"'\u0000'";

/// Whitespace as Rust's `char::is_whitespace` knows it (RE2's `\s` is ASCII only).
const SPACE: &str = r"r'[\t\n\x{0B}\f\r \x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}]'";

/// A container name, as `skip-containers` accepts it.
const DNS_LABEL: &str = r"r'^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'";

/// CEL that is true when the value bound to `v` (trimmed) is valid for `setting`.
pub fn valid(setting: Setting, v: &str) -> String {
    let text = match setting {
        Setting::Mode => "$V in ['enforce', 'audit', 'off']".to_owned(),
        Setting::PrestopSleep | Setting::DrainTimeout | Setting::SidecarDrain => duration_valid(),
        Setting::DrainMin | Setting::DrainQuiet | Setting::DrainMax => {
            format!("({} && {} > 0)", duration_valid(), duration_seconds())
        }
        Setting::ReadinessPath => {
            format!("($V.startsWith('/') && bytes($V).size() <= 1024 && !$V.matches({SPACE}))")
        }
        Setting::ReadinessPort => "($V.matches(r'^[0-9]+$') \
             ? ($V.matches(r'^0*[0-9]{1,5}$') && int($V) >= 1 && int($V) <= 65535) \
             : ($V.matches(r'^[a-z0-9-]{1,15}$') && $V.matches(r'[a-z]') \
                && !$V.startsWith('-') && !$V.endsWith('-') && !$V.contains('--')))"
            .to_owned(),
        Setting::ReadinessScheme => "$V in ['HTTP', 'http', 'HTTPS', 'https']".to_owned(),
        Setting::PrestopAction => "$V in ['auto', 'sleep', 'exec']".to_owned(),
        Setting::SkipContainers => format!(
            "{}.all(n, n.matches({DNS_LABEL}) && n.size() <= 63)",
            names()
        ),
        Setting::ShellExec => "$V in ['true', 'false']".to_owned(),
        Setting::Drain => "$V in ['sleep', 'adaptive']".to_owned(),
        Setting::DrainCount => "$V in ['requests', 'connections']".to_owned(),
    };
    text.replace("$V", v)
}

/// CEL for the value of a valid `v`: an int (durations, a port number), a string (a path, a
/// port name, an enum's canonical spelling), a bool or a list of names.
pub fn value(setting: Setting, v: &str) -> String {
    let text = match setting {
        Setting::PrestopSleep
        | Setting::DrainTimeout
        | Setting::SidecarDrain
        | Setting::DrainMin
        | Setting::DrainQuiet
        | Setting::DrainMax => duration_seconds(),
        Setting::ReadinessPort => "($V.matches(r'^[0-9]+$') ? dyn(int($V)) : dyn($V))".to_owned(),
        Setting::ReadinessScheme => "$V.upperAscii()".to_owned(),
        Setting::SkipContainers => names(),
        Setting::ShellExec => "($V == 'true')".to_owned(),
        Setting::Mode
        | Setting::ReadinessPath
        | Setting::PrestopAction
        | Setting::Drain
        | Setting::DrainCount => "$V".to_owned(),
    };
    text.replace("$V", v)
}

/// The first valid value among `candidates` (CEL strings, highest layer first), else `default`.
pub fn resolve(setting: Setting, candidates: &[String], default: &str) -> String {
    format!(
        "([{}].map(v, v.trim()).map(v, {}, {}) + [{default}])[0]",
        candidates.join(", "),
        valid(setting, "v"),
        value(setting, "v"),
    )
}

/// Whole seconds: plain digits, or `1h30m5s` with each unit at most once, largest first; at
/// most a day (policy::duration).
fn duration_valid() -> String {
    format!(
        "($V.matches(r'^[0-9]+$') ? ($V.matches(r'^0*[0-9]{{1,5}}$') && int($V) <= 86400) \
         : ($V != '' && $V.matches(r'^([0-9]{{1,9}}h)?([0-9]{{1,9}}m)?([0-9]{{1,9}}s)?$') \
            && {} <= 86400))",
        units()
    )
}

fn duration_seconds() -> String {
    format!("($V.matches(r'^[0-9]+$') ? int($V) : {})", units())
}

/// The seconds of a value the unit pattern matched: each unit's digits end at its letter and
/// start after the previous unit's.
fn units() -> String {
    let after_h = "($V.contains('h') ? $V.indexOf('h') + 1 : 0)";
    let after_m = format!("($V.contains('m') ? $V.indexOf('m') + 1 : {after_h})");
    format!(
        "(($V.contains('h') ? int($V.substring(0, $V.indexOf('h'))) * 3600 : 0) \
         + ($V.contains('m') ? int($V.substring({after_h}, $V.indexOf('m'))) * 60 : 0) \
         + ($V.contains('s') ? int($V.substring({after_m}, $V.indexOf('s'))) : 0))"
    )
}

/// `skip-containers`' names: split at commas, trimmed, empty ones dropped.
fn names() -> String {
    "$V.split(',').map(n, n.trim()).filter(n, n != '')".to_owned()
}

/// A preStop hook's known sleep for the container bound to `c`: 0 without a hook or when it
/// cannot be read (prestop::existing_sleep), -1 for a sleep of 10 or more digits (the engine
/// saturates at u32, CEL does not: such pods are declined).
pub fn existing_sleep(c: &str) -> String {
    let cmd = format!("{c}.lifecycle.preStop.exec.command");
    format!(
        "(!(has({c}.lifecycle) && has({c}.lifecycle.preStop)) ? 0 \
         : has({c}.lifecycle.preStop.sleep) \
           ? ({c}.lifecycle.preStop.sleep.seconds >= 1000000000 ? -1 : {c}.lifecycle.preStop.sleep.seconds) \
         : (has({c}.lifecycle.preStop.exec) && has({cmd}) && {cmd}.size() == 2 \
            && ({cmd}[0] == 'sleep' || {cmd}[0].endsWith('/sleep')) \
            && {cmd}[1].matches(r'^\\+?[0-9]+$')) \
           ? ({cmd}[1].matches(r'^\\+?0*[0-9]{{1,9}}$') ? int({cmd}[1]) : -1) \
         : 0)"
    )
}

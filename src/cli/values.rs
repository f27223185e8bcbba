//! Typed flag values: Go durations, policy modes, Kubernetes versions, KEY=VALUE pairs.

use clap::builder::TypedValueParser as _;
use std::time::Duration;
use zerodrop_core::engine::Capabilities;
use zerodrop_core::policy::Mode;

/// Modes as the policy spells them (the possible values listed in --help come from `Mode`).
pub(crate) fn mode() -> impl clap::builder::TypedValueParser<Value = Mode> {
    clap::builder::PossibleValuesParser::new(Mode::ALL.map(Mode::as_str))
        .try_map(|raw| raw.parse::<Mode>())
}

/// A Go duration (`500ms`, `10s`, `1m30s`, `8760h`: what Kubernetes flags take), parsed by
/// kube-core, within `max`; a bare number is seconds, as these flags always accepted.
fn go_duration(raw: &str, max: Duration) -> Result<Duration, String> {
    let value = match raw.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) if raw.is_empty() => return Err("expected a duration like 10s or 1m30s".into()),
        Err(_) => {
            let parsed: kube::core::Duration = raw.parse().map_err(|e| format!("{e}"))?;
            if parsed.is_negative() {
                return Err("expected a duration that is not negative".into());
            }
            parsed.into()
        }
    };
    if value > max {
        return Err(format!("expected at most {}h", max.as_secs() / 3600));
    }
    Ok(value)
}

pub(crate) fn duration(raw: &str) -> Result<Duration, String> {
    go_duration(raw, Duration::from_secs(86_400))
}

pub(crate) fn long_duration(raw: &str) -> Result<Duration, String> {
    const TEN_YEARS: u64 = 10 * 365 * 86_400;
    go_duration(raw, Duration::from_secs(TEN_YEARS)).and_then(|d| {
        if d.is_zero() {
            Err("expected a duration above zero".into())
        } else {
            Ok(d)
        }
    })
}

pub(crate) fn kube_version(raw: &str) -> Result<Capabilities, String> {
    Capabilities::parse(raw).ok_or_else(|| "expected a Kubernetes version like 1.34".into())
}

pub(crate) fn key_value(raw: &str) -> Result<(String, String), String> {
    raw.split_once('=')
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| "expected KEY=VALUE".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_go_durations_or_bare_seconds_within_bounds() {
        let ok = |raw: &str| duration(raw).unwrap();
        assert_eq!(ok("500ms"), Duration::from_millis(500));
        assert_eq!(ok("1m30s"), Duration::from_secs(90));
        assert_eq!(ok("5"), Duration::from_secs(5));
        assert_eq!(ok("0"), Duration::ZERO);
        for bad in ["-1s", "25h", "10x", "s", ""] {
            assert!(duration(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            long_duration("8760h").unwrap(),
            Duration::from_secs(8760 * 3600)
        );
        assert!(long_duration("0s").is_err(), "a zero validity is refused");
        assert!(
            long_duration("100000h").is_err(),
            "over ten years is refused"
        );
    }
}

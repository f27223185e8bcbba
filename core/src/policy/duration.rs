//! Duration values of policy settings: `10s`, `1m30s`, `1h`, or plain seconds.

/// Anything above a day is a typo, not a policy; it also keeps arithmetic far from overflow.
pub const MAX_SECONDS: u32 = 86_400;

pub const EXPECTED: &str = "whole seconds like 10, 10s, 1m30s or 1h (at most 24h)";

/// Parses a duration into whole seconds. Sub-second units are refused: preStop sleeps and
/// grace periods are whole seconds in the Pod API.
pub fn parse_seconds(raw: &str) -> Option<u32> {
    parse_up_to(raw, u64::from(MAX_SECONDS)).and_then(|s| u32::try_from(s).ok())
}

/// The same forms with a caller-chosen ceiling (certificate lifetimes run to years).
pub fn parse_up_to(raw: &str, max: u64) -> Option<u64> {
    let s = raw.trim();
    if s.is_empty() {
        return None;
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse::<u64>().ok().filter(|n| *n <= max);
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    let mut last_unit = u64::MAX;
    for ch in s.chars() {
        if ch.is_ascii_digit() {
            digits.push(ch);
            if digits.len() > 9 {
                return None;
            }
            continue;
        }
        let unit = match ch {
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return None,
        };
        // Units must be given once each, largest first (`1m30s`, not `30s1m`).
        if digits.is_empty() || unit >= last_unit {
            return None;
        }
        last_unit = unit;
        total += digits.parse::<u64>().ok()? * unit;
        digits.clear();
    }
    if !digits.is_empty() {
        return None;
    }
    Some(total).filter(|n| *n <= max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_documented_forms() {
        for (raw, want) in [
            ("0", 0),
            ("10", 10),
            ("10s", 10),
            ("1m30s", 90),
            ("2m", 120),
            ("1h", 3600),
            ("1h0m5s", 3605),
            (" 15s ", 15),
            ("24h", 86_400),
        ] {
            assert_eq!(parse_seconds(raw), Some(want), "{raw}");
        }
    }

    #[test]
    fn refuses_everything_else() {
        for raw in [
            "",
            "banana",
            "-5",
            "-5s",
            "1.5s",
            "500ms",
            "10S",
            "s",
            "30s1m",
            "1m1m",
            "25h",
            "86401",
            "99999999999",
            "1d",
            "10 s",
            "0x10",
        ] {
            assert_eq!(parse_seconds(raw), None, "{raw}");
        }
    }
}

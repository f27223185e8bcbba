//! A policy layer read from annotations (namespace or pod), keeping the bad values as findings.

use super::settings::{LEDGER_ANNOTATION, MODE_LABEL, Mode, PREFIX, Partial, Setting};
use crate::findings::{Code, Finding};
use std::collections::BTreeMap;

/// Where a layer came from; decides how findings name the annotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Namespace,
    Pod,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Layer {
    /// Pod-wide values (`zerodrop.dev/<setting>`).
    pub all: Partial,
    /// Per-container values (`zerodrop.dev/<setting>.<container>`), by container name.
    pub containers: BTreeMap<String, Partial>,
    /// Values that were ignored, each naming the annotation and the expected format.
    pub findings: Vec<Finding>,
    /// The settings whose values were ignored (a rule may refuse to act without them).
    pub ignored: Vec<Setting>,
}

impl Layer {
    /// Reads every `zerodrop.dev/` annotation; anything invalid becomes a finding and is ignored.
    pub fn from_annotations<'a>(
        source: Source,
        annotations: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Layer {
        let mut layer = Layer::default();
        for (key, value) in annotations {
            let Some(rest) = key.strip_prefix(PREFIX) else {
                continue;
            };
            if key == LEDGER_ANNOTATION {
                continue;
            }
            let (name, container) = match rest.split_once('.') {
                Some((n, c)) => (n, Some(c)),
                None => (rest, None),
            };
            let Some(setting) = Setting::from_name(name) else {
                layer.findings.push(Finding::new(
                    Code::UnknownSetting,
                    None,
                    format!("ignored unknown annotation {key}"),
                    key,
                ));
                continue;
            };
            let target = match container {
                None => &mut layer.all,
                Some(c) if source == Source::Pod && setting.per_container() => {
                    layer.containers.entry(c.to_owned()).or_default()
                }
                Some(_) => {
                    layer.findings.push(Finding::new(
                        Code::NotPerContainer,
                        None,
                        format!("ignored {key}: {name} is not a per-container setting here"),
                        key,
                    ));
                    continue;
                }
            };
            if setting.parse_into(value, target).is_err() {
                layer.findings.push(bad_value(source, key, value, setting));
                layer.ignored.push(setting);
            }
        }
        layer
    }

    /// The namespace layer: the opt-in label gives the mode; a namespace without it is `off`
    /// (the webhook's namespaceSelector should not have sent us its pods at all).
    pub fn for_namespace<'a>(
        mode_label: Option<&str>,
        annotations: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Layer {
        let mut layer = Layer::from_annotations(Source::Namespace, annotations);
        let mut from_label = Partial::default();
        let parsed = mode_label.map(|v| Setting::Mode.parse_into(v, &mut from_label));
        layer.all.mode = match parsed {
            Some(Ok(())) => from_label.mode,
            Some(Err(_)) => {
                let value = mode_label.unwrap_or_default();
                layer.findings.push(bad_value(
                    Source::Namespace,
                    MODE_LABEL,
                    value,
                    Setting::Mode,
                ));
                Some(Mode::Off)
            }
            None => Some(Mode::Off),
        };
        layer
    }
}

fn bad_value(source: Source, key: &str, value: &str, setting: Setting) -> Finding {
    let whose = match source {
        Source::Namespace => "namespace ",
        Source::Pod => "",
    };
    let shown: String = value.chars().take(16).collect();
    Finding::new(
        Code::BadAnnotation,
        None,
        format!(
            "ignored {whose}{key}={shown:?}: expected {}",
            setting.expected()
        ),
        key,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pod_wide_and_per_container_values() {
        let layer = Layer::from_annotations(
            Source::Pod,
            [
                ("zerodrop.dev/prestop-sleep", "7s"),
                ("zerodrop.dev/drain-timeout.web", "45"),
                ("other.io/prestop-sleep", "banana"),
                ("zerodrop.dev/injected", "{}"),
            ],
        );
        assert_eq!(layer.all.prestop_sleep, Some(7));
        assert_eq!(layer.containers["web"].drain_timeout, Some(45));
        assert!(layer.findings.is_empty(), "{:?}", layer.findings);
    }

    #[test]
    fn bad_values_become_findings_naming_annotation_and_format() {
        let layer = Layer::from_annotations(
            Source::Pod,
            [
                ("zerodrop.dev/prestop-sleep", "banana"),
                ("zerodrop.dev/mode", "sometimes"),
                ("zerodrop.dev/prestop-slep", "5s"),
                ("zerodrop.dev/mode.web", "off"),
            ],
        );
        assert_eq!(layer.all, Partial::default());
        let codes: Vec<Code> = layer.findings.iter().map(|f| f.code).collect();
        assert_eq!(
            codes,
            [
                Code::BadAnnotation,
                Code::BadAnnotation,
                Code::UnknownSetting,
                Code::NotPerContainer
            ]
        );
        let sleep = &layer.findings[0];
        assert_eq!(sleep.fix, "zerodrop.dev/prestop-sleep");
        assert!(
            sleep.message.contains("zerodrop.dev/prestop-sleep"),
            "{}",
            sleep.message
        );
        assert!(sleep.message.contains("10s"), "{}", sleep.message);
    }

    #[test]
    fn namespace_mode_comes_from_the_label() {
        let none: [(&str, &str); 0] = [];
        assert_eq!(
            Layer::for_namespace(Some("audit"), none).all.mode,
            Some(Mode::Audit)
        );
        assert_eq!(Layer::for_namespace(None, none).all.mode, Some(Mode::Off));
        let bad = Layer::for_namespace(Some("yes"), none);
        assert_eq!(bad.all.mode, Some(Mode::Off));
        assert_eq!(bad.findings[0].fix, MODE_LABEL);
    }

    #[test]
    fn namespaces_have_no_per_container_values() {
        let layer =
            Layer::from_annotations(Source::Namespace, [("zerodrop.dev/prestop-sleep.web", "5")]);
        assert!(layer.containers.is_empty());
        assert_eq!(layer.findings[0].code, Code::NotPerContainer);
    }
}

//! A service's rollout settings from three layers: the flags actually given on the command line,
//! then the service's `x-reroll:` in the compose file, then the defaults. Each resolved value
//! remembers its layer, for `--dry-run`.

use std::time::Duration;

use serde_json::Value;

use crate::duration::show;
use crate::rollout::Settings;
use crate::template::Template;

/// One layer: a value per setting, or nothing to say about it.
#[derive(Clone, Debug, Default)]
pub struct Layer {
    pub pre_stop_cmd: Option<Template>,
    pub pre_stop_wait_until_unhealthy: Option<bool>,
    pub healthcheck_timeout: Option<Duration>,
    pub wait: Option<Duration>,
    pub wait_after_healthy: Option<Duration>,
    pub drain_timeout: Option<Duration>,
    pub wait_after_unhealthy: Option<Duration>,
}

/// What a service's `x-reroll:` says besides its settings.
#[derive(Clone, Debug, Default)]
pub struct XReroll {
    pub settings: Layer,
    /// `skip: true`: stack rollouts never touch the service.
    pub skip: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    Flag,
    XReroll,
    Default,
}

impl Source {
    pub fn name(self) -> &'static str {
        match self {
            Source::Flag => "flag",
            Source::XReroll => "x-reroll",
            Source::Default => "default",
        }
    }
}

/// The settings one service's rollout runs with.
#[derive(Clone, Debug)]
pub struct Resolved {
    pub settings: Settings,
    pub pre_stop_cmd: Option<Template>,
    /// (key, value as shown, where it came from), in the README's order.
    pub sources: Vec<(&'static str, String, Source)>,
}

/// Reads `x-reroll:` (as Compose printed it, uninterpolated). Errors name the key and the fix.
pub fn parse_x_reroll(service: &str, value: Option<&Value>) -> Result<XReroll, String> {
    let mut parsed = XReroll::default();
    let Some(value) = value else {
        return Ok(parsed);
    };
    let Some(map) = value.as_object() else {
        return Err(format!(
            "service '{service}': x-reroll must be a mapping of settings: fix the compose file"
        ));
    };
    let layer = &mut parsed.settings;
    for (key, value) in map {
        let bad =
            |why: &str| format!("service '{service}': x-reroll {key}: {why}: fix the compose file");
        if value.as_str().is_some_and(|text| text.contains('$')) {
            // Compose only keeps x- fields in its uninterpolated JSON.
            return Err(bad(
                "variables are not interpolated in x-reroll; write the value itself",
            ));
        }
        let duration = || match value {
            Value::String(text) => crate::duration::parse(text).map_err(|e| bad(&e)),
            Value::Number(n) => n
                .as_u64()
                .map(Duration::from_secs)
                .ok_or_else(|| bad("expected a duration such as 30s, or whole seconds")),
            _ => Err(bad("expected a duration such as 30s, or whole seconds")),
        };
        let switch = || value.as_bool().ok_or_else(|| bad("expected true or false"));
        match key.as_str() {
            "skip" => parsed.skip = switch()?,
            "pre-stop-cmd" => {
                let text = value
                    .as_str()
                    .ok_or_else(|| bad("expected a command line"))?;
                layer.pre_stop_cmd = Some(Template::parse(text).map_err(|e| bad(&e))?);
            }
            "pre-stop-wait-until-unhealthy" => {
                layer.pre_stop_wait_until_unhealthy = Some(switch()?)
            }
            "healthcheck-timeout" => layer.healthcheck_timeout = Some(duration()?),
            "wait" => layer.wait = Some(duration()?),
            "wait-after-healthy" => layer.wait_after_healthy = Some(duration()?),
            "drain-timeout" => layer.drain_timeout = Some(duration()?),
            "wait-after-unhealthy" => layer.wait_after_unhealthy = Some(duration()?),
            _ => {
                return Err(bad(
                    "unknown key (known: skip, pre-stop-cmd, pre-stop-wait-until-unhealthy, \
                     healthcheck-timeout, wait, wait-after-healthy, drain-timeout, wait-after-unhealthy)",
                ));
            }
        }
    }
    Ok(parsed)
}

/// The flags over the file over the defaults.
pub fn resolve(service: &str, flags: &Layer, file: &Layer) -> Result<Resolved, String> {
    let defaults = Settings::default();
    let mut sources = Vec::new();
    // The first layer that has a value, and which one it was.
    fn pick<T: Clone>(
        flag: &Option<T>,
        file: &Option<T>,
        default: Option<T>,
    ) -> (Option<T>, Source) {
        match (flag, file) {
            (Some(value), _) => (Some(value.clone()), Source::Flag),
            (None, Some(value)) => (Some(value.clone()), Source::XReroll),
            (None, None) => (default, Source::Default),
        }
    }
    let derived = || "derived from the healthcheck".to_owned();
    let mut duration = |key, flag: &Option<Duration>, file: &Option<Duration>, default| {
        let (value, source) = pick(flag, file, default);
        sources.push((key, value.map_or_else(derived, show), source));
        value
    };
    let healthcheck_timeout = duration(
        "healthcheck-timeout",
        &flags.healthcheck_timeout,
        &file.healthcheck_timeout,
        defaults.healthcheck_timeout,
    );
    let wait = duration(
        "wait",
        &flags.wait,
        &file.wait,
        Some(defaults.wait_without_healthcheck),
    );
    let wait_after_healthy = duration(
        "wait-after-healthy",
        &flags.wait_after_healthy,
        &file.wait_after_healthy,
        Some(defaults.wait_after_healthy),
    );
    let drain_timeout = duration(
        "drain-timeout",
        &flags.drain_timeout,
        &file.drain_timeout,
        defaults.drain_timeout,
    );
    let wait_after_unhealthy = duration(
        "wait-after-unhealthy",
        &flags.wait_after_unhealthy,
        &file.wait_after_unhealthy,
        Some(defaults.wait_after_unhealthy),
    );
    let (pre_stop_cmd, source) = pick(&flags.pre_stop_cmd, &file.pre_stop_cmd, None);
    sources.push((
        "pre-stop-cmd",
        pre_stop_cmd
            .as_ref()
            .map_or_else(|| "none".to_owned(), ToString::to_string),
        source,
    ));
    let (wait_until_unhealthy, source) = pick(
        &flags.pre_stop_wait_until_unhealthy,
        &file.pre_stop_wait_until_unhealthy,
        Some(false),
    );
    let wait_until_unhealthy = wait_until_unhealthy.unwrap_or(false);
    sources.push((
        "pre-stop-wait-until-unhealthy",
        wait_until_unhealthy.to_string(),
        source,
    ));
    if wait_until_unhealthy && pre_stop_cmd.is_none() {
        return Err(format!(
            "service '{service}': waiting until unhealthy needs a pre-stop command that makes the \
             old containers unhealthy: give --pre-stop-cmd (or x-reroll pre-stop-cmd)"
        ));
    }
    Ok(Resolved {
        settings: Settings {
            healthcheck_timeout,
            wait_without_healthcheck: wait.unwrap_or(defaults.wait_without_healthcheck),
            wait_after_healthy: wait_after_healthy.unwrap_or_default(),
            pre_stop: pre_stop_cmd.is_some(),
            wait_until_unhealthy,
            drain_timeout,
            wait_after_unhealthy: wait_after_unhealthy.unwrap_or_default(),
            ..Settings::default()
        },
        pre_stop_cmd,
        sources,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn flags_override_the_file_which_overrides_the_defaults() {
        let file = parse_x_reroll(
            "web",
            Some(&json!({"wait-after-healthy": "2s", "drain-timeout": 30, "pre-stop-cmd": "touch {id}"})),
        )
        .unwrap();
        let flags = Layer {
            wait_after_healthy: Some(Duration::from_secs(5)),
            ..Layer::default()
        };
        let resolved = resolve("web", &flags, &file.settings).unwrap();
        assert_eq!(resolved.settings.wait_after_healthy, Duration::from_secs(5));
        assert_eq!(
            resolved.settings.drain_timeout,
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            resolved.settings.wait_without_healthcheck,
            Duration::from_secs(10)
        );
        assert!(resolved.settings.pre_stop);
        let source = |key| resolved.sources.iter().find(|s| s.0 == key).unwrap().2;
        assert_eq!(source("wait-after-healthy"), Source::Flag);
        assert_eq!(source("drain-timeout"), Source::XReroll);
        assert_eq!(source("wait"), Source::Default);
        assert_eq!(source("pre-stop-cmd"), Source::XReroll);
    }

    #[test]
    fn bad_values_name_the_service_and_the_key() {
        let cases = [
            (json!({"wait": "soon"}), "x-reroll wait"),
            (json!({"drain-timeout": true}), "x-reroll drain-timeout"),
            (json!({"skip": "yes"}), "x-reroll skip"),
            (
                json!({"pre-stop-cmd": "touch {nope}"}),
                "x-reroll pre-stop-cmd",
            ),
            (json!({"wait": "${WAIT}"}), "not interpolated"),
            (json!({"parallelism": 2}), "unknown key"),
            (json!("fast"), "must be a mapping"),
        ];
        for (value, expected) in cases {
            let error = parse_x_reroll("api", Some(&value)).unwrap_err();
            assert!(error.contains("service 'api'"), "{error}");
            assert!(error.contains(expected), "{value}: {error}");
        }
        assert!(
            parse_x_reroll("api", Some(&json!({"skip": true})))
                .unwrap()
                .skip
        );
    }

    #[test]
    fn waiting_until_unhealthy_needs_a_pre_stop_from_some_layer() {
        let wants_drain = Layer {
            pre_stop_wait_until_unhealthy: Some(true),
            ..Layer::default()
        };
        assert!(resolve("web", &wants_drain, &Layer::default()).is_err());
        let file = Layer {
            pre_stop_cmd: Some(Template::parse("touch {id}").unwrap()),
            ..Layer::default()
        };
        assert!(resolve("web", &wants_drain, &file).is_ok());
    }
}

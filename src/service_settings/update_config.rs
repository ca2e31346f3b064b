//! `deploy.update_config`, the Compose spec's own rollout settings, as the layer under
//! `x-reroll:`. Compose checks their types and `order`, not `failure_action` nor the ranges: a bad
//! value is refused here, before anything changes.

use super::Layer;
use crate::model::policy::{FailureAction, Order};
use crate::model::project::UpdateConfig;

pub fn update_config_layer(service: &str, raw: &UpdateConfig) -> Result<Layer, String> {
    let refusal = |key: &'static str, flag: &'static str| {
        move |why: String| {
            format!(
                "service '{service}': deploy.update_config.{key} {why}: fix the compose file, or \
                 override it with --{flag}"
            )
        }
    };
    let duration =
        |key: &'static str, flag: &'static str, text: &Option<String>| -> Result<_, String> {
            text.as_deref()
                .map(|text| {
                    crate::duration::parse(text)
                        .map_err(|why| refusal(key, flag)(format!("({why})")))
                })
                .transpose()
        };
    Ok(Layer {
        parallelism: checked(
            raw.parallelism,
            |count| u32::try_from(*count).ok(),
            |count| format!("{count} is more containers than a batch can hold"),
            refusal("parallelism", "parallelism"),
        )?,
        delay: duration("delay", "delay", &raw.delay)?,
        // Swarm's monitor: how long a new task is watched after it started, a failure meanwhile
        // counting as the update's. Here that is the watch after healthy.
        wait_after_healthy: duration("monitor", "wait-after-healthy", &raw.monitor)?,
        order: checked(
            raw.order.as_deref(),
            |text| Order::parse(text),
            |text| format!("'{text}' is not start-first or stop-first"),
            refusal("order", "order"),
        )?,
        failure_action: checked(
            raw.failure_action.as_deref(),
            |text| FailureAction::parse(text),
            |text| format!("'{text}' is not rollback, pause or continue"),
            refusal("failure_action", "failure-action"),
        )?,
        max_failure_ratio: checked(
            raw.max_failure_ratio,
            |ratio| (0.0..=1.0).contains(ratio).then_some(*ratio),
            |ratio| format!("{ratio} is not a ratio from 0 to 1"),
            refusal("max_failure_ratio", "max-failure-ratio"),
        )?,
        ..Layer::default()
    })
}

/// A key's value as `convert` makes it, or the refusal saying `why` not; nothing when the file
/// leaves the key out.
fn checked<T, U>(
    value: Option<T>,
    convert: impl FnOnce(&T) -> Option<U>,
    why: impl FnOnce(&T) -> String,
    refusal: impl FnOnce(String) -> String,
) -> Result<Option<U>, String> {
    match value {
        None => Ok(None),
        Some(value) => convert(&value)
            .map(Some)
            .ok_or_else(|| refusal(why(&value))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn reads_every_key_as_compose_prints_it() {
        let raw: UpdateConfig = serde_json::from_value(serde_json::json!({
            "parallelism": 2, "delay": "1m30s", "monitor": "1.5s", "failure_action": "continue",
            "max_failure_ratio": 0.25, "order": "stop-first",
        }))
        .unwrap();
        let layer = update_config_layer("web", &raw).unwrap();
        assert_eq!(layer.parallelism, Some(2));
        assert_eq!(layer.delay, Some(Duration::from_secs(90)));
        assert_eq!(layer.wait_after_healthy, Some(Duration::from_millis(1500)));
        assert_eq!(layer.failure_action, Some(FailureAction::Continue));
        assert_eq!(layer.max_failure_ratio, Some(0.25));
        assert_eq!(layer.order, Some(Order::StopFirst));
        let empty = update_config_layer("web", &UpdateConfig::default()).unwrap();
        assert_eq!((empty.parallelism, empty.delay), (None, None));
    }

    #[test]
    fn a_bad_value_is_one_line_naming_the_service_the_key_and_the_fix() {
        let raw = UpdateConfig::default;
        let cases = [
            (
                UpdateConfig {
                    failure_action: Some("retry".into()),
                    ..raw()
                },
                "deploy.update_config.failure_action 'retry' is not rollback, pause or continue",
                "--failure-action",
            ),
            (
                UpdateConfig {
                    max_failure_ratio: Some(1.5),
                    ..raw()
                },
                "deploy.update_config.max_failure_ratio 1.5 is not a ratio from 0 to 1",
                "--max-failure-ratio",
            ),
            (
                UpdateConfig {
                    max_failure_ratio: Some(-0.1),
                    ..raw()
                },
                "deploy.update_config.max_failure_ratio -0.1",
                "--max-failure-ratio",
            ),
            (
                UpdateConfig {
                    delay: Some("soon".into()),
                    ..raw()
                },
                "deploy.update_config.delay ('soon' is not a duration",
                "--delay",
            ),
            (
                UpdateConfig {
                    monitor: Some("-1s".into()),
                    ..raw()
                },
                "deploy.update_config.monitor ('-1s' is not a duration",
                "--wait-after-healthy",
            ),
            (
                UpdateConfig {
                    order: Some("sideways".into()),
                    ..raw()
                },
                "deploy.update_config.order 'sideways' is not start-first or stop-first",
                "--order",
            ),
            (
                UpdateConfig {
                    parallelism: Some(u64::MAX),
                    ..raw()
                },
                "deploy.update_config.parallelism",
                "--parallelism",
            ),
        ];
        for (raw, problem, flag) in cases {
            let error = update_config_layer("api", &raw).unwrap_err();
            assert!(error.starts_with("service 'api': "), "{error}");
            assert!(error.contains(problem), "{error}");
            assert!(error.contains("fix the compose file"), "{error}");
            assert!(error.contains(flag), "{error}");
            assert_eq!(error.lines().count(), 1, "{error}");
        }
    }
}

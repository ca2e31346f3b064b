//! The compose override that hands a service's rollout to Swarm the way this tool would do it:
//! `update_config` with the resolved order (start-first by default), failure action (rollback),
//! parallelism, delay and failure ratio, and a `monitor` derived from the healthcheck; a
//! `rollback_config` that starts the old tasks before stopping the new ones.

use std::time::Duration;

use serde_json::{Value, json};

use crate::model::container::Healthcheck;
use crate::rollout::settings::Settings;

/// How long Swarm watches a task once it runs: `--wait-after-healthy` or `update_config.monitor`
/// when given, else the time its healthcheck takes to call a healthy task unhealthy, else 5s.
pub fn monitor(settings: &Settings, healthcheck: Option<&Healthcheck>) -> Duration {
    if !settings.wait_after_healthy.is_zero() {
        return settings.wait_after_healthy;
    }
    healthcheck.map_or(Duration::from_secs(5), |h| {
        (h.interval + h.timeout) * (h.retries + 1)
    })
}

/// `{"services": {S: {"deploy": {"update_config": …, "rollback_config": …}}}}`
pub fn update_override(services: &[(String, Settings, Duration)]) -> Value {
    let go = |duration: Duration| format!("{}ms", duration.as_millis());
    let services: serde_json::Map<String, Value> = services
        .iter()
        .map(|(service, settings, monitor)| {
            let deploy = json!({
                "update_config": {
                    "parallelism": settings.parallelism,
                    "delay": go(settings.delay),
                    "order": settings.order.name(),
                    "failure_action": settings.failure_action.name(),
                    "monitor": go(*monitor),
                    "max_failure_ratio": settings.max_failure_ratio,
                },
                "rollback_config": {
                    "parallelism": 0,
                    "order": "start-first",
                    "failure_action": "pause",
                    "monitor": go(*monitor),
                },
            });
            (service.clone(), json!({ "deploy": deploy }))
        })
        .collect();
    json!({ "services": services })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_monitor_comes_from_the_flag_else_the_healthcheck() {
        let check = Healthcheck::with_defaults(1_000_000_000, 1_000_000_000, 0, 2);
        let mut settings = Settings::default();
        assert_eq!(monitor(&settings, Some(&check)), Duration::from_secs(6));
        assert_eq!(monitor(&settings, None), Duration::from_secs(5));
        settings.wait_after_healthy = Duration::from_secs(9);
        assert_eq!(monitor(&settings, Some(&check)), Duration::from_secs(9));
    }

    #[test]
    fn defaults_roll_start_first_and_back_on_failure() {
        let value = update_override(&[(
            "app".into(),
            Settings::default(),
            Duration::from_millis(1500),
        )]);
        let update = &value["services"]["app"]["deploy"]["update_config"];
        assert_eq!(update["order"], "start-first");
        assert_eq!(update["failure_action"], "rollback");
        assert_eq!(update["monitor"], "1500ms");
        assert_eq!(
            value["services"]["app"]["deploy"]["rollback_config"]["order"],
            "start-first"
        );
    }
}

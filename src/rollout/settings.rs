//! The rollout's knobs, as the command line resolved them.

use std::time::Duration;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// None: derived from the new containers' healthcheck.
    pub healthcheck_timeout: Option<Duration>,
    /// How long new containers without a healthcheck must keep running.
    pub wait_without_healthcheck: Duration,
    pub wait_after_healthy: Duration,
    pub pre_stop: bool,
    pub wait_until_unhealthy: bool,
    /// None: derived from the old containers' healthcheck.
    pub drain_timeout: Option<Duration>,
    pub wait_after_unhealthy: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            healthcheck_timeout: None,
            wait_without_healthcheck: Duration::from_secs(10),
            wait_after_healthy: Duration::ZERO,
            pre_stop: false,
            wait_until_unhealthy: false,
            drain_timeout: None,
            wait_after_unhealthy: Duration::ZERO,
        }
    }
}

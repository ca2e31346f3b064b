//! The rollout's knobs, as the command line, `x-reroll:` and `deploy.update_config` resolved them.

use std::time::Duration;

use crate::model::policy::{FailureAction, Order, StillRouting};

#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// None: derived from the new containers' healthcheck.
    pub healthcheck_timeout: Option<Duration>,
    /// How long new containers without a healthcheck must keep running.
    pub wait_without_healthcheck: Duration,
    /// Watch the new containers this long once healthy (`--wait-after-healthy`, or
    /// `update_config.monitor`): a failure meanwhile still counts.
    pub wait_after_healthy: Duration,
    pub pre_stop: bool,
    /// An undo command exists for the pre-stop (run on old containers a rollback restarts).
    pub undo_pre_stop: bool,
    pub wait_until_unhealthy: bool,
    /// None: derived from the old containers' healthcheck.
    pub drain_timeout: Option<Duration>,
    pub wait_after_unhealthy: Duration,
    /// Containers replaced per batch; 0: all at once.
    pub parallelism: u32,
    /// Pause between batches.
    pub delay: Duration,
    pub order: Order,
    pub failure_action: FailureAction,
    /// The share of new containers allowed to fail before `failure_action` applies (0.0–1.0).
    pub max_failure_ratio: f64,
    /// A proxy adapter is configured: wait until it routes to the new containers before the old
    /// ones are touched, and until it no longer routes to an old container before stopping it.
    pub verify_proxy: bool,
    /// How long each of those waits may take.
    pub proxy_timeout: Duration,
    pub still_routing: StillRouting,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            healthcheck_timeout: None,
            wait_without_healthcheck: Duration::from_secs(10),
            wait_after_healthy: Duration::ZERO,
            pre_stop: false,
            undo_pre_stop: false,
            wait_until_unhealthy: false,
            drain_timeout: None,
            wait_after_unhealthy: Duration::ZERO,
            parallelism: 0,
            delay: Duration::ZERO,
            order: Order::StartFirst,
            failure_action: FailureAction::Rollback,
            max_failure_ratio: 0.0,
            verify_proxy: false,
            proxy_timeout: Duration::from_secs(30),
            still_routing: StillRouting::Keep,
        }
    }
}

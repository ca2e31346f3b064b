//! The rollout's knobs, as the command line, `x-reroll:` and `deploy.update_config` resolved them.

use std::time::Duration;

/// `deploy.update_config.order`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Order {
    /// New containers start before old ones stop: no gap, briefly more containers.
    #[default]
    StartFirst,
    /// Old containers stop before new ones start: for services that cannot run twice (a fixed
    /// host port, a singleton worker), at the price of a gap.
    StopFirst,
}

impl Order {
    pub fn name(self) -> &'static str {
        match self {
            Order::StartFirst => "start-first",
            Order::StopFirst => "stop-first",
        }
    }

    pub fn parse(text: &str) -> Option<Order> {
        match text {
            "start-first" => Some(Order::StartFirst),
            "stop-first" => Some(Order::StopFirst),
            _ => None,
        }
    }
}

/// `deploy.update_config.failure_action`: what a failed batch leads to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureAction {
    /// Restore the old containers across every batch already done.
    #[default]
    Rollback,
    /// Undo the failed batch only and stop: earlier batches stay rolled.
    Pause,
    /// Undo the failed batch only and go on with the next one.
    Continue,
}

impl FailureAction {
    pub fn name(self) -> &'static str {
        match self {
            FailureAction::Rollback => "rollback",
            FailureAction::Pause => "pause",
            FailureAction::Continue => "continue",
        }
    }

    pub fn parse(text: &str) -> Option<FailureAction> {
        match text {
            "rollback" => Some(FailureAction::Rollback),
            "pause" => Some(FailureAction::Pause),
            "continue" => Some(FailureAction::Continue),
            _ => None,
        }
    }
}

/// What happens to an old container the proxy still routes to when the proxy timeout passes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StillRouting {
    /// Leave it running and serving, undo its pre-stop, and say so (exit 1): no request is cut.
    #[default]
    Keep,
    /// Stop it anyway: requests the proxy still sends it fail.
    Stop,
}

impl StillRouting {
    pub fn name(self) -> &'static str {
        match self {
            StillRouting::Keep => "keep",
            StillRouting::Stop => "stop",
        }
    }

    pub fn parse(text: &str) -> Option<StillRouting> {
        match text {
            "keep" => Some(StillRouting::Keep),
            "stop" => Some(StillRouting::Stop),
            _ => None,
        }
    }
}

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

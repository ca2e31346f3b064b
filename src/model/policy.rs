//! How a rollout treats the old containers and failures: `deploy.update_config`'s order and
//! failure action, and what happens to an old container a proxy keeps routing to.

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

/// Who runs the health checks of the containers a rollout waits on (Podman without systemd
/// runs none by itself).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum HealthRunner {
    #[default]
    Auto,
    Engine,
    Tool,
}

impl HealthRunner {
    /// A service's `x-reroll: health-runner:` value.
    pub fn parse(text: &str) -> Option<HealthRunner> {
        <HealthRunner as clap::ValueEnum>::from_str(text, false).ok()
    }
}

/// A share from 0 to 1 (`--max-failure-ratio`, `--probe-max-error-rate`).
pub fn parse_ratio(text: &str) -> Result<f64, String> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|ratio| (0.0..=1.0).contains(ratio))
        .ok_or_else(|| format!("'{text}' is not a ratio: give a number from 0 to 1, e.g. 0.25"))
}

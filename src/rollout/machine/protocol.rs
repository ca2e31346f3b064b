//! What the machine and its driver say to each other: the inputs it takes, the actions it asks
//! for, the notes for the user, and the phase it is in.

use tokio::time::Instant;

use super::canary::Sample;
use super::fleet::{Created, Status};
use crate::exit::Exit;
use crate::model::container::Container;
use crate::model::routing::Routing;
use crate::model::signal::Signal;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Cleanup,
    Scale,
    Health,
    Settle,
    PreStop,
    Drain,
    /// Asking the proxy until it routes to every new container of the batch.
    ProxyIn,
    /// Asking the proxy until it no longer routes to the old containers being drained.
    ProxyOut,
    /// `--wait-after-unhealthy`: time for the proxy to notice the drained containers.
    ProxyWait,
    Retire,
    /// `update_config.delay` between batches, watching the new containers.
    Delay,
    /// A canary step's pause: the new containers serve next to the old ones and are judged.
    Step,
    /// After the last step: the old containers are kept stopped while the checks go on.
    Bake,
    /// Removing the old containers kept stopped for a rollback, once none can come.
    Prune,
    Verify,
    Rollback,
    Done,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Cleanup => "cleanup",
            Phase::Scale => "scale",
            Phase::Health => "health",
            Phase::Settle => "settle",
            Phase::PreStop => "pre-stop",
            Phase::Drain => "drain",
            Phase::ProxyIn => "proxy-in",
            Phase::ProxyOut => "proxy-out",
            Phase::ProxyWait => "proxy-wait",
            Phase::Retire => "retire",
            Phase::Delay => "delay",
            Phase::Step => "step",
            Phase::Bake => "bake",
            Phase::Prune => "prune",
            Phase::Verify => "verify",
            Phase::Rollback => "rollback",
            Phase::Done => "done",
        }
    }

    /// Old containers are being drained or stopped: that step finishes, whatever happens.
    pub(super) fn touches_old(self) -> bool {
        matches!(
            self,
            Phase::PreStop | Phase::Drain | Phase::ProxyOut | Phase::ProxyWait | Phase::Retire
        )
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    Begin,
    /// The last action succeeded.
    Done,
    /// The last action failed; the text says how.
    Failed(String),
    /// The scale finished; these containers are the ones it created.
    Scaled(Vec<Created>),
    /// The statuses of the watched containers; a watched id missing here no longer exists.
    Observed(Vec<Status>),
    /// The deadline of the current wait passed.
    Deadline,
    /// The pre-stop commands ran; these failed, with why.
    PreStopFinished(Vec<(String, String)>),
    Interrupted(Signal),
    /// Every container of the service, after retirement.
    Verified(Vec<Container>),
    /// What the proxy routes to now, or why it could not be asked.
    Routing(Result<Routing, String>),
    /// What the canary's checks saw, and what another process asked for.
    Analysis(Sample),
    /// Removing the new containers failed; these are left.
    RollbackFailed {
        left: Vec<String>,
        why: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// `docker rm -f` containers that do not serve (leftovers, old ones kept stopped).
    Remove(Vec<String>),
    /// `compose up --scale SERVICE=total`, then report the containers it created.
    Scale {
        total: u32,
        /// Create without starting, then start the created ones by id: Compose would also
        /// start the stopped old containers kept for a rollback.
        start_by_id: bool,
    },
    /// Report the statuses of these containers on every change, and `Deadline` at `until`.
    Watch {
        ids: Vec<String>,
        until: Instant,
    },
    PreStop(Vec<String>),
    /// Report what the proxy does with these containers on every change, and `Deadline` at
    /// `until`.
    AwaitProxy {
        ids: Vec<String>,
        until: Instant,
    },
    /// Undo the pre-stop on old containers left serving.
    UndoPreStop(Vec<String>),
    /// `docker stop` (their own grace period), then `docker rm` unless `keep`.
    Retire {
        ids: Vec<String>,
        /// Stopped, not removed: a rollback may start them again.
        keep: bool,
    },
    /// `docker start` old containers kept stopped, then the pre-stop's undo command on each.
    Restore(Vec<String>),
    /// List every container of the service.
    Verify,
    /// Collect what the canary's checks saw since last asked (and run the analysis command when
    /// `command`), and whether promote or abort was asked for.
    Analyze {
        command: bool,
        /// A window just opened: what the checks saw before it does not count.
        reset: bool,
    },
    /// Stop and remove every container of the service except these.
    RollBack {
        keep: Vec<String>,
    },
    Finish(Outcome),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub exit: Exit,
    pub message: String,
}

/// Something worth telling the user as it happens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Note {
    Info(String),
    Warning(String),
}

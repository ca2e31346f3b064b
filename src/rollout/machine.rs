//! The rollout's decisions, free of I/O: it takes what was observed and answers with the next
//! action. Time comes in as `now`, so every timeout is testable without waiting.
//!
//! The work comes in batches (`deploy.update_config.parallelism`; one batch when everything is
//! replaced at once). A batch starts its new containers, waits until they are healthy, then
//! drains and retires its share of the old ones (`order: stop-first` turns that around).
//!
//! The line it never crosses: a failure or a signal while old containers drain lets that step
//! finish, since the new containers already serve. Any other failure undoes work as
//! `failure_action` says: the failed batch's new containers go, and with `rollback` the old
//! containers that earlier batches retired come back; they were kept stopped, not removed, for
//! exactly that.

use std::collections::BTreeMap;

use tokio::time::Instant;

use super::Settings;
use crate::duration::show;
use crate::exit::Exit;
use crate::model::container::{Container, Health, Healthcheck, State};
use crate::model::policy::{FailureAction, Order, StillRouting};
use crate::model::routing::{Route, Routing};
pub use crate::model::signal::Signal;
use crate::plan::Plan;
use crate::template::short_id;
use canary::{CanaryRun, Next, Sample, Standing};
use retreat::{Retreat, RollbackStep};

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
    fn touches_old(self) -> bool {
        matches!(
            self,
            Phase::PreStop | Phase::Drain | Phase::ProxyOut | Phase::ProxyWait | Phase::Retire
        )
    }
}

/// The latest known status of one watched container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub id: String,
    pub state: State,
    pub health: Health,
    pub exit_code: i64,
}

impl Status {
    /// Unhealthy, or not running at all: either way the proxy no longer routes to it.
    fn is_drained(&self) -> bool {
        self.health == Health::Unhealthy || self.state != State::Running
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Created {
    pub id: String,
    pub healthcheck: Option<Healthcheck>,
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

pub struct Machine {
    plan: Plan,
    settings: Settings,
    phase: Phase,
    /// The new containers: adopted from an interrupted run, then created batch by batch.
    new: Vec<Created>,
    /// Index of the current batch in `plan.batches`.
    batch: usize,
    /// The new containers of the current batch.
    batch_new: Vec<String>,
    /// Old containers retired but kept stopped, so that a rollback can start them again.
    kept: Vec<String>,
    /// Old containers retired and removed.
    removed: Vec<String>,
    /// Old containers left serving because their batch failed and the failure was tolerated.
    spared: Vec<String>,
    /// How many new containers failed so far (for `max_failure_ratio`).
    failed: u32,
    /// The last known status of every container watched so far.
    statuses: BTreeMap<String, Status>,
    /// Old containers whose pre-stop failed: not waited on to turn unhealthy.
    undrained: Vec<String>,
    /// Old containers left serving because the proxy still routed to them when its wait ran out.
    held: Vec<String>,
    /// What the proxy showed last in the current wait (or why it could not be asked).
    proxy_seen: Option<Result<Routing, String>>,
    failure: Option<String>,
    retreat: Retreat,
    signal: Option<Signal>,
    current: Option<Action>,
    notes: Vec<Note>,
    /// Steps, pauses and checks, when the rollout is a canary.
    canary: Option<CanaryRun>,
}

impl Machine {
    pub fn new(plan: Plan, settings: Settings) -> Self {
        let new: Vec<Created> = plan
            .adopted
            .iter()
            .map(|c| Created {
                id: c.id.clone(),
                healthcheck: c.healthcheck,
            })
            .collect();
        Machine {
            batch_new: new.iter().map(|c| c.id.clone()).collect(),
            new,
            plan,
            settings,
            phase: Phase::Cleanup,
            batch: 0,
            kept: Vec::new(),
            removed: Vec::new(),
            spared: Vec::new(),
            failed: 0,
            statuses: BTreeMap::new(),
            undrained: Vec::new(),
            held: Vec::new(),
            proxy_seen: None,
            failure: None,
            retreat: Retreat::default(),
            signal: None,
            current: None,
            notes: Vec::new(),
            canary: None,
        }
    }

    /// A canary rollout: pauses after some batches, a bake after the last (`crate::canary`).
    pub fn with_canary(mut self, canary: CanaryRun) -> Self {
        self.canary = Some(canary);
        self
    }

    /// Where a canary's pause or bake stands, while one is open.
    pub fn standing(&self, now: Instant) -> Option<Standing> {
        self.canary.as_ref()?.standing(now)
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    pub fn failure(&self) -> Option<&str> {
        self.failure.as_deref()
    }

    pub fn new_ids(&self) -> Vec<String> {
        self.new.iter().map(|c| c.id.clone()).collect()
    }

    /// Whether old and new containers of this run serve side by side (a paused rollout).
    pub fn is_mixed(&self) -> bool {
        let old_left = self.plan.retire.len() > self.removed.len();
        !self.new.is_empty() && old_left
    }

    pub fn take_notes(&mut self) -> Vec<Note> {
        std::mem::take(&mut self.notes)
    }

    pub fn handle(&mut self, input: Input, now: Instant) -> Action {
        let action = self.decide(input, now);
        self.current = Some(action.clone());
        action
    }

    fn decide(&mut self, input: Input, now: Instant) -> Action {
        if let Input::Interrupted(signal) = input {
            return self.interrupted(signal, now);
        }
        match (self.phase, input) {
            (Phase::Cleanup, Input::Begin) => {
                if self.plan.order == Order::StopFirst && !self.plan.is_first_deploy() {
                    self.notes.push(Note::Warning(
                        "order stop-first: old containers stop before their replacements start, \
                         so the service has a gap (fewer or no containers serving) in each batch"
                            .into(),
                    ));
                }
                let leftovers: Vec<String> =
                    self.plan.leftovers.iter().map(|c| c.id.clone()).collect();
                if leftovers.is_empty() {
                    self.start_batch(now)
                } else {
                    Action::Remove(leftovers)
                }
            }
            (Phase::Cleanup, Input::Done) => self.start_batch(now),
            (Phase::Cleanup, Input::Failed(why)) => self.fail(
                format!("could not remove the stopped leftovers: {why}"),
                0,
                now,
            ),

            (Phase::Scale, Input::Scaled(created)) => {
                let expected = self.current_batch().create as usize;
                let ids: Vec<String> = created.iter().map(|c| c.id.clone()).collect();
                self.batch_new.extend(ids.iter().cloned());
                if created.len() != expected {
                    let shown: Vec<&str> = ids.iter().map(|id| short_id(id)).collect();
                    // Known now, so that the rollback drains and removes them too.
                    self.new.extend(created);
                    return self.fail(
                        format!(
                            "the scale created {} container(s) ({}) where {expected} were asked for",
                            ids.len(),
                            shown.join(" ")
                        ),
                        0,
                        now,
                    );
                }
                self.new.extend(created);
                self.await_health(now)
            }
            (Phase::Scale, Input::Failed(why)) => {
                self.fail(format!("the scale failed: {why}"), 0, now)
            }

            (Phase::Health, Input::Observed(statuses)) => {
                self.record(statuses);
                match self.judge_new(false) {
                    Judgement::Failed(why) => self.fail_release(why, now),
                    Judgement::Passed => self.settle(now),
                    Judgement::Pending(_) => self.current.clone().expect("watching"),
                }
            }
            (Phase::Health, Input::Deadline) => match self.judge_new(true) {
                Judgement::Passed => self.settle(now),
                Judgement::Failed(why) | Judgement::Pending(why) => self.fail_release(why, now),
            },

            (Phase::Settle | Phase::Delay, Input::Observed(statuses)) => {
                self.record(statuses);
                match self.judge_new(true) {
                    Judgement::Failed(why) | Judgement::Pending(why) => {
                        let when = if self.phase == Phase::Settle {
                            "while settling"
                        } else {
                            "between batches"
                        };
                        self.fail_release(format!("{when}: {why}"), now)
                    }
                    Judgement::Passed => self.current.clone().expect("watching"),
                }
            }
            (Phase::Settle, Input::Deadline) => self.healthy_enough(now),

            (Phase::Step | Phase::Bake, Input::Observed(statuses)) => {
                self.record(statuses);
                match self.judge_new(true) {
                    Judgement::Failed(why) | Judgement::Pending(why) => {
                        self.fail_release(format!("during the {}: {why}", self.phase.name()), now)
                    }
                    Judgement::Passed => self.current.clone().expect("watching"),
                }
            }
            (Phase::Step | Phase::Bake, Input::Deadline) => {
                let next = self.canary_mut().tick(now);
                self.canary_next(next, now)
            }
            (Phase::Step | Phase::Bake, Input::Analysis(sample)) => {
                let next = self.canary_mut().sample(sample, now);
                self.canary_next(next, now)
            }
            (Phase::Delay, Input::Deadline) => self.next_batch(now),

            (Phase::PreStop, Input::PreStopFinished(failures)) => {
                for (id, why) in failures {
                    self.notes.push(Note::Warning(format!(
                        "pre-stop failed on {}: {why}; it is stopped without waiting for it to drain",
                        short_id(&id)
                    )));
                    self.undrained.push(id);
                }
                self.drain(now)
            }

            (Phase::Drain, Input::Observed(statuses)) => {
                self.record(statuses);
                if self.drained() {
                    self.proxy_out(now)
                } else {
                    self.current.clone().expect("draining")
                }
            }
            (Phase::Drain, Input::Deadline) => {
                let late: Vec<String> = self
                    .draining_ids()
                    .into_iter()
                    .filter(|id| !self.statuses.get(id).is_some_and(Status::is_drained))
                    .collect();
                self.notes.push(Note::Warning(format!(
                    "old container(s) {} did not turn unhealthy in time",
                    list(&late)
                )));
                self.proxy_out(now)
            }
            (Phase::ProxyIn, Input::Routing(seen)) => {
                let routed = matches!(&seen, Ok(routing) if routing.serves_all(&self.batch_new));
                self.proxy_seen = Some(seen);
                if routed {
                    self.routed_in(now)
                } else {
                    self.current.clone().expect("asking the proxy")
                }
            }
            (Phase::ProxyIn, Input::Deadline) => {
                let why = format!(
                    "the proxy did not route to new container(s) {} within {} ({}: {})",
                    list(&self.batch_new),
                    show(self.settings.proxy_timeout),
                    self.proxy_pending(&self.batch_new.clone()),
                    self.proxy_shown()
                );
                self.fail_release(why, now)
            }
            (Phase::ProxyOut, Input::Routing(seen)) => {
                let dropped = matches!(&seen, Ok(routing) if routing.still_routed(&self.current_batch().retire).is_empty());
                self.proxy_seen = Some(seen);
                if dropped {
                    self.proxy_wait(now)
                } else {
                    self.current.clone().expect("asking the proxy")
                }
            }
            (Phase::ProxyOut, Input::Deadline) => self.still_routed(now),
            (Phase::ProxyOut, Input::Done) => self.proxy_wait(now),
            (Phase::ProxyWait, Input::Deadline) => self.retire(now),

            (Phase::Retire, Input::Done) => {
                let Some(Action::Retire { ids, keep }) = self.current.clone() else {
                    unreachable!("retiring")
                };
                if keep {
                    self.kept.extend(ids);
                } else {
                    self.removed.extend(ids);
                }
                self.retired(now)
            }
            (Phase::Retire, Input::Failed(why)) => {
                self.phase = Phase::Done;
                Action::Finish(Outcome {
                    exit: Exit::Incomplete,
                    message: format!(
                        "the new containers serve, but retiring the old ones failed: {why}; \
                         left running: {ids}; fix: docker rm -f {ids}",
                        ids = self.retiring_now().join(" ")
                    ),
                })
            }

            (Phase::Prune, Input::Done) => self.verify_now(),
            (Phase::Prune, Input::Failed(why)) => {
                self.notes.push(Note::Warning(format!(
                    "removing the old containers kept stopped failed: {why}"
                )));
                self.verify_now()
            }

            (Phase::Verify, Input::Verified(containers)) => self.verify(&containers),
            (Phase::Verify, Input::Failed(why)) => {
                self.phase = Phase::Done;
                Action::Finish(Outcome {
                    exit: Exit::Incomplete,
                    message: format!("the rollout ran, but listing the result failed: {why}"),
                })
            }

            (Phase::Rollback, input) => self.retreating(input, now),

            // Anything else (a stale observation, a late deadline) changes nothing.
            (_, _) => self.current.clone().unwrap_or(Action::Finish(Outcome {
                exit: Exit::Incomplete,
                message: "internal error: the rollout received an input before it began".into(),
            })),
        }
    }

    fn interrupted(&mut self, signal: Signal, now: Instant) -> Action {
        match self.phase {
            Phase::Rollback => {
                let draining = matches!(
                    self.retreat.sub,
                    RollbackStep::Drain | RollbackStep::ProxyOut | RollbackStep::ProxyWait
                );
                if self.signal.is_some() && draining {
                    // Asked again while draining the new containers: remove them now.
                    return self.remove_dropped();
                }
                if self.signal.is_none() {
                    // A failure may beat the signal that caused it (Ctrl-C kills a `docker` child
                    // first): the run still ends as interrupted, and only a second one cuts the
                    // drain short.
                    self.signal = Some(signal);
                    if draining {
                        self.notes.push(Note::Warning(
                            "interrupted while rolling back: finishing the rollback first                              (interrupt again to stop draining the new containers)"
                                .into(),
                        ));
                    }
                }
                self.current.clone().expect("rolling back")
            }
            Phase::Done => self.current.clone().expect("finished"),
            phase if phase.touches_old() => {
                if self.signal.is_some()
                    && matches!(phase, Phase::Drain | Phase::ProxyOut | Phase::ProxyWait)
                {
                    self.notes.push(Note::Warning(
                        "interrupted again: retiring the old containers without waiting further"
                            .into(),
                    ));
                    return self.retire(now);
                }
                if self.signal.is_none() {
                    self.notes.push(Note::Warning(
                        "interrupted while old containers drain: finishing that step first, since \
                         the new containers already serve (interrupt again to stop waiting and retire them now)"
                            .into(),
                    ));
                }
                self.signal.get_or_insert(signal);
                self.current.clone().expect("a running phase has an action")
            }
            Phase::Prune | Phase::Verify => {
                self.signal.get_or_insert(signal);
                self.current.clone().expect("finishing")
            }
            _ => {
                self.signal.get_or_insert(signal);
                self.fail(interruption(signal), 0, now)
            }
        }
    }

    fn current_batch(&self) -> &crate::plan::Batch {
        &self.plan.batches[self.batch]
    }

    fn is_last_batch(&self) -> bool {
        self.batch + 1 >= self.plan.batches.len()
    }

    fn start_batch(&mut self, now: Instant) -> Action {
        let count = self.plan.batches.len();
        if count > 1 && self.canary.is_none() {
            let batch = self.current_batch();
            self.notes.push(Note::Info(format!(
                "batch {} of {count}: {} new, {} old to retire ({})",
                self.batch + 1,
                batch.create,
                batch.retire.len(),
                list(&batch.retire)
            )));
        }
        match self.plan.order {
            Order::StartFirst => self.scale(now),
            Order::StopFirst => self.pre_stop(now),
        }
    }

    fn scale(&mut self, now: Instant) -> Action {
        if let Some(signal) = self.signal {
            return self.fail(interruption(signal), 0, now);
        }
        let create = self.current_batch().create;
        if create == 0 {
            // An interrupted run already created them, or a batch that only scales down.
            return if self.batch_new.is_empty() {
                self.healthy_enough(now)
            } else {
                self.await_health(now)
            };
        }
        self.phase = Phase::Scale;
        // Compose counts every container of the service, the stopped ones kept included.
        let existing = self.plan.retire.len() - self.removed.len() + self.new.len();
        Action::Scale {
            total: existing as u32 + create,
            start_by_id: !self.kept.is_empty(),
        }
    }

    fn await_health(&mut self, now: Instant) -> Action {
        self.phase = Phase::Health;
        let with_check: Vec<&Healthcheck> = self
            .new
            .iter()
            .filter_map(|c| c.healthcheck.as_ref())
            .collect();
        let first = self.batch == 0;
        let timeout = if with_check.is_empty() {
            if first {
                self.notes.push(Note::Info(format!(
                    "the new containers have no healthcheck: waiting {} (--wait) and requiring that they keep running",
                    show(self.settings.wait_without_healthcheck)
                )));
            }
            self.settings.wait_without_healthcheck
        } else if let Some(timeout) = self.settings.healthcheck_timeout {
            if first {
                self.notes.push(Note::Info(format!(
                    "health timeout {} (--healthcheck-timeout)",
                    show(timeout)
                )));
            }
            timeout
        } else {
            let slowest = with_check
                .iter()
                .max_by_key(|c| c.patience())
                .expect("not empty");
            let timeout = slowest.patience();
            if first {
                self.notes.push(Note::Info(format!(
                    "health timeout {} (from the healthcheck: {})",
                    show(timeout),
                    slowest.describe()
                )));
            }
            timeout
        };
        self.watch(self.new_ids(), now + timeout)
    }

    fn settle(&mut self, now: Instant) -> Action {
        if self.settings.wait_after_healthy.is_zero() {
            return self.healthy_enough(now);
        }
        self.phase = Phase::Settle;
        // Watching, not sleeping: a new container that fails while settling still fails.
        self.watch(self.new_ids(), now + self.settings.wait_after_healthy)
    }

    /// The batch's new containers are healthy and settled: with a proxy adapter, they must be in
    /// its rotation too before anything else happens.
    fn healthy_enough(&mut self, now: Instant) -> Action {
        if !self.settings.verify_proxy || self.batch_new.is_empty() {
            return self.routed_in(now);
        }
        self.phase = Phase::ProxyIn;
        self.proxy_seen = None;
        Action::AwaitProxy {
            ids: self.batch_new.clone(),
            until: now + self.settings.proxy_timeout,
        }
    }

    /// The batch's new containers serve.
    fn routed_in(&mut self, now: Instant) -> Action {
        match self.plan.order {
            Order::StartFirst => self.pre_stop(now),
            Order::StopFirst => self.batch_done(now),
        }
    }

    fn pre_stop(&mut self, now: Instant) -> Action {
        if self.current_batch().retire.is_empty() {
            return match self.plan.order {
                Order::StartFirst => self.batch_done(now),
                Order::StopFirst => self.scale(now),
            };
        }
        if self.settings.pre_stop {
            self.phase = Phase::PreStop;
            Action::PreStop(self.current_batch().retire.clone())
        } else {
            self.drain(now)
        }
    }

    fn drain(&mut self, now: Instant) -> Action {
        self.phase = Phase::Drain;
        if !self.settings.wait_until_unhealthy {
            return self.proxy_out(now);
        }
        let checked: Vec<&Container> = self
            .retiring()
            .filter(|c| c.healthcheck.is_some())
            .collect();
        if checked.is_empty() {
            self.notes.push(Note::Warning(
                "the old containers have no healthcheck, so they cannot turn unhealthy: not waiting for it".into(),
            ));
            return self.proxy_out(now);
        }
        let ids = self.draining_ids();
        if ids.is_empty() {
            // Every pre-stop failed: nothing will turn unhealthy.
            return self.proxy_out(now);
        }
        let timeout = self.settings.drain_timeout.unwrap_or_else(|| {
            checked
                .iter()
                .filter_map(|c| c.healthcheck)
                .map(|h| h.patience() - h.start_period)
                .max()
                .expect("not empty")
        });
        self.notes.push(Note::Info(format!(
            "waiting up to {} for the old containers to turn unhealthy",
            show(timeout)
        )));
        self.watch(ids, now + timeout)
    }

    /// With a proxy adapter: wait until the proxy no longer routes to the batch's old
    /// containers (and, where it tells, has no request in flight with them).
    fn proxy_out(&mut self, now: Instant) -> Action {
        if !self.settings.verify_proxy {
            return self.proxy_wait(now);
        }
        self.phase = Phase::ProxyOut;
        self.proxy_seen = None;
        Action::AwaitProxy {
            ids: self.current_batch().retire.clone(),
            until: now + self.settings.proxy_timeout,
        }
    }

    /// The proxy still routes to some old containers after its timeout.
    fn still_routed(&mut self, now: Instant) -> Action {
        let retire = self.current_batch().retire.clone();
        let still = match &self.proxy_seen {
            Some(Ok(routing)) => routing.still_routed(&retire),
            _ => retire,
        };
        let seen = format!("{}: {}", self.proxy_pending(&still), self.proxy_shown());
        let waited = show(self.settings.proxy_timeout);
        match self.settings.still_routing {
            StillRouting::Stop => {
                self.notes.push(Note::Warning(format!(
                    "the proxy still routes to old container(s) {} after {waited} ({seen});                      stopping them anyway (--proxy-still-routing stop): requests it sends them fail",
                    list(&still)
                )));
                self.proxy_wait(now)
            }
            StillRouting::Keep => {
                self.notes.push(Note::Warning(format!(
                    "the proxy still routes to old container(s) {} after {waited} ({seen});                      keeping them running so that no request is cut (--proxy-still-routing keep)",
                    list(&still)
                )));
                self.held.extend(still.iter().cloned());
                if self.settings.undo_pre_stop {
                    Action::UndoPreStop(still)
                } else {
                    self.proxy_wait(now)
                }
            }
        }
    }

    /// Which of `ids` the proxy does not show as wanted, in a few words.
    fn proxy_pending(&self, ids: &[String]) -> String {
        match &self.proxy_seen {
            Some(Ok(routing)) => ids
                .iter()
                .map(|id| {
                    let how = match routing.route(id) {
                        Route::Serving => "routed".to_owned(),
                        Route::Finishing { in_flight } => format!("{in_flight} in flight"),
                        Route::Out => "not routed".to_owned(),
                    };
                    format!("{} {how}", short_id(id))
                })
                .collect::<Vec<_>>()
                .join(", "),
            _ => "unknown".to_owned(),
        }
    }

    fn proxy_shown(&self) -> String {
        match &self.proxy_seen {
            None => "the proxy did not answer yet".to_owned(),
            Some(Ok(routing)) => routing.shown.clone(),
            Some(Err(why)) => why.clone(),
        }
    }

    fn proxy_wait(&mut self, now: Instant) -> Action {
        let wait = self.settings.wait_after_unhealthy;
        if wait.is_zero() {
            return self.retire(now);
        }
        self.phase = Phase::ProxyWait;
        self.watch(Vec::new(), now + wait)
    }

    /// The batch's old containers to stop now: all but those left serving.
    fn retiring_now(&self) -> Vec<String> {
        self.current_batch()
            .retire
            .iter()
            .filter(|id| !self.held.contains(id))
            .cloned()
            .collect()
    }

    fn retire(&mut self, now: Instant) -> Action {
        let ids = self.retiring_now();
        if ids.is_empty() {
            return self.retired(now);
        }
        self.phase = Phase::Retire;
        // Stopped, not removed, while a later step may still need them back: the new containers
        // of stop-first are yet to start; with `rollback`, later batches may fail.
        let keep = self.plan.order == Order::StopFirst
            || (self.settings.failure_action == FailureAction::Rollback && !self.is_last_batch())
            || self.canary.as_ref().is_some_and(CanaryRun::bakes);
        Action::Retire { ids, keep }
    }

    /// The batch's old containers are stopped (or left serving).
    fn retired(&mut self, now: Instant) -> Action {
        match self.plan.order {
            Order::StartFirst => self.batch_done(now),
            Order::StopFirst => self.scale(now),
        }
    }

    fn batch_done(&mut self, now: Instant) -> Action {
        if let Some(step) = self.canary.as_ref().and_then(|c| c.pause_after(self.batch)) {
            self.phase = Phase::Step;
            let (text, next) = self.canary_mut().begin_step(step, now);
            self.notes.push(Note::Info(text));
            return self.canary_next(next, now);
        }
        if self.is_last_batch() || self.settings.delay.is_zero() {
            return self.next_batch(now);
        }
        self.phase = Phase::Delay;
        self.watch(self.new_ids(), now + self.settings.delay)
    }

    fn next_batch(&mut self, now: Instant) -> Action {
        if self.is_last_batch() {
            return self.finish_batches(now);
        }
        if let Some(signal) = self.signal {
            return self.fail(interruption(signal), 0, now);
        }
        self.batch += 1;
        self.batch_new.clear();
        self.start_batch(now)
    }

    fn finish_batches(&mut self, now: Instant) -> Action {
        if self.canary.as_ref().is_some_and(CanaryRun::bakes) {
            self.phase = Phase::Bake;
            let new = self.new.len() as u32;
            let (text, next) = self.canary_mut().begin_bake(new, now);
            self.notes.push(Note::Info(text));
            return self.canary_next(next, now);
        }
        if self.kept.is_empty() {
            return self.verify_now();
        }
        self.phase = Phase::Prune;
        Action::Remove(self.kept.clone())
    }

    fn verify_now(&mut self) -> Action {
        self.removed.append(&mut self.kept);
        self.phase = Phase::Verify;
        Action::Verify
    }

    fn verify(&mut self, containers: &[Container]) -> Action {
        self.phase = Phase::Done;
        let new = self.new_ids();
        let expected =
            |id: &String| new.contains(id) || self.spared.contains(id) || self.held.contains(id);
        let mut problems = Vec::new();
        for container in containers {
            let id = short_id(&container.id);
            if !expected(&container.id) {
                problems.push(format!(
                    "{id} ({}) should not be there",
                    container.state.name()
                ));
            } else if !container.is_running() {
                problems.push(format!("{id} is {}", container.state.name()));
            } else if container.healthcheck.is_some()
                && container.health != Health::Healthy
                && !self.held.contains(&container.id)
            {
                problems.push(format!("{id} is {}", container.health.name()));
            }
        }
        let missing = new
            .iter()
            .filter(|id| !containers.iter().any(|c| &c.id == *id))
            .count();
        if missing > 0 {
            problems.push(format!("{missing} new container(s) disappeared"));
        }
        if !problems.is_empty() {
            let extra: Vec<String> = containers
                .iter()
                .filter(|c| !expected(&c.id))
                .map(|c| c.id.clone())
                .collect();
            let fix = if extra.is_empty() {
                "run docker reroll again to replace them".to_owned()
            } else {
                format!("fix: docker rm -f {}", list(&extra))
            };
            return Action::Finish(Outcome {
                exit: Exit::Incomplete,
                message: format!(
                    "the rollout ended in an unexpected state: {}; {fix}",
                    problems.join(", ")
                ),
            });
        }
        let retired = self.plan.retire.len() - self.spared.len() - self.held.len();
        let short = (self.plan.target as usize).saturating_sub(new.len() + self.spared.len());
        if self.spared.is_empty() && self.held.is_empty() && short == 0 {
            return Action::Finish(Outcome {
                exit: Exit::Done,
                message: format!(
                    "{} new container(s) serve ({}), {retired} old one(s) retired",
                    new.len(),
                    list(&new)
                ),
            });
        }
        let spared = match self.spared.len() {
            0 => String::new(),
            n => format!(
                ", {n} old one(s) kept serving because their replacements failed ({})",
                list(&self.spared)
            ),
        };
        let held = match self.held.len() {
            0 => String::new(),
            n => format!(
                ", {n} old one(s) kept serving because the proxy still routed to them ({})",
                list(&self.held)
            ),
        };
        let missing = match short {
            0 => String::new(),
            n => format!(", {n} fewer than the {} wanted", self.plan.target),
        };
        Action::Finish(Outcome {
            exit: Exit::Partial,
            message: format!(
                "finished with failures: {} new container(s) serve ({}), {retired} old one(s) \
                 retired{spared}{held}{missing}; run docker reroll again to finish",
                new.len(),
                list(&new),
            ),
        })
    }

    fn canary_mut(&mut self) -> &mut CanaryRun {
        self.canary.as_mut().expect("a canary rollout")
    }

    /// Carries out what the canary decided: watch on, analyze, go on, or roll back.
    fn canary_next(&mut self, next: Next, now: Instant) -> Action {
        match next {
            Next::Watch(until) => self.watch(self.new_ids(), until),
            Next::Analyze { command, reset } => Action::Analyze { command, reset },
            Next::Passed(summary) => {
                self.notes.push(Note::Info(summary));
                if self.phase == Phase::Bake {
                    self.finish_batches(now)
                } else {
                    self.next_batch(now)
                }
            }
            Next::Failed(why) => self.fail(why, 0, now),
        }
    }

    fn watch(&mut self, ids: Vec<String>, until: Instant) -> Action {
        Action::Watch { ids, until }
    }

    fn record(&mut self, statuses: Vec<Status>) {
        let watched = match &self.current {
            Some(Action::Watch { ids, .. }) => ids.clone(),
            _ => return,
        };
        for id in &watched {
            match statuses.iter().find(|s| &s.id == id) {
                Some(status) => {
                    self.statuses.insert(id.clone(), status.clone());
                }
                None => {
                    // Gone: removed by someone else, or auto-removed after exiting.
                    self.statuses.insert(
                        id.clone(),
                        Status {
                            id: id.clone(),
                            state: State::Dead,
                            health: Health::None,
                            exit_code: -1,
                        },
                    );
                }
            }
        }
    }

    /// Whether every new container is up. `at_deadline`: containers without a healthcheck pass
    /// only once the wait is over.
    fn judge_new(&self, at_deadline: bool) -> Judgement {
        let targets: Vec<(&str, bool)> = self
            .new
            .iter()
            .map(|c| (c.id.as_str(), c.healthcheck.is_some()))
            .collect();
        self.judge(&targets, "new container", at_deadline)
    }

    fn judge(&self, targets: &[(&str, bool)], what: &str, at_deadline: bool) -> Judgement {
        let mut pending = Vec::new();
        for &(full_id, checked) in targets {
            let id = short_id(full_id);
            let Some(status) = self.statuses.get(full_id) else {
                pending.push(format!("{id} has not been seen yet"));
                continue;
            };
            if status.state != State::Running {
                let how = match status.state {
                    State::Exited | State::Dead => format!("exited with code {}", status.exit_code),
                    other => format!("is {}", other.name()),
                };
                if matches!(
                    status.state,
                    State::Exited | State::Dead | State::Restarting
                ) {
                    return Judgement::Failed(format!("{what} {id} {how}"));
                }
                pending.push(format!("{id} {how}"));
                continue;
            }
            match (checked, status.health) {
                (_, Health::Unhealthy) => {
                    return Judgement::Failed(format!("{what} {id} is unhealthy"));
                }
                (true, Health::Healthy) => {}
                (true, health) => pending.push(format!("{id} is {}", health.name())),
                (false, _) if !at_deadline => pending.push(format!("{id} has no healthcheck")),
                (false, _) => {}
            }
        }
        if pending.is_empty() {
            Judgement::Passed
        } else {
            Judgement::Pending(format!("not healthy in time: {}", pending.join(", ")))
        }
    }

    /// The current batch's old containers.
    fn retiring(&self) -> impl Iterator<Item = &Container> {
        let ids = &self.plan.batches[self.batch].retire;
        self.plan.retire.iter().filter(|c| ids.contains(&c.id))
    }

    /// The old containers kept stopped that the current batch stopped.
    fn kept_in_batch(&self) -> Vec<String> {
        let batch = &self.current_batch().retire;
        self.kept
            .iter()
            .filter(|id| batch.contains(id))
            .cloned()
            .collect()
    }

    /// The old containers not removed: serving, or kept stopped.
    fn old_left(&self) -> Vec<String> {
        self.plan
            .retire
            .iter()
            .map(|c| c.id.clone())
            .filter(|id| !self.removed.contains(id))
            .collect()
    }

    /// A new container a proxy may route to: running and healthy (or without a healthcheck).
    fn serves(&self, id: &str) -> bool {
        let checked = self
            .new
            .iter()
            .any(|c| c.id == id && c.healthcheck.is_some());
        self.statuses
            .get(id)
            .is_some_and(|s| s.state == State::Running && (s.health == Health::Healthy || !checked))
    }

    /// Old containers of the batch still expected to turn unhealthy.
    fn draining_ids(&self) -> Vec<String> {
        self.retiring()
            .filter(|c| c.healthcheck.is_some() && !self.undrained.contains(&c.id))
            .map(|c| c.id.clone())
            .collect()
    }

    fn drained(&self) -> bool {
        self.draining_ids()
            .iter()
            .all(|id| self.statuses.get(id).is_some_and(Status::is_drained))
    }
}

fn interruption(signal: Signal) -> String {
    match signal {
        Signal::Interrupt => "interrupted (SIGINT)".into(),
        Signal::Terminate => "terminated (SIGTERM)".into(),
    }
}

fn list(ids: &[String]) -> String {
    ids.iter()
        .map(|id| short_id(id))
        .collect::<Vec<_>>()
        .join(" ")
}

enum Judgement {
    Passed,
    Pending(String),
    Failed(String),
}

pub mod canary;
mod retreat;
#[cfg(test)]
mod tests;

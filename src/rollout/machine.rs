//! The rollout's decisions, free of I/O: it takes what was observed and answers with the next
//! action. Time comes in as `now`, so every timeout is testable without waiting.
//!
//! The line it never crosses: until the first pre-stop command runs, the old containers are
//! untouched and any failure or signal rolls back (the new containers go). From the pre-stop on,
//! the new containers are healthy and serving, so the rollout finishes instead.

use std::collections::BTreeMap;

use tokio::time::Instant;

use super::Settings;
use crate::docker::container::{Container, Health, Healthcheck, State};
use crate::duration::show;
use crate::exit::Exit;
use crate::plan::Plan;
use crate::template::short_id;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Cleanup,
    Scale,
    Health,
    Settle,
    PreStop,
    Drain,
    /// `--wait-after-unhealthy`: time for the proxy to notice the drained containers.
    ProxyWait,
    Retire,
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
            Phase::ProxyWait => "proxy-wait",
            Phase::Retire => "retire",
            Phase::Verify => "verify",
            Phase::Rollback => "rollback",
            Phase::Done => "done",
        }
    }

    /// Past this line the old containers have been touched: no rolling back.
    fn past_point_of_no_return(self) -> bool {
        self >= Phase::PreStop && self != Phase::Rollback
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

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    Interrupt,
    Terminate,
}

impl Signal {
    /// The exit code of a run this signal stopped.
    pub fn exit(self) -> Exit {
        match self {
            Signal::Interrupt => Exit::Interrupted,
            Signal::Terminate => Exit::Terminated,
        }
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
    /// Removing the new containers failed; these are left.
    RollbackFailed {
        left: Vec<String>,
        why: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// `docker rm -f` containers that do not serve (leftovers).
    Remove(Vec<String>),
    /// `compose up --scale SERVICE=total`, then report the containers it created.
    Scale {
        total: u32,
    },
    /// Report the statuses of these containers on every change, and `Deadline` at `until`.
    Watch {
        ids: Vec<String>,
        until: Instant,
    },
    PreStop(Vec<String>),
    /// `docker stop` (their own grace period), then `docker rm`.
    Retire(Vec<String>),
    /// List every container of the service.
    Verify,
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
    /// The new containers: adopted from an interrupted run, then created by the scale.
    new: Vec<Created>,
    statuses: BTreeMap<String, Status>,
    /// Old containers whose pre-stop failed: not waited on to turn unhealthy.
    undrained: Vec<String>,
    failure: Option<String>,
    rollback: RollbackStep,
    /// New containers that were healthy when the rollback began: waited on to turn unhealthy.
    rollback_healthy: Vec<String>,
    signal: Option<Signal>,
    current: Option<Action>,
    notes: Vec<Note>,
}

impl Machine {
    pub fn new(plan: Plan, settings: Settings) -> Self {
        let new = plan
            .adopted
            .iter()
            .map(|c| Created {
                id: c.id.clone(),
                healthcheck: c.healthcheck,
            })
            .collect();
        Machine {
            plan,
            settings,
            phase: Phase::Cleanup,
            new,
            statuses: BTreeMap::new(),
            undrained: Vec::new(),
            failure: None,
            rollback: RollbackStep::Remove,
            rollback_healthy: Vec::new(),
            signal: None,
            current: None,
            notes: Vec::new(),
        }
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
            return self.interrupted(signal);
        }
        match (self.phase, input) {
            (Phase::Cleanup, Input::Begin) => {
                let leftovers: Vec<String> =
                    self.plan.leftovers.iter().map(|c| c.id.clone()).collect();
                if leftovers.is_empty() {
                    self.scale(now)
                } else {
                    Action::Remove(leftovers)
                }
            }
            (Phase::Cleanup, Input::Done) => self.scale(now),
            (Phase::Cleanup, Input::Failed(why)) => {
                self.roll_back(format!("could not remove the stopped leftovers: {why}"))
            }

            (Phase::Scale, Input::Scaled(created)) => {
                let expected = self.plan.to_create() as usize;
                if created.len() != expected {
                    let ids: Vec<&str> = created.iter().map(|c| short_id(&c.id)).collect();
                    return self.roll_back(format!(
                        "the scale created {} container(s) ({}) where {expected} were asked for",
                        created.len(),
                        ids.join(" ")
                    ));
                }
                self.new.extend(created);
                self.await_health(now)
            }
            (Phase::Scale, Input::Failed(why)) => {
                self.roll_back(format!("the scale failed: {why}"))
            }

            (Phase::Health, Input::Observed(statuses)) => {
                self.record(statuses);
                match self.judge_new(false) {
                    Judgement::Failed(why) => self.roll_back(why),
                    Judgement::Passed => self.settle(now),
                    Judgement::Pending(_) => self.current.clone().expect("watching"),
                }
            }
            (Phase::Health, Input::Deadline) => match self.judge_new(true) {
                Judgement::Passed => self.settle(now),
                Judgement::Failed(why) | Judgement::Pending(why) => self.roll_back(why),
            },

            (Phase::Settle, Input::Observed(statuses)) => {
                self.record(statuses);
                match self.judge_new(true) {
                    Judgement::Failed(why) | Judgement::Pending(why) => {
                        self.roll_back(format!("while settling: {why}"))
                    }
                    Judgement::Passed => self.current.clone().expect("settling"),
                }
            }
            (Phase::Settle, Input::Deadline) => self.pre_stop(now),

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
                    self.proxy_wait(now)
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
                    "old container(s) {} did not turn unhealthy in time; stopping them anyway \
                     (the new containers are healthy and serving)",
                    late.iter()
                        .map(|id| short_id(id))
                        .collect::<Vec<_>>()
                        .join(" ")
                )));
                self.proxy_wait(now)
            }
            (Phase::ProxyWait, Input::Deadline) => self.retire(),

            (Phase::Retire, Input::Done) => {
                self.phase = Phase::Verify;
                Action::Verify
            }
            (Phase::Retire, Input::Failed(why)) => {
                let ids = self.retire_ids().join(" ");
                Action::Finish(Outcome {
                    exit: Exit::Incomplete,
                    message: format!(
                        "the new containers serve, but retiring the old ones failed: {why}; \
                         left running: {ids}; fix: docker rm -f {ids}"
                    ),
                })
            }

            (Phase::Verify, Input::Verified(containers)) => self.verify(&containers),
            (Phase::Verify, Input::Failed(why)) => Action::Finish(Outcome {
                exit: Exit::Incomplete,
                message: format!("the rollout ran, but listing the result failed: {why}"),
            }),

            (Phase::Rollback, Input::PreStopFinished(_)) => self.rollback_drain(now),
            (Phase::Rollback, Input::Observed(statuses))
                if self.rollback == RollbackStep::Drain =>
            {
                self.record(statuses);
                let drained = self
                    .rollback_healthy
                    .iter()
                    .all(|id| self.statuses.get(id).is_some_and(Status::is_drained));
                if drained {
                    self.rollback_proxy_wait(now)
                } else {
                    self.current.clone().expect("draining")
                }
            }
            (Phase::Rollback, Input::Deadline) => match self.rollback {
                RollbackStep::Drain => self.rollback_proxy_wait(now),
                _ => self.remove_new(),
            },
            (Phase::Rollback, Input::Done) => {
                let exit = self.signal.map_or(Exit::RolledBack, Signal::exit);
                self.phase = Phase::Done;
                Action::Finish(Outcome {
                    exit,
                    message: format!(
                        "{}; rolled back: the {} old container(s) still serve, no new container is left",
                        self.failure.clone().unwrap_or_default(),
                        self.plan.retire.len()
                    ),
                })
            }
            (Phase::Rollback, Input::RollbackFailed { left, why }) => {
                self.phase = Phase::Done;
                let left: Vec<&str> = left.iter().map(|id| short_id(id)).collect();
                Action::Finish(Outcome {
                    exit: Exit::Incomplete,
                    message: format!(
                        "{}; rolling back failed too: {why}. The old containers were not touched and serve; \
                         new container(s) left: {}; fix: docker rm -f {}",
                        self.failure.clone().unwrap_or_default(),
                        left.join(" "),
                        left.join(" ")
                    ),
                })
            }

            // Anything else (a stale observation, a late deadline) changes nothing.
            (_, _) => self.current.clone().unwrap_or(Action::Finish(Outcome {
                exit: Exit::Incomplete,
                message: "internal error: the rollout received an input before it began".into(),
            })),
        }
    }

    fn interrupted(&mut self, signal: Signal) -> Action {
        if self.phase == Phase::Rollback
            && matches!(self.rollback, RollbackStep::Drain | RollbackStep::ProxyWait)
        {
            // Asked again while draining the new containers: remove them now.
            return self.remove_new();
        }
        if self.phase == Phase::Rollback || self.phase == Phase::Done {
            return self.current.clone().expect("rolling back");
        }
        if self.phase.past_point_of_no_return() {
            if self.signal.is_some() && matches!(self.phase, Phase::Drain | Phase::ProxyWait) {
                // Asked twice: stop waiting for the drain and retire the old containers now.
                self.notes.push(Note::Warning(
                    "interrupted again: retiring the old containers without waiting further".into(),
                ));
                return self.retire();
            }
            if self.signal.is_none() {
                self.notes.push(Note::Warning(
                    "interrupted after the old containers began to drain: finishing the rollout, \
                     since the new containers already serve (interrupt again to stop waiting and retire them now)"
                        .into(),
                ));
            }
            self.signal.get_or_insert(signal);
            return self.current.clone().expect("a running phase has an action");
        }
        self.signal.get_or_insert(signal);
        let what = match signal {
            Signal::Interrupt => "interrupted (SIGINT)",
            Signal::Terminate => "terminated (SIGTERM)",
        };
        self.roll_back(what.into())
    }

    fn scale(&mut self, now: Instant) -> Action {
        if self.plan.to_create() == 0 {
            // An interrupted run already created every new container.
            return self.await_health(now);
        }
        self.phase = Phase::Scale;
        Action::Scale {
            total: self.plan.scale_to,
        }
    }

    fn await_health(&mut self, now: Instant) -> Action {
        self.phase = Phase::Health;
        let with_check: Vec<&Healthcheck> = self
            .new
            .iter()
            .filter_map(|c| c.healthcheck.as_ref())
            .collect();
        let timeout = if with_check.is_empty() {
            self.notes.push(Note::Info(format!(
                "the new containers have no healthcheck: waiting {} (--wait) and requiring that they keep running",
                show(self.settings.wait_without_healthcheck)
            )));
            self.settings.wait_without_healthcheck
        } else if let Some(timeout) = self.settings.healthcheck_timeout {
            self.notes.push(Note::Info(format!(
                "health timeout {} (--healthcheck-timeout)",
                show(timeout)
            )));
            timeout
        } else {
            let slowest = with_check
                .iter()
                .max_by_key(|c| c.patience())
                .expect("not empty");
            let timeout = slowest.patience();
            self.notes.push(Note::Info(format!(
                "health timeout {} (from the healthcheck: {})",
                show(timeout),
                slowest.describe()
            )));
            timeout
        };
        self.watch(self.new_ids(), now + timeout)
    }

    fn settle(&mut self, now: Instant) -> Action {
        if self.settings.wait_after_healthy.is_zero() {
            return self.pre_stop(now);
        }
        self.phase = Phase::Settle;
        // Watching, not sleeping: a new container that fails while settling still rolls back.
        self.watch(self.new_ids(), now + self.settings.wait_after_healthy)
    }

    fn pre_stop(&mut self, now: Instant) -> Action {
        if self.plan.is_first_deploy() {
            self.phase = Phase::Retire;
            return self.decide(Input::Done, now);
        }
        if self.settings.pre_stop {
            self.phase = Phase::PreStop;
            Action::PreStop(self.retire_ids())
        } else {
            self.drain(now)
        }
    }

    fn drain(&mut self, now: Instant) -> Action {
        self.phase = Phase::Drain;
        if !self.settings.wait_until_unhealthy {
            return self.proxy_wait(now);
        }
        let checked: Vec<&Container> = self
            .plan
            .retire
            .iter()
            .filter(|c| c.healthcheck.is_some())
            .collect();
        if checked.is_empty() {
            self.notes.push(Note::Warning(
                "the old containers have no healthcheck, so they cannot turn unhealthy: not waiting for it".into(),
            ));
            return self.proxy_wait(now);
        }
        if self.draining_ids().is_empty() {
            // Every pre-stop failed: nothing will turn unhealthy.
            return self.proxy_wait(now);
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
        let ids = self.draining_ids();
        self.watch(ids, now + timeout)
    }

    fn proxy_wait(&mut self, now: Instant) -> Action {
        let wait = self.settings.wait_after_unhealthy;
        if wait.is_zero() {
            return self.retire();
        }
        self.phase = Phase::ProxyWait;
        self.watch(Vec::new(), now + wait)
    }

    fn retire(&mut self) -> Action {
        self.phase = Phase::Retire;
        Action::Retire(self.retire_ids())
    }

    fn verify(&mut self, containers: &[Container]) -> Action {
        self.phase = Phase::Done;
        let new = self.new_ids();
        let mut problems = Vec::new();
        for container in containers {
            let id = short_id(&container.id);
            if !new.contains(&container.id) {
                problems.push(format!(
                    "{id} ({}) should not be there",
                    container.state.name()
                ));
            } else if !container.is_running() {
                problems.push(format!("{id} is {}", container.state.name()));
            } else if container.healthcheck.is_some() && container.health != Health::Healthy {
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
        if problems.is_empty() {
            Action::Finish(Outcome {
                exit: Exit::Done,
                message: format!(
                    "{} new container(s) serve ({}), {} old one(s) retired",
                    new.len(),
                    new.iter()
                        .map(|id| short_id(id))
                        .collect::<Vec<_>>()
                        .join(" "),
                    self.plan.retire.len()
                ),
            })
        } else {
            let extra: Vec<&str> = containers
                .iter()
                .filter(|c| !new.contains(&c.id))
                .map(|c| short_id(&c.id))
                .collect();
            let fix = if extra.is_empty() {
                "run docker reroll again to replace them".to_owned()
            } else {
                format!("fix: docker rm -f {}", extra.join(" "))
            };
            Action::Finish(Outcome {
                exit: Exit::Incomplete,
                message: format!(
                    "the rollout ended in an unexpected state: {}; {fix}",
                    problems.join(", ")
                ),
            })
        }
    }

    /// Rolls back. New containers that are running may already get traffic from a proxy with
    /// its own checks, so with a pre-stop command they are drained like old ones first.
    fn roll_back(&mut self, why: String) -> Action {
        self.failure = Some(why);
        self.phase = Phase::Rollback;
        let running: Vec<String> = self
            .new_ids()
            .into_iter()
            .filter(|id| {
                self.statuses
                    .get(id)
                    .is_some_and(|s| s.state == State::Running)
            })
            .collect();
        if self.settings.pre_stop && !running.is_empty() {
            self.rollback = RollbackStep::PreStop;
            self.rollback_healthy = running
                .iter()
                .filter(|id| {
                    self.statuses
                        .get(*id)
                        .is_some_and(|s| s.health == Health::Healthy)
                })
                .cloned()
                .collect();
            return Action::PreStop(running);
        }
        self.remove_new()
    }

    fn rollback_drain(&mut self, now: Instant) -> Action {
        let healthy = self.rollback_healthy.clone();
        if !self.settings.wait_until_unhealthy || healthy.is_empty() {
            return self.rollback_proxy_wait(now);
        }
        self.rollback = RollbackStep::Drain;
        let timeout = self.settings.drain_timeout.unwrap_or_else(|| {
            self.new
                .iter()
                .filter_map(|c| c.healthcheck)
                .map(|h| h.patience() - h.start_period)
                .max()
                .unwrap_or(self.settings.wait_without_healthcheck)
        });
        self.watch(healthy, now + timeout)
    }

    fn rollback_proxy_wait(&mut self, now: Instant) -> Action {
        if self.settings.wait_after_unhealthy.is_zero() {
            return self.remove_new();
        }
        self.rollback = RollbackStep::ProxyWait;
        self.watch(Vec::new(), now + self.settings.wait_after_unhealthy)
    }

    fn remove_new(&mut self) -> Action {
        self.rollback = RollbackStep::Remove;
        Action::RollBack {
            keep: self.retire_ids(),
        }
    }

    fn watch(&mut self, ids: Vec<String>, until: Instant) -> Action {
        self.statuses.retain(|id, _| ids.contains(id));
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
        let mut pending = Vec::new();
        for container in &self.new {
            let id = short_id(&container.id);
            let Some(status) = self.statuses.get(&container.id) else {
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
                    return Judgement::Failed(format!("new container {id} {how}"));
                }
                pending.push(format!("{id} {how}"));
                continue;
            }
            match (container.healthcheck.is_some(), status.health) {
                (_, Health::Unhealthy) => {
                    return Judgement::Failed(format!("new container {id} is unhealthy"));
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

    fn retire_ids(&self) -> Vec<String> {
        self.plan.retire.iter().map(|c| c.id.clone()).collect()
    }

    /// Old containers still expected to turn unhealthy.
    fn draining_ids(&self) -> Vec<String> {
        self.plan
            .retire
            .iter()
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RollbackStep {
    PreStop,
    Drain,
    ProxyWait,
    Remove,
}

enum Judgement {
    Passed,
    Pending(String),
    Failed(String),
}

#[cfg(test)]
mod tests;

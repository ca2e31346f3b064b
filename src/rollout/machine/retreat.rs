//! Undoing work after a failure, as `failure_action` says: a queue of steps (drop new
//! containers, start old ones kept stopped, discard those that will not come back), then what
//! comes after them (finish rolled back, finish paused, or go on with the next batch).

use std::collections::VecDeque;

use tokio::time::Instant;

use super::{
    Action, Exit, FailureAction, Health, Healthcheck, Input, Judgement, Machine, Note, Order,
    Outcome, Phase, Signal, State, Status, list,
};

/// Undoing work after a failure: a queue of steps, then what comes after them.
#[derive(Default)]
pub(super) struct Retreat {
    steps: VecDeque<Undo>,
    step: Option<Undo>,
    pub(super) sub: RollbackStep,
    /// Containers of a `Drop` that were healthy: waited on to turn unhealthy.
    healthy: Vec<String>,
    after: After,
    /// Old containers restarted so far.
    restored: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Undo {
    /// Drain (with the pre-stop command) and remove new containers.
    Drop(Vec<String>),
    /// Start old containers kept stopped and wait until they are healthy again.
    Restore(Vec<String>),
    /// Remove old containers kept stopped that will not come back.
    Discard(Vec<String>),
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum After {
    #[default]
    RolledBack,
    Paused,
    NextBatch,
}

impl Machine {
    /// A new container failed: counted against `max_failure_ratio`.
    pub(super) fn fail_release(&mut self, why: String, now: Instant) -> Action {
        let unhealthy = self
            .batch_new
            .iter()
            .filter(|id| {
                !self
                    .statuses
                    .get(*id)
                    .is_some_and(|s| s.state == State::Running && s.health != Health::Unhealthy)
            })
            .count();
        self.fail(why, unhealthy.max(1) as u32, now)
    }

    /// Decides how to undo after a failure (`failed` new containers failed; 0 for a signal or
    /// a Docker error) and starts undoing.
    pub(super) fn fail(&mut self, why: String, failed: u32, now: Instant) -> Action {
        self.failed += failed;
        let ratio = f64::from(self.failed) / f64::from(self.plan.target.max(1));
        let action = match (self.signal, self.settings.failure_action) {
            (Some(_), FailureAction::Rollback) => FailureAction::Rollback,
            (Some(_), _) => FailureAction::Pause,
            (None, FailureAction::Continue) => FailureAction::Continue,
            (None, _) if failed > 0 && ratio <= self.settings.max_failure_ratio => {
                self.notes.push(Note::Warning(format!(
                    "{} of {} new container(s) failed, within max_failure_ratio {}",
                    self.failed, self.plan.target, self.settings.max_failure_ratio
                )));
                FailureAction::Continue
            }
            (None, action) => action,
        };
        let all_new = self.new_ids();
        let batch_new = self.batch_new.clone();
        let stop_first = self.plan.order == Order::StopFirst;
        let mut steps = Vec::new();
        let after = match action {
            FailureAction::Rollback => {
                if stop_first {
                    // The new containers may hold what the old ones need (a host port).
                    steps.push(Undo::Drop(all_new));
                    steps.push(Undo::Restore(self.kept.clone()));
                } else if self.kept.is_empty() {
                    steps.push(Undo::Drop(all_new));
                } else {
                    // Capacity first: the old ones are back before the serving new ones go.
                    let (serving, broken): (Vec<String>, Vec<String>) =
                        all_new.into_iter().partition(|id| self.serves(id));
                    steps.push(Undo::Drop(broken));
                    steps.push(Undo::Restore(self.kept.clone()));
                    steps.push(Undo::Drop(serving));
                }
                After::RolledBack
            }
            FailureAction::Pause | FailureAction::Continue => {
                steps.push(Undo::Drop(batch_new));
                let kept_in_batch = self.kept_in_batch();
                steps.push(Undo::Restore(kept_in_batch.clone()));
                // The old containers of the failed batch that were not retired serve on.
                let serving: Vec<String> = self
                    .current_batch()
                    .retire
                    .iter()
                    .filter(|id| !self.removed.contains(id))
                    .cloned()
                    .collect();
                self.spared.extend(serving.iter().cloned());
                if action == FailureAction::Pause {
                    let discard: Vec<String> = self
                        .kept
                        .iter()
                        .filter(|id| !kept_in_batch.contains(id))
                        .cloned()
                        .collect();
                    steps.push(Undo::Discard(discard));
                    After::Paused
                } else {
                    self.notes.push(Note::Warning(format!(
                        "{why}; failure_action continue: the batch's new container(s) go, its old \
                         one(s) {} serve on, and the next batch starts",
                        list(&serving)
                    )));
                    After::NextBatch
                }
            }
        };
        if after != After::NextBatch {
            self.failure = Some(why);
        }
        self.phase = Phase::Rollback;
        self.retreat = Retreat {
            steps: steps
                .into_iter()
                .enumerate()
                .filter(|(index, step)| match step {
                    // The first drop also removes what a failed scale created unseen.
                    Undo::Drop(ids) => *index == 0 || !ids.is_empty(),
                    Undo::Restore(ids) | Undo::Discard(ids) => !ids.is_empty(),
                })
                .map(|(_, step)| step)
                .collect(),
            after,
            ..Retreat::default()
        };
        self.next_undo(now)
    }

    fn next_undo(&mut self, now: Instant) -> Action {
        let Some(step) = self.retreat.steps.pop_front() else {
            return self.retreated(now);
        };
        self.retreat.step = Some(step.clone());
        match step {
            Undo::Drop(ids) => self.drop_new(ids),
            Undo::Restore(ids) => {
                self.retreat.sub = RollbackStep::Start;
                Action::Restore(ids)
            }
            Undo::Discard(ids) => {
                self.retreat.sub = RollbackStep::Remove;
                Action::Remove(ids)
            }
        }
    }

    /// New containers that are running may already get traffic from a proxy with its own
    /// checks, so with a pre-stop command they are drained like old ones first.
    fn drop_new(&mut self, ids: Vec<String>) -> Action {
        let running: Vec<String> = ids
            .iter()
            .filter(|id| {
                self.statuses
                    .get(*id)
                    .is_some_and(|s| s.state == State::Running)
            })
            .cloned()
            .collect();
        if self.settings.pre_stop && !running.is_empty() {
            self.retreat.sub = RollbackStep::PreStop;
            self.retreat.healthy = running
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
        self.remove_dropped()
    }

    pub(super) fn retreating(&mut self, input: Input, now: Instant) -> Action {
        match (self.retreat.sub, input) {
            (RollbackStep::PreStop, Input::PreStopFinished(_)) => self.rollback_drain(now),
            (RollbackStep::Drain, Input::Observed(statuses)) => {
                self.record(statuses);
                let drained = self
                    .retreat
                    .healthy
                    .iter()
                    .all(|id| self.statuses.get(id).is_some_and(Status::is_drained));
                if drained {
                    self.rollback_proxy_out(now)
                } else {
                    self.current.clone().expect("draining")
                }
            }
            (RollbackStep::Drain, Input::Deadline) => self.rollback_proxy_out(now),
            (RollbackStep::ProxyOut, Input::Routing(seen)) => {
                let dropped = matches!(&seen, Ok(routing) if routing.still_routed(&self.retreat.healthy).is_empty());
                if dropped {
                    self.rollback_proxy_wait(now)
                } else {
                    self.current.clone().expect("asking the proxy")
                }
            }
            (RollbackStep::ProxyOut, Input::Deadline) => {
                // Removed anyway: the old containers serve, and these are the failed release.
                self.notes.push(Note::Warning(format!(
                    "the proxy still routes to new container(s) {} after {}; removing them anyway",
                    list(&self.retreat.healthy),
                    crate::duration::show(self.settings.proxy_timeout)
                )));
                self.rollback_proxy_wait(now)
            }
            (RollbackStep::ProxyWait, Input::Deadline) => self.remove_dropped(),
            (RollbackStep::Remove, Input::Done) => {
                if let Some(Undo::Drop(ids)) = &self.retreat.step {
                    self.new.retain(|c| !ids.contains(&c.id));
                    self.batch_new.retain(|id| !ids.contains(id));
                }
                if let Some(Undo::Discard(ids)) = &self.retreat.step {
                    let ids = ids.clone();
                    self.kept.retain(|id| !ids.contains(id));
                    self.removed.extend(ids);
                }
                self.next_undo(now)
            }
            (RollbackStep::Remove, Input::Failed(why)) => {
                // Only a Discard removes with `Remove`: what is left is stopped, not serving.
                self.notes.push(Note::Warning(format!(
                    "removing the old containers kept stopped failed: {why}"
                )));
                self.next_undo(now)
            }
            (RollbackStep::Remove, Input::RollbackFailed { mut left, why }) => {
                self.phase = Phase::Done;
                if left.is_empty() {
                    // The engine could not even list them: the ones this step meant to remove.
                    if let Some(Undo::Drop(ids)) = &self.retreat.step {
                        left = ids.clone();
                    }
                }
                let fix = if left.is_empty() {
                    "check with docker compose ps, then remove the new container(s)".to_owned()
                } else {
                    format!(
                        "New container(s) left: {}; fix: docker rm -f {}",
                        list(&left),
                        list(&left)
                    )
                };
                Action::Finish(Outcome {
                    exit: Exit::Incomplete,
                    message: format!(
                        "{}; rolling back failed too: {why}. {fix}",
                        self.failure.clone().unwrap_or_default(),
                    ),
                })
            }
            (RollbackStep::Start, Input::Done) => {
                let Some(Undo::Restore(ids)) = self.retreat.step.clone() else {
                    unreachable!("restoring")
                };
                self.retreat.sub = RollbackStep::Restart;
                let timeout = self.restore_timeout(&ids);
                self.watch(ids, now + timeout)
            }
            (RollbackStep::Start, Input::Failed(why)) => self.restore_failed(why),
            (RollbackStep::Restart, Input::Observed(statuses)) => {
                self.record(statuses);
                match self.judge_restored(false) {
                    Judgement::Passed => self.restored_healthy(now),
                    Judgement::Failed(why) => self.restore_failed(why),
                    Judgement::Pending(_) => self.current.clone().expect("watching"),
                }
            }
            (RollbackStep::Restart, Input::Deadline) => match self.judge_restored(true) {
                Judgement::Passed => self.restored_healthy(now),
                Judgement::Failed(why) | Judgement::Pending(why) => self.restore_failed(why),
            },
            (RollbackStep::ProxyIn, Input::Routing(seen)) => {
                let Some(Undo::Restore(ids)) = &self.retreat.step else {
                    unreachable!("restoring")
                };
                if matches!(&seen, Ok(routing) if routing.serves_all(ids)) {
                    self.restored(now)
                } else {
                    self.current.clone().expect("asking the proxy")
                }
            }
            (RollbackStep::ProxyIn, Input::Deadline) => {
                if let Some(Undo::Restore(ids)) = &self.retreat.step {
                    self.notes.push(Note::Warning(format!(
                        "the proxy does not route to the restarted old container(s) {} after {}; \
                         going on",
                        list(ids),
                        crate::duration::show(self.settings.proxy_timeout)
                    )));
                }
                self.restored(now)
            }
            (_, _) => self.current.clone().expect("rolling back"),
        }
    }

    /// The old containers are healthy again: with a proxy adapter, they must be in its rotation
    /// too before the new ones that serve are drained.
    fn restored_healthy(&mut self, now: Instant) -> Action {
        match &self.retreat.step {
            Some(Undo::Restore(ids)) if self.settings.verify_proxy => {
                self.retreat.sub = RollbackStep::ProxyIn;
                Action::AwaitProxy {
                    ids: ids.clone(),
                    until: now + self.settings.proxy_timeout,
                }
            }
            _ => self.restored(now),
        }
    }

    fn rollback_drain(&mut self, now: Instant) -> Action {
        let healthy = self.retreat.healthy.clone();
        if !self.settings.wait_until_unhealthy || healthy.is_empty() {
            return self.rollback_proxy_out(now);
        }
        self.retreat.sub = RollbackStep::Drain;
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

    /// With a proxy adapter: new containers that were healthy may be in its rotation; wait
    /// until it drops them.
    fn rollback_proxy_out(&mut self, now: Instant) -> Action {
        if !self.settings.verify_proxy || self.retreat.healthy.is_empty() {
            return self.rollback_proxy_wait(now);
        }
        self.retreat.sub = RollbackStep::ProxyOut;
        Action::AwaitProxy {
            ids: self.retreat.healthy.clone(),
            until: now + self.settings.proxy_timeout,
        }
    }

    fn rollback_proxy_wait(&mut self, now: Instant) -> Action {
        if self.settings.wait_after_unhealthy.is_zero() {
            return self.remove_dropped();
        }
        self.retreat.sub = RollbackStep::ProxyWait;
        self.watch(Vec::new(), now + self.settings.wait_after_unhealthy)
    }

    /// Removes every container of the service but the old ones and the new ones not dropped:
    /// also whatever a failed scale created that nobody saw.
    pub(super) fn remove_dropped(&mut self) -> Action {
        self.retreat.sub = RollbackStep::Remove;
        let dropped = match &self.retreat.step {
            Some(Undo::Drop(ids)) => ids.clone(),
            _ => Vec::new(),
        };
        let mut keep = self.old_left();
        keep.extend(
            self.new_ids()
                .into_iter()
                .filter(|id| !dropped.contains(id)),
        );
        Action::RollBack { keep }
    }

    fn restore_timeout(&self, ids: &[String]) -> std::time::Duration {
        let checks: Vec<Healthcheck> = self
            .plan
            .retire
            .iter()
            .filter(|c| ids.contains(&c.id))
            .filter_map(|c| c.healthcheck)
            .collect();
        match (self.settings.healthcheck_timeout, checks.is_empty()) {
            (Some(timeout), false) => timeout,
            (None, false) => checks
                .iter()
                .map(|h| h.patience())
                .max()
                .expect("not empty"),
            (_, true) => self.settings.wait_without_healthcheck,
        }
    }

    fn judge_restored(&self, at_deadline: bool) -> Judgement {
        let Some(Undo::Restore(ids)) = &self.retreat.step else {
            return Judgement::Passed;
        };
        let targets: Vec<(&str, bool)> = self
            .plan
            .retire
            .iter()
            .filter(|c| ids.contains(&c.id))
            .map(|c| (c.id.as_str(), c.healthcheck.is_some()))
            .collect();
        self.judge(&targets, "restarted old container", at_deadline)
    }

    fn restored(&mut self, now: Instant) -> Action {
        if let Some(Undo::Restore(ids)) = &self.retreat.step {
            let ids = ids.clone();
            self.retreat.restored += ids.len();
            self.kept.retain(|id| !ids.contains(id));
        }
        self.next_undo(now)
    }

    /// The old containers did not come back: the healthy ones serve on, and the message says
    /// which old ones are up but not healthy and which are still stopped.
    fn restore_failed(&mut self, why: String) -> Action {
        self.phase = Phase::Done;
        let restarting = match &self.retreat.step {
            Some(Undo::Restore(ids)) => ids.clone(),
            _ => Vec::new(),
        };
        let stopped: Vec<String> = self
            .kept
            .iter()
            .filter(|id| !restarting.contains(id))
            .cloned()
            .collect();
        let serving: Vec<String> = self
            .new_ids()
            .into_iter()
            .chain(
                self.old_left()
                    .into_iter()
                    .filter(|id| !self.kept.contains(id)),
            )
            .collect();
        let hint = if self.settings.undo_pre_stop || !self.settings.pre_stop {
            String::new()
        } else {
            " (does the pre-stop's drain marker survive a restart? clear it when the container starts, \
             or give --undo-pre-stop-cmd)"
                .to_owned()
        };
        Action::Finish(Outcome {
            exit: Exit::Incomplete,
            message: format!(
                "{}; rolling back could not bring the old containers back: {why}{hint}. \
                 Still serving: {}; started but not healthy: {}; stopped: {}; \
                 fix the cause, then run docker reroll again",
                self.failure.clone().unwrap_or_default(),
                list_or_none(&serving),
                list_or_none(&restarting),
                list_or_none(&stopped)
            ),
        })
    }

    /// Every undo step is done.
    fn retreated(&mut self, now: Instant) -> Action {
        let exit = self.signal.map(Signal::exit);
        let failure = self.failure.clone().unwrap_or_default();
        match self.retreat.after {
            After::NextBatch => {
                self.retreat = Retreat::default();
                self.next_batch(now)
            }
            After::RolledBack => {
                self.phase = Phase::Done;
                let restarted = match self.retreat.restored {
                    0 => String::new(),
                    n => format!(" ({n} of them restarted)"),
                };
                Action::Finish(Outcome {
                    exit: exit.unwrap_or(Exit::RolledBack),
                    message: format!(
                        "{failure}; rolled back: the {} old container(s) still serve{restarted}, \
                         no new container is left",
                        self.plan.retire.len()
                    ),
                })
            }
            After::Paused => {
                self.phase = Phase::Done;
                let old = self.old_left();
                let new = self.new_ids();
                let exit = match (exit, new.is_empty()) {
                    (Some(exit), _) => exit,
                    (None, true) => Exit::RolledBack,
                    (None, false) => Exit::Partial,
                };
                Action::Finish(Outcome {
                    exit,
                    message: format!(
                        "{failure}; paused after batch {} of {}: {} new ({}) and {} old ({}) container(s) serve; \
                         run docker reroll again to finish",
                        self.batch + 1,
                        self.plan.batches.len(),
                        new.len(),
                        list(&new),
                        old.len(),
                        list(&old)
                    ),
                })
            }
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) enum RollbackStep {
    #[default]
    PreStop,
    Drain,
    /// Asking the proxy until it drops the new containers.
    ProxyOut,
    ProxyWait,
    Remove,
    /// `docker start` of old containers kept stopped.
    Start,
    /// Waiting for them to turn healthy again.
    Restart,
    /// With a proxy adapter: asking it until it routes to them again, before anything serving
    /// is dropped.
    ProxyIn,
}

fn list_or_none(ids: &[String]) -> String {
    if ids.is_empty() {
        "none".to_owned()
    } else {
        list(ids)
    }
}

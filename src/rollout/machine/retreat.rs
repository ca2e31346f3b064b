//! Undoing work after a failure, as `failure_action` says: a sub-machine with a queue of steps
//! (drop new containers, start old ones kept stopped, discard those that will not come back)
//! and what comes after them (finish rolled back, finish paused, or go on with the next batch).
//!
//! It owns its queue, the step under way and what that step waits for. What it knows of the
//! containers it reads from the fleet, and what it changes there (new ones dropped, old ones back)
//! it writes there; the machine decides what its end means.

use std::collections::VecDeque;

use tokio::time::Instant;

use super::fleet::{Fleet, Judgement, list};
use super::protocol::{Action, Input, Note};
use crate::duration::show;
use crate::model::container::Healthcheck;
use crate::model::policy::{FailureAction, Order};
use crate::plan::Plan;
use crate::rollout::Settings;

/// What the retreat reads and updates of the rollout it undoes.
pub(super) struct Ctx<'a> {
    pub plan: &'a Plan,
    pub settings: &'a Settings,
    pub fleet: &'a mut Fleet,
    pub notes: &'a mut Vec<Note>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Undo {
    /// Drain (with the pre-stop command) and remove new containers.
    Drop(Vec<String>),
    /// Start old containers kept stopped and wait until they are healthy again.
    Restore(Vec<String>),
    /// Remove old containers kept stopped that will not come back.
    Discard(Vec<String>),
}

/// What the rollout does once every undo step is done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum After {
    RolledBack,
    Paused,
    NextBatch,
}

/// What the retreat answers its machine.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Step {
    /// Carry this out and bring back what came of it.
    Act(Action),
    /// Every undo step is done; `restored` old containers were started again.
    Done { after: After, restored: usize },
    /// Undoing failed: what is left and how to fix it, to follow the failure's own words.
    Stuck(String),
}

/// What the step under way waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
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

#[derive(Debug)]
pub(super) struct Retreat {
    steps: VecDeque<Undo>,
    step: Option<Undo>,
    stage: Stage,
    /// Containers of a `Drop` that were healthy: waited on to turn unhealthy.
    healthy: Vec<String>,
    after: After,
    /// Old containers restarted so far.
    restored: usize,
    /// The last action asked for: asked again when an input changes nothing.
    asked: Option<Action>,
    /// Why the proxy's last answer was no answer: a warning must not claim it still routes
    /// when it could not be asked.
    proxy_unknown: Option<String>,
}

impl Retreat {
    /// The steps that undo a failure as `action` says, `batch_retire` being the failed batch's
    /// old containers. Nothing runs until `start`.
    pub fn planned(
        action: FailureAction,
        order: Order,
        fleet: &Fleet,
        batch_retire: &[String],
    ) -> Retreat {
        let all_new = fleet.new_ids();
        let mut steps = Vec::new();
        let after = match action {
            FailureAction::Rollback => {
                if order == Order::StopFirst {
                    // The new containers may hold what the old ones need (a host port).
                    steps.push(Undo::Drop(all_new));
                    steps.push(Undo::Restore(fleet.kept.clone()));
                } else if fleet.kept.is_empty() {
                    steps.push(Undo::Drop(all_new));
                } else {
                    // Capacity first: the old ones are back before the serving new ones go.
                    let (serving, broken): (Vec<String>, Vec<String>) =
                        all_new.into_iter().partition(|id| fleet.serves(id));
                    steps.push(Undo::Drop(broken));
                    steps.push(Undo::Restore(fleet.kept.clone()));
                    steps.push(Undo::Drop(serving));
                }
                After::RolledBack
            }
            FailureAction::Pause | FailureAction::Continue => {
                steps.push(Undo::Drop(fleet.batch_new.clone()));
                let (in_batch, earlier): (Vec<String>, Vec<String>) = fleet
                    .kept
                    .iter()
                    .cloned()
                    .partition(|id| batch_retire.contains(id));
                steps.push(Undo::Restore(in_batch));
                if action == FailureAction::Pause {
                    steps.push(Undo::Discard(earlier));
                    After::Paused
                } else {
                    After::NextBatch
                }
            }
        };
        Retreat {
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
            step: None,
            stage: Stage::PreStop,
            healthy: Vec::new(),
            after,
            restored: 0,
            asked: None,
            proxy_unknown: None,
        }
    }

    pub fn start(&mut self, ctx: &mut Ctx<'_>) -> Step {
        self.next_undo(ctx)
    }

    /// Draining new containers it drops: a second signal cuts that short (`cut_drain`).
    pub fn is_draining(&self) -> bool {
        matches!(
            self.stage,
            Stage::Drain | Stage::ProxyOut | Stage::ProxyWait
        )
    }

    /// Asked again while draining the new containers: they go now.
    pub fn cut_drain(&mut self, ctx: &mut Ctx<'_>) -> Step {
        self.remove_dropped(ctx)
    }

    pub fn handle(&mut self, input: Input, ctx: &mut Ctx<'_>, now: Instant) -> Step {
        match (self.stage, input) {
            (Stage::PreStop, Input::PreStopFinished(_)) => self.drain(ctx, now),
            (Stage::Drain, Input::Observed(statuses)) => {
                ctx.fleet.record(self.watched(), statuses);
                if self.healthy.iter().all(|id| ctx.fleet.is_drained(id)) {
                    self.proxy_out(ctx, now)
                } else {
                    self.again()
                }
            }
            (Stage::Drain, Input::Deadline) => self.proxy_out(ctx, now),
            (Stage::ProxyOut, Input::Routing(seen)) => match seen {
                Ok(routing) if routing.still_routed(&self.healthy).is_empty() => {
                    self.proxy_wait(ctx, now)
                }
                Ok(_) => {
                    self.proxy_unknown = None;
                    self.again()
                }
                Err(why) => {
                    self.proxy_unknown = Some(why);
                    self.again()
                }
            },
            (Stage::ProxyOut, Input::Deadline) => {
                // Removed anyway: the old containers serve, and these are the failed release.
                let ids = list(&self.healthy);
                let waited = show(ctx.settings.proxy_timeout);
                ctx.notes.push(Note::Warning(match &self.proxy_unknown {
                    Some(why) => format!(
                        "could not learn within {waited} whether the proxy still routes to new \
                         container(s) {ids} ({why}); removing them anyway"
                    ),
                    None => format!(
                        "the proxy still routes to new container(s) {ids} after {waited}; \
                         removing them anyway"
                    ),
                }));
                self.proxy_wait(ctx, now)
            }
            (Stage::ProxyWait, Input::Deadline) => self.remove_dropped(ctx),
            (Stage::Remove, Input::Done) => {
                match &self.step {
                    Some(Undo::Drop(ids)) => {
                        ctx.fleet.new.retain(|c| !ids.contains(&c.id));
                        ctx.fleet.batch_new.retain(|id| !ids.contains(id));
                    }
                    Some(Undo::Discard(ids)) => {
                        ctx.fleet.kept.retain(|id| !ids.contains(id));
                        ctx.fleet.removed.extend(ids.iter().cloned());
                    }
                    _ => {}
                }
                self.next_undo(ctx)
            }
            (Stage::Remove, Input::Failed(why)) => {
                // Only a Discard removes with `Remove`: what is left is stopped, not serving.
                ctx.notes.push(Note::Warning(format!(
                    "removing the old containers kept stopped failed: {why}"
                )));
                self.next_undo(ctx)
            }
            (Stage::Remove, Input::RollbackFailed { mut left, why }) => {
                if left.is_empty() {
                    // The engine could not even list them: the ones this step meant to remove.
                    if let Some(Undo::Drop(ids)) = &self.step {
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
                Step::Stuck(format!("rolling back failed too: {why}. {fix}"))
            }
            (Stage::Start, Input::Done) => {
                let ids = self.restoring().to_vec();
                self.stage = Stage::Restart;
                let timeout = restore_timeout(ctx, &ids);
                self.act(Action::Watch {
                    ids,
                    until: now + timeout,
                })
            }
            (Stage::Start, Input::Failed(why)) => self.restore_failed(ctx, why),
            (Stage::Restart, Input::Observed(statuses)) => {
                ctx.fleet.record(self.watched(), statuses);
                match self.judge_restored(ctx, false) {
                    Judgement::Passed => self.restored_healthy(ctx, now),
                    Judgement::Failed(why) => self.restore_failed(ctx, why),
                    Judgement::Pending(_) => self.again(),
                }
            }
            (Stage::Restart, Input::Deadline) => match self.judge_restored(ctx, true) {
                Judgement::Passed => self.restored_healthy(ctx, now),
                Judgement::Failed(why) | Judgement::Pending(why) => self.restore_failed(ctx, why),
            },
            (Stage::ProxyIn, Input::Routing(seen)) => {
                if matches!(&seen, Ok(routing) if routing.serves_all(self.restoring())) {
                    self.restored(ctx)
                } else {
                    self.again()
                }
            }
            (Stage::ProxyIn, Input::Deadline) => {
                ctx.notes.push(Note::Warning(format!(
                    "the proxy does not route to the restarted old container(s) {} after {}; \
                     going on",
                    list(self.restoring()),
                    show(ctx.settings.proxy_timeout)
                )));
                self.restored(ctx)
            }
            // A stale observation or a late deadline changes nothing.
            (_, _) => self.again(),
        }
    }

    fn act(&mut self, action: Action) -> Step {
        self.asked = Some(action.clone());
        Step::Act(action)
    }

    fn again(&self) -> Step {
        Step::Act(
            self.asked
                .clone()
                .expect("a retreat under way has asked for something"),
        )
    }

    fn watched(&self) -> &[String] {
        match &self.asked {
            Some(Action::Watch { ids, .. }) => ids,
            _ => &[],
        }
    }

    /// The old containers the step under way starts again.
    fn restoring(&self) -> &[String] {
        match &self.step {
            Some(Undo::Restore(ids)) => ids,
            _ => &[],
        }
    }

    fn next_undo(&mut self, ctx: &mut Ctx<'_>) -> Step {
        let Some(step) = self.steps.pop_front() else {
            return Step::Done {
                after: self.after,
                restored: self.restored,
            };
        };
        self.step = Some(step.clone());
        match step {
            Undo::Drop(ids) => self.drop_new(ctx, ids),
            Undo::Restore(ids) => {
                self.stage = Stage::Start;
                self.act(Action::Restore(ids))
            }
            Undo::Discard(ids) => {
                self.stage = Stage::Remove;
                self.act(Action::Remove(ids))
            }
        }
    }

    /// New containers that are running may already get traffic from a proxy with its own
    /// checks, so with a pre-stop command they are drained like old ones first.
    fn drop_new(&mut self, ctx: &mut Ctx<'_>, ids: Vec<String>) -> Step {
        let running: Vec<String> = ids
            .into_iter()
            .filter(|id| ctx.fleet.is_running(id))
            .collect();
        if !ctx.settings.pre_stop || running.is_empty() {
            return self.remove_dropped(ctx);
        }
        self.stage = Stage::PreStop;
        self.healthy = running
            .iter()
            .filter(|id| ctx.fleet.is_healthy(id))
            .cloned()
            .collect();
        self.act(Action::PreStop(running))
    }

    fn drain(&mut self, ctx: &mut Ctx<'_>, now: Instant) -> Step {
        if !ctx.settings.wait_until_unhealthy || self.healthy.is_empty() {
            return self.proxy_out(ctx, now);
        }
        self.stage = Stage::Drain;
        let timeout = ctx.settings.drain_timeout.unwrap_or_else(|| {
            ctx.fleet
                .new
                .iter()
                .filter_map(|c| c.healthcheck)
                .map(|h| h.patience() - h.start_period)
                .max()
                .unwrap_or(ctx.settings.wait_without_healthcheck)
        });
        self.act(Action::Watch {
            ids: self.healthy.clone(),
            until: now + timeout,
        })
    }

    /// With a proxy adapter: new containers that were healthy may be in its rotation; wait
    /// until it drops them.
    fn proxy_out(&mut self, ctx: &mut Ctx<'_>, now: Instant) -> Step {
        if !ctx.settings.verify_proxy || self.healthy.is_empty() {
            return self.proxy_wait(ctx, now);
        }
        self.stage = Stage::ProxyOut;
        self.act(Action::AwaitProxy {
            ids: self.healthy.clone(),
            until: now + ctx.settings.proxy_timeout,
        })
    }

    fn proxy_wait(&mut self, ctx: &mut Ctx<'_>, now: Instant) -> Step {
        if ctx.settings.wait_after_unhealthy.is_zero() {
            return self.remove_dropped(ctx);
        }
        self.stage = Stage::ProxyWait;
        self.act(Action::Watch {
            ids: Vec::new(),
            until: now + ctx.settings.wait_after_unhealthy,
        })
    }

    /// Removes every container of the service but the old ones and the new ones not dropped:
    /// also whatever a failed scale created that nobody saw.
    fn remove_dropped(&mut self, ctx: &mut Ctx<'_>) -> Step {
        self.stage = Stage::Remove;
        let dropped: &[String] = match &self.step {
            Some(Undo::Drop(ids)) => ids,
            _ => &[],
        };
        let mut keep = ctx.fleet.old_left(&ctx.plan.retire);
        keep.extend(
            ctx.fleet
                .new_ids()
                .into_iter()
                .filter(|id| !dropped.contains(id)),
        );
        self.act(Action::RollBack { keep })
    }

    /// The old containers are healthy again: with a proxy adapter, they must be in its rotation
    /// too before the new ones that serve are drained.
    fn restored_healthy(&mut self, ctx: &mut Ctx<'_>, now: Instant) -> Step {
        if !ctx.settings.verify_proxy {
            return self.restored(ctx);
        }
        self.stage = Stage::ProxyIn;
        self.act(Action::AwaitProxy {
            ids: self.restoring().to_vec(),
            until: now + ctx.settings.proxy_timeout,
        })
    }

    fn judge_restored(&self, ctx: &Ctx<'_>, at_deadline: bool) -> Judgement {
        let ids = self.restoring();
        let targets: Vec<(&str, bool)> = ctx
            .plan
            .retire
            .iter()
            .filter(|c| ids.contains(&c.id))
            .map(|c| (c.id.as_str(), c.healthcheck.is_some()))
            .collect();
        ctx.fleet
            .judge(&targets, "restarted old container", at_deadline)
    }

    fn restored(&mut self, ctx: &mut Ctx<'_>) -> Step {
        let ids = self.restoring().to_vec();
        self.restored += ids.len();
        ctx.fleet.kept.retain(|id| !ids.contains(id));
        self.next_undo(ctx)
    }

    /// The old containers did not come back: the healthy ones serve on, and the message says
    /// which old ones are up but not healthy and which are still stopped.
    fn restore_failed(&mut self, ctx: &Ctx<'_>, why: String) -> Step {
        let restarting = self.restoring().to_vec();
        let fleet = &ctx.fleet;
        let stopped: Vec<String> = fleet
            .kept
            .iter()
            .filter(|id| !restarting.contains(id))
            .cloned()
            .collect();
        let serving: Vec<String> = fleet
            .new_ids()
            .into_iter()
            .chain(
                fleet
                    .old_left(&ctx.plan.retire)
                    .into_iter()
                    .filter(|id| !fleet.kept.contains(id)),
            )
            .collect();
        let hint = if ctx.settings.undo_pre_stop || !ctx.settings.pre_stop {
            ""
        } else {
            " (does the pre-stop's drain marker survive a restart? clear it when the container \
             starts, or give --undo-pre-stop-cmd)"
        };
        Step::Stuck(format!(
            "rolling back could not bring the old containers back: {why}{hint}. \
             Still serving: {}; started but not healthy: {}; stopped: {}; \
             fix the cause, then run docker reroll again",
            list_or_none(&serving),
            list_or_none(&restarting),
            list_or_none(&stopped)
        ))
    }
}

/// How long restarted old containers get to turn healthy: as long as a new one would.
fn restore_timeout(ctx: &Ctx<'_>, ids: &[String]) -> std::time::Duration {
    let checks: Vec<Healthcheck> = ctx
        .plan
        .retire
        .iter()
        .filter(|c| ids.contains(&c.id))
        .filter_map(|c| c.healthcheck)
        .collect();
    let slowest = checks.iter().map(|h| h.patience()).max();
    match (ctx.settings.healthcheck_timeout, slowest) {
        (Some(timeout), Some(_)) => timeout,
        (None, Some(patience)) => patience,
        (_, None) => ctx.settings.wait_without_healthcheck,
    }
}

fn list_or_none(ids: &[String]) -> String {
    if ids.is_empty() {
        "none".to_owned()
    } else {
        list(ids)
    }
}

#[cfg(test)]
#[path = "retreat/tests.rs"]
mod tests;

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
//!
//! Its parts: `protocol` is what it says with its driver; `fleet` is where every container
//! stands; `retreat` and `canary` are sub-machines with their own state (undoing after a
//! failure; a canary's steps and bake), which this machine starts and follows; `verdict` judges
//! the end state.

use tokio::time::Instant;

use super::Settings;
use crate::duration::show;
use crate::exit::Exit;
use crate::model::container::{Container, Healthcheck};
use crate::model::policy::{FailureAction, Order, StillRouting};
use crate::model::routing::{Route, Routing};
pub use crate::model::signal::Signal;
use crate::plan::Plan;
use crate::template::short_id;
use canary::{CanaryRun, Next, Standing};
pub use fleet::{Created, Status};
use fleet::{Fleet, Judgement, list};
pub use protocol::{Action, Input, Note, Outcome, Phase};
use retreat::{After, Ctx, Retreat, Step};

pub struct Machine {
    plan: Plan,
    settings: Settings,
    phase: Phase,
    /// Index of the current batch in `plan.batches`.
    batch: usize,
    /// Where every container of the rollout stands.
    fleet: Fleet,
    /// How many new containers failed so far (for `max_failure_ratio`).
    failed: u32,
    /// Old containers whose pre-stop failed: not waited on to turn unhealthy.
    undrained: Vec<String>,
    /// What the proxy showed last in the current wait (or why it could not be asked).
    proxy_seen: Option<Result<Routing, String>>,
    failure: Option<String>,
    /// Undoing work after a failure, while it runs.
    retreat: Option<Retreat>,
    signal: Option<Signal>,
    current: Option<Action>,
    notes: Vec<Note>,
    /// Steps, pauses and checks, when the rollout is a canary.
    canary: Option<CanaryRun>,
}

impl Machine {
    pub fn new(plan: Plan, settings: Settings) -> Self {
        let adopted: Vec<Created> = plan
            .adopted
            .iter()
            .map(|c| Created {
                id: c.id.clone(),
                healthcheck: c.healthcheck,
            })
            .collect();
        Machine {
            fleet: Fleet::adopting(adopted),
            plan,
            settings,
            phase: Phase::Cleanup,
            batch: 0,
            failed: 0,
            undrained: Vec::new(),
            proxy_seen: None,
            failure: None,
            retreat: None,
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
        self.fleet.new_ids()
    }

    /// Whether old and new containers of this run serve side by side (a paused rollout).
    pub fn is_mixed(&self) -> bool {
        let old_left = self.plan.retire.len() > self.fleet.removed.len();
        !self.fleet.new.is_empty() && old_left
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
                let warnings = self.plan.warnings().into_iter().map(Note::Warning);
                self.notes.extend(warnings);
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
                self.fleet.batch_new.extend(ids.iter().cloned());
                if created.len() != expected {
                    let shown: Vec<&str> = ids.iter().map(|id| short_id(id)).collect();
                    // Known now, so that the rollback drains and removes them too.
                    self.fleet.new.extend(created);
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
                self.fleet.new.extend(created);
                self.await_health(now)
            }
            (Phase::Scale, Input::Failed(why)) => {
                self.fail(format!("the scale failed: {why}"), 0, now)
            }

            (Phase::Health, Input::Observed(statuses)) => {
                self.record(statuses);
                match self.fleet.judge_new(false) {
                    Judgement::Failed(why) => self.fail_release(why, now),
                    Judgement::Passed => self.settle(now),
                    Judgement::Pending(_) => self.current.clone().expect("watching"),
                }
            }
            (Phase::Health, Input::Deadline) => match self.fleet.judge_new(true) {
                Judgement::Passed => self.settle(now),
                Judgement::Failed(why) | Judgement::Pending(why) => self.fail_release(why, now),
            },

            (Phase::Settle | Phase::Delay, Input::Observed(statuses)) => {
                self.record(statuses);
                match self.fleet.judge_new(true) {
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
                match self.fleet.judge_new(true) {
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
                    .filter(|id| !self.fleet.is_drained(id))
                    .collect();
                self.notes.push(Note::Warning(format!(
                    "old container(s) {} did not turn unhealthy in time",
                    list(&late)
                )));
                self.proxy_out(now)
            }
            (Phase::ProxyIn, Input::Routing(seen)) => {
                let routed =
                    matches!(&seen, Ok(routing) if routing.serves_all(&self.fleet.batch_new));
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
                    list(&self.fleet.batch_new),
                    show(self.settings.proxy_timeout),
                    self.proxy_pending(&self.fleet.batch_new.clone()),
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
                    self.fleet.kept.extend(ids);
                } else {
                    self.fleet.removed.extend(ids);
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

            (Phase::Rollback, input) => {
                self.in_retreat(now, |retreat, ctx| retreat.handle(input, ctx, now))
            }

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
                let draining = self.retreat.as_ref().is_some_and(Retreat::is_draining);
                if self.signal.is_some() && draining {
                    return self.in_retreat(now, Retreat::cut_drain);
                }
                if self.signal.is_none() {
                    // A failure may beat the signal that caused it (Ctrl-C kills a `docker` child
                    // first): the run still ends as interrupted, and only a second one cuts the
                    // drain short.
                    self.signal = Some(signal);
                    if draining {
                        self.notes.push(Note::Warning(
                            "interrupted while rolling back: finishing the rollback first \
                     (interrupt again to stop draining the new containers)"
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
            return if self.fleet.batch_new.is_empty() {
                self.healthy_enough(now)
            } else {
                self.await_health(now)
            };
        }
        self.phase = Phase::Scale;
        // Compose counts every container of the service, the stopped ones kept included.
        let existing = self.plan.retire.len() - self.fleet.removed.len() + self.fleet.new.len();
        Action::Scale {
            total: existing as u32 + create,
            start_by_id: !self.fleet.kept.is_empty(),
        }
    }

    fn await_health(&mut self, now: Instant) -> Action {
        self.phase = Phase::Health;
        let with_check: Vec<&Healthcheck> = self
            .fleet
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
        if !self.settings.verify_proxy || self.fleet.batch_new.is_empty() {
            return self.routed_in(now);
        }
        self.phase = Phase::ProxyIn;
        self.proxy_seen = None;
        Action::AwaitProxy {
            ids: self.fleet.batch_new.clone(),
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
        // Without an answer the old containers are treated as routed, which is the safe side,
        // but the warning must not claim the proxy said so.
        let routes = match &self.proxy_seen {
            Some(Ok(_)) => "still routes",
            _ => "may still route",
        };
        match self.settings.still_routing {
            StillRouting::Stop => {
                self.notes.push(Note::Warning(format!(
                    "the proxy {routes} to old container(s) {} after {waited} ({seen}); \
                     stopping them anyway (--proxy-still-routing stop): requests it sends them fail",
                    list(&still)
                )));
                self.proxy_wait(now)
            }
            StillRouting::Keep => {
                self.notes.push(Note::Warning(format!(
                    "the proxy {routes} to old container(s) {} after {waited} ({seen}); \
                     keeping them running so that no request is cut (--proxy-still-routing keep)",
                    list(&still)
                )));
                self.fleet.held.extend(still.iter().cloned());
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
            .filter(|id| !self.fleet.held.contains(id))
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
        self.fleet.batch_new.clear();
        self.start_batch(now)
    }

    fn finish_batches(&mut self, now: Instant) -> Action {
        if self.canary.as_ref().is_some_and(CanaryRun::bakes) {
            self.phase = Phase::Bake;
            let new = self.fleet.new.len() as u32;
            let (text, next) = self.canary_mut().begin_bake(new, now);
            self.notes.push(Note::Info(text));
            return self.canary_next(next, now);
        }
        if self.fleet.kept.is_empty() {
            return self.verify_now();
        }
        self.phase = Phase::Prune;
        Action::Remove(self.fleet.kept.clone())
    }

    fn verify_now(&mut self) -> Action {
        self.fleet.removed.append(&mut self.fleet.kept);
        self.phase = Phase::Verify;
        Action::Verify
    }

    fn verify(&mut self, containers: &[Container]) -> Action {
        self.phase = Phase::Done;
        Action::Finish(verdict::judge(&self.plan, &self.fleet, containers))
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

    /// A new container failed: counted against `max_failure_ratio`.
    fn fail_release(&mut self, why: String, now: Instant) -> Action {
        let failed = self
            .fleet
            .batch_new
            .iter()
            .filter(|id| !self.fleet.is_running(id) || self.fleet.is_unhealthy(id))
            .count();
        self.fail(why, failed.max(1) as u32, now)
    }

    /// Decides how to undo after a failure (`failed` new containers failed; 0 for a signal or
    /// a Docker error) and starts the retreat that undoes it.
    fn fail(&mut self, why: String, failed: u32, now: Instant) -> Action {
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
        let batch_retire = self.current_batch().retire.clone();
        let retreat = Retreat::planned(action, self.plan.order, &self.fleet, &batch_retire);
        if action != FailureAction::Rollback {
            // The old containers of the failed batch that were not retired serve on.
            let serving: Vec<String> = batch_retire
                .into_iter()
                .filter(|id| !self.fleet.removed.contains(id))
                .collect();
            if action == FailureAction::Continue {
                let old = if serving.is_empty() {
                    String::new()
                } else {
                    format!(", its old one(s) {} serve on,", list(&serving))
                };
                self.notes.push(Note::Warning(format!(
                    "{why}; failure_action continue: the batch's new container(s) go{old} and \
                     the next batch starts"
                )));
            }
            self.fleet.spared.extend(serving);
        }
        if action != FailureAction::Continue {
            self.failure = Some(why);
        }
        self.phase = Phase::Rollback;
        self.retreat = Some(retreat);
        self.in_retreat(now, Retreat::start)
    }

    /// Lets the retreat take the next step with what it may read and change, then carries out
    /// its answer.
    fn in_retreat(
        &mut self,
        now: Instant,
        step: impl FnOnce(&mut Retreat, &mut Ctx<'_>) -> Step,
    ) -> Action {
        let retreat = self.retreat.as_mut().expect("retreating");
        let mut ctx = Ctx {
            plan: &self.plan,
            settings: &self.settings,
            fleet: &mut self.fleet,
            notes: &mut self.notes,
        };
        match step(retreat, &mut ctx) {
            Step::Act(action) => action,
            Step::Stuck(how) => {
                self.phase = Phase::Done;
                Action::Finish(Outcome {
                    exit: Exit::Incomplete,
                    message: format!("{}; {how}", self.failure.clone().unwrap_or_default()),
                })
            }
            Step::Done { after, restored } => self.retreated(after, restored, now),
        }
    }

    /// Every undo step is done.
    fn retreated(&mut self, after: After, restored: usize, now: Instant) -> Action {
        self.retreat = None;
        let exit = self.signal.map(Signal::exit);
        let failure = self.failure.clone().unwrap_or_default();
        match after {
            After::NextBatch => self.next_batch(now),
            After::RolledBack => {
                self.phase = Phase::Done;
                let restarted = match restored {
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
                        "{failure}; paused after batch {} of {}: {} new ({}) and {} old ({}) \
                         container(s) serve; run docker reroll again to finish",
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

    fn record(&mut self, statuses: Vec<Status>) {
        if let Some(Action::Watch { ids, .. }) = &self.current {
            self.fleet.record(ids, statuses);
        }
    }

    /// The current batch's old containers.
    fn retiring(&self) -> impl Iterator<Item = &Container> {
        let ids = &self.plan.batches[self.batch].retire;
        self.plan.retire.iter().filter(|c| ids.contains(&c.id))
    }

    /// The old containers not removed: serving, or kept stopped.
    fn old_left(&self) -> Vec<String> {
        self.fleet.old_left(&self.plan.retire)
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
            .all(|id| self.fleet.is_drained(id))
    }
}

fn interruption(signal: Signal) -> String {
    match signal {
        Signal::Interrupt => "interrupted (SIGINT)".into(),
        Signal::Terminate => "terminated (SIGTERM)".into(),
        Signal::HangUp => "the terminal hung up (SIGHUP)".into(),
    }
}

pub mod canary;
mod fleet;
mod protocol;
mod retreat;
#[cfg(test)]
mod tests;
mod verdict;

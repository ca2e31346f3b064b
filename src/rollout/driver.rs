//! The thin async driver: carries out the machine's actions against Docker and feeds back what it
//! observed. Health changes come from a `docker events` stream as Docker reports them; one
//! batched `docker inspect` starts each watch and backs the stream up once a second.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::task::{JoinHandle, JoinSet};
use tokio::time::{Instant, sleep_until, timeout};

use super::machine::{Action, Created, Input, Machine, Outcome, Phase, Status};
use super::pre_stop_hooks;
use crate::docker::events::{Change, Subscription};
use crate::docker::verbs::Start;
use crate::docker::{Docker, DockerError};
use crate::duration::show;
use crate::engine::health_pump::HealthPump;
use crate::interrupt::Interrupts;
use crate::model::container::{Container, Health, State};
use crate::model::hook::ExecHook;
use crate::model::routing::{Route, Routing, Target};
use crate::proxy::Proxy;
use crate::report::Reporter;
use crate::template::{Template, Values, short_id};

/// How often a watch re-inspects, in case the event stream missed something or died.
const POLL_EVERY: Duration = Duration::from_secs(2);
/// How often a proxy's API is asked while waiting on it: well under its own reaction time.
const PROXY_POLL: Duration = Duration::from_millis(50);
/// The same for a proxy command, which starts a process per container each time.
const PROXY_COMMAND_POLL: Duration = Duration::from_millis(250);
/// A pre-stop command that runs longer than this counts as failed.
const PRE_STOP_LIMIT: Duration = Duration::from_secs(60);

mod canary;
pub use canary::CanaryIo;

pub struct Driver<'a> {
    docker: &'a Docker,
    project: String,
    service: String,
    pre_stop: Option<Template>,
    /// The service's own `pre_stop:` hooks, run before `pre_stop`.
    pre_stop_hooks: Vec<ExecHook>,
    /// Undoes the pre-stop on old containers a rollback starts again.
    undo_pre_stop: Option<Template>,
    /// Names of the containers known before the rollout, for the pre-stop template.
    names: BTreeMap<String, String>,
    /// Every container id that existed before the scale: anything else after it is new.
    known: Vec<String>,
    reporter: &'a Reporter,
    interrupts: &'a mut Interrupts,
    events: Subscription,
    /// The proxy adapter, when one is configured: asked instead of trusting sleeps.
    proxy: Option<Proxy>,
    /// Every container's addresses, for the proxy adapter.
    targets: BTreeMap<String, Target>,
    /// Runs the watched containers' health checks when the engine does not (crate::engine).
    pub health_pump: Option<HealthPump>,
    watch: WatchState,
    proxy_watch: ProxyWatch,
    /// Containers whose failure was already reported.
    diagnosed: Vec<String>,
    /// Checks, promote and abort, when the rollout is a canary.
    pub canary: Option<CanaryIo>,
}

#[derive(Default)]
struct WatchState {
    ids: Vec<String>,
    statuses: BTreeMap<String, Status>,
    /// Whether `statuses` holds an inspect taken after the subscription saw these ids.
    seeded: bool,
    /// Whether the machine has yet to hear of the seeded statuses.
    unreported: bool,
    next_poll: Option<Instant>,
}

/// The wait on the proxy in progress: what was last reported, and when to ask next. A wait is
/// its ids and deadline: the machine asks again with both unchanged while it goes on waiting,
/// and a new wait (a rollback asking about the same containers) hears the first answer too.
#[derive(Default)]
struct ProxyWatch {
    ids: Vec<String>,
    until: Option<Instant>,
    reported: Option<Result<Routing, String>>,
    next: Option<Instant>,
}

pub type PhaseTimes = Vec<(Phase, Duration)>;

/// What a driver works with: the engine, the service, its hooks and proxy, and every container
/// that existed before the rollout.
pub struct Context<'a> {
    pub docker: &'a Docker,
    pub project: String,
    pub service: String,
    pub pre_stop: Option<Template>,
    /// The service's own `pre_stop:` hooks, run before `pre_stop`.
    pub pre_stop_hooks: Vec<ExecHook>,
    /// Undoes the pre-stop on old containers a rollback starts again.
    pub undo_pre_stop: Option<Template>,
    pub proxy: Option<Proxy>,
    /// The service's containers before the rollout, in every state.
    pub existing: &'a [Container],
    pub reporter: &'a Reporter,
    pub interrupts: &'a mut Interrupts,
    pub events: Subscription,
}

impl<'a> Driver<'a> {
    pub fn new(context: Context<'a>) -> Self {
        let existing = context.existing;
        Driver {
            docker: context.docker,
            project: context.project,
            service: context.service,
            pre_stop: context.pre_stop,
            pre_stop_hooks: context.pre_stop_hooks,
            undo_pre_stop: context.undo_pre_stop,
            names: existing
                .iter()
                .map(|c| (c.id.clone(), c.name.clone()))
                .collect(),
            known: existing.iter().map(|c| c.id.clone()).collect(),
            reporter: context.reporter,
            interrupts: context.interrupts,
            events: context.events,
            proxy: context.proxy,
            targets: existing
                .iter()
                .map(|c| (c.id.clone(), c.target()))
                .collect(),
            health_pump: None,
            watch: WatchState::default(),
            proxy_watch: ProxyWatch::default(),
            diagnosed: Vec::new(),
            canary: None,
        }
    }

    pub async fn drive(&mut self, machine: &mut Machine) -> (Outcome, PhaseTimes) {
        let mut input = Input::Begin;
        let mut phase: Option<(Phase, Instant)> = None;
        let mut times = Vec::new();
        loop {
            let mut action = machine.handle(input, Instant::now());
            while let Some(signal) = self.interrupts.pending() {
                action = machine.handle(Input::Interrupted(signal), Instant::now());
            }
            if phase.map(|(p, _)| p) != Some(machine.phase()) {
                let now = Instant::now();
                if let Some((previous, since)) = phase {
                    self.reporter.phase_ended(previous, now - since);
                    times.push((previous, now - since));
                }
                if machine.phase() != Phase::Done {
                    self.reporter
                        .phase_started(machine.phase(), &self.describe(machine, &action));
                }
                if machine.phase() == Phase::Rollback {
                    // Before the rollback's own pre-stop changes what their health checks say.
                    let new = machine.new_ids();
                    self.diagnose(&new).await;
                    self.diagnosed = new;
                }
                phase = Some((machine.phase(), now));
            }
            for note in machine.take_notes() {
                match note {
                    super::machine::Note::Info(text) => self.reporter.info(&text),
                    super::machine::Note::Warning(text) => self.reporter.warning(&text),
                }
            }
            // The health pump runs checks only while a watch waits on them (crate::engine).
            if let Some(pump) = &self.health_pump
                && !matches!(action, Action::Watch { .. })
            {
                pump.follow(&[]);
            }
            if let Action::Watch { until, .. } | Action::AwaitProxy { until, .. } = &action {
                self.reporter.waiting_until(*until);
            }
            let watched = match &action {
                Action::Watch { ids, .. } | Action::AwaitProxy { ids, .. } => ids.clone(),
                _ => Vec::new(),
            };
            input = match action {
                Action::Finish(outcome) => return (outcome, times),
                Action::Remove(ids) => self.remove(&ids).await,
                Action::Scale { total, start_by_id } => {
                    self.scale(total, start_by_id, &machine.new_ids()).await
                }
                Action::Watch { ids, until } => self.watch(ids, until).await,
                Action::PreStop(ids) => Input::PreStopFinished(self.pre_stop(&ids).await),
                Action::AwaitProxy { ids, until } => self.await_proxy(ids, until).await,
                Action::UndoPreStop(ids) => {
                    for (id, why) in self
                        .run_hook("undo-pre-stop", self.undo_pre_stop.as_ref(), &ids)
                        .await
                    {
                        self.reporter.warning(&format!(
                            "undoing the pre-stop on {} failed: {why}",
                            short_id(&id)
                        ));
                    }
                    Input::Done
                }
                Action::Retire { ids, keep } => self.retire(&ids, keep).await,
                Action::Restore(ids) => self.restore(&ids).await,
                Action::Verify => {
                    match self.docker.containers(&self.project, &self.service).await {
                        Ok(containers) => Input::Verified(containers),
                        Err(error) => Input::Failed(brief(&error)),
                    }
                }
                Action::RollBack { keep } => self.roll_back(&keep).await,
                Action::Analyze { command, reset } => self.analyze(machine, command, reset).await,
            };
            self.tally(machine.phase(), &watched, &input);
        }
    }

    /// For the progress line: how many of the watched containers have got where this phase
    /// waits for them.
    fn tally(&self, phase: Phase, watched: &[String], input: &Input) {
        let of = watched.len();
        let (done, what) = match (phase, input) {
            (Phase::Drain, Input::Observed(statuses)) => (
                statuses
                    .iter()
                    .filter(|s| s.health == Health::Unhealthy)
                    .count(),
                "old unhealthy",
            ),
            (_, Input::Observed(statuses)) => {
                let serving = |s: &&Status| {
                    s.state == State::Running && matches!(s.health, Health::Healthy | Health::None)
                };
                let healthy = statuses.iter().filter(serving).count();
                let checked = statuses.iter().any(|s| s.health != Health::None);
                let what = match (phase, checked) {
                    (Phase::Health | Phase::Settle, true) => "new healthy",
                    (Phase::Health | Phase::Settle, false) => "new running",
                    (_, true) => "healthy",
                    (_, false) => "running",
                };
                (healthy, what)
            }
            (Phase::ProxyIn, Input::Routing(Ok(routing))) => (
                watched
                    .iter()
                    .filter(|id| routing.route(id) == Route::Serving)
                    .count(),
                "routed to",
            ),
            (_, Input::Routing(Ok(routing))) => {
                (of - routing.still_routed(watched).len(), "out of rotation")
            }
            _ => return,
        };
        self.reporter.tally(done, of, what);
    }

    fn describe(&self, machine: &Machine, action: &Action) -> String {
        match (machine.phase(), action) {
            (Phase::Rollback, _) => match machine.failure() {
                Some(why) => format!("rolling back: {why}"),
                None => "undoing the failed batch".to_owned(),
            },
            (Phase::Prune, Action::Remove(ids)) => {
                format!("removing the stopped old container(s) {}", list(ids))
            }
            (_, Action::Remove(ids)) => {
                format!("removing stopped leftover container(s) {}", list(ids))
            }
            (
                _,
                Action::Scale {
                    total,
                    start_by_id: false,
                },
            ) => format!("scaling {} to {total} containers", self.service),
            (_, Action::Scale { total, .. }) => format!(
                "scaling {} to {total} containers, the old ones kept stopped included; \
                 starting only the new ones",
                self.service
            ),
            (Phase::Health, Action::Watch { ids, .. }) => {
                format!("waiting for new container(s) {} to turn healthy", list(ids))
            }
            (Phase::Settle, Action::Watch { until, .. }) => format!(
                "healthy; waiting {} (--wait-after-healthy)",
                show(until.saturating_duration_since(Instant::now()))
            ),
            (_, Action::PreStop(ids)) => {
                let what = match (self.pre_stop_hooks.is_empty(), self.pre_stop.is_some()) {
                    (true, _) => "the pre-stop command",
                    (false, false) => "the pre_stop hooks",
                    (false, true) => "the pre_stop hooks, then the pre-stop command,",
                };
                format!("running {what} on {}", list(ids))
            }
            (Phase::Drain, Action::Watch { ids, .. }) => {
                format!(
                    "waiting for old container(s) {} to turn unhealthy",
                    list(ids)
                )
            }
            (Phase::ProxyIn, Action::AwaitProxy { ids, until }) => format!(
                "waiting up to {} for {} to route to new container(s) {}",
                show(until.saturating_duration_since(Instant::now())),
                self.proxy_name(),
                list(ids)
            ),
            (_, Action::AwaitProxy { ids, until }) => format!(
                "waiting up to {} for {} to stop routing to {}",
                show(until.saturating_duration_since(Instant::now())),
                self.proxy_name(),
                list(ids)
            ),
            (Phase::ProxyWait, Action::Watch { until, .. }) => format!(
                "waiting {} for the proxy to drop them (--wait-after-unhealthy)",
                show(until.saturating_duration_since(Instant::now()))
            ),
            (_, Action::Retire { ids, keep: false }) => {
                format!("stopping and removing old container(s) {}", list(ids))
            }
            (_, Action::Retire { ids, keep: true }) => format!(
                "stopping old container(s) {}, kept until the rollout succeeds",
                list(ids)
            ),
            (Phase::Delay, Action::Watch { until, .. }) => format!(
                "waiting {} before the next batch (update_config.delay)",
                show(until.saturating_duration_since(Instant::now()))
            ),
            (_, Action::Verify) => "checking the result".to_owned(),
            (Phase::Step, _) => {
                "a canary step: old and new containers serve side by side".to_owned()
            }
            (Phase::Bake, _) => "the bake: the new containers serve alone".to_owned(),
            _ => String::new(),
        }
    }

    async fn remove(&self, ids: &[String]) -> Input {
        match self.docker.run(self.docker.remove(ids, true)).await {
            Ok(_) => Input::Done,
            Err(error) => Input::Failed(brief(&error)),
        }
    }

    async fn scale(&mut self, total: u32, start_by_id: bool, adopted: &[String]) -> Input {
        let start = if start_by_id {
            Start::NoStart
        } else {
            Start::Detached
        };
        let scale = self.docker.scale(&self.service, total, start);
        if let Err(error) = self.docker.run(scale).await {
            return Input::Failed(brief(&error));
        }
        let ids = match self
            .docker
            .container_ids(&self.project, &self.service)
            .await
        {
            Ok(ids) => ids,
            Err(error) => return Input::Failed(brief(&error)),
        };
        let created: Vec<String> = ids
            .into_iter()
            .filter(|id| !self.known.contains(id))
            .collect();
        self.known.extend(created.iter().cloned());
        if start_by_id
            && !created.is_empty()
            && let Err(error) = self.docker.run(self.docker.start(&created)).await
        {
            // The rollback removes every container it does not know, these included.
            return Input::Failed(format!(
                "starting the new containers failed: {}",
                brief(&error)
            ));
        }
        let mut watched = adopted.to_vec();
        watched.extend(created.iter().cloned());
        let containers = match self.fresh_inspect(&watched).await {
            Ok(containers) => containers,
            Err(error) => return Input::Failed(brief(&error)),
        };
        self.reporter.containers("new", &watched);
        for container in &containers {
            self.names
                .insert(container.id.clone(), container.name.clone());
            self.targets
                .insert(container.id.clone(), container.target());
        }
        self.seed(watched, &containers);
        Input::Scaled(
            created
                .iter()
                .map(|id| Created {
                    id: id.clone(),
                    healthcheck: containers
                        .iter()
                        .find(|c| &c.id == id)
                        .and_then(|c| c.healthcheck),
                })
                .collect(),
        )
    }

    /// An inspect that every later event is newer than: events queued before it are dropped.
    async fn fresh_inspect(&mut self, ids: &[String]) -> Result<Vec<Container>, DockerError> {
        while self.events.events.try_recv().is_ok() {}
        self.docker.inspect(ids).await
    }

    fn seed(&mut self, ids: Vec<String>, containers: &[Container]) {
        self.watch = WatchState {
            statuses: containers
                .iter()
                .filter(|c| ids.contains(&c.id))
                .map(|c| (c.id.clone(), status_of(c)))
                .collect(),
            ids,
            seeded: true,
            unreported: true,
            next_poll: Some(Instant::now() + POLL_EVERY),
        };
    }

    /// Waits for the next change of the watched containers, the deadline, or an interrupt.
    async fn watch(&mut self, ids: Vec<String>, until: Instant) -> Input {
        if ids.is_empty() {
            return tokio::select! {
                _ = sleep_until(until) => Input::Deadline,
                Some(signal) = self.interrupts.receiver.recv() => Input::Interrupted(signal),
            };
        }
        if self.watch.ids != ids {
            self.watch = WatchState {
                ids: ids.clone(),
                ..WatchState::default()
            };
        }
        if let Some(pump) = &self.health_pump {
            pump.follow(&ids);
        }
        if !self.watch.seeded {
            match self.fresh_inspect(&ids).await {
                Ok(containers) => self.seed(ids.clone(), &containers),
                Err(error) => return Input::Failed(brief(&error)),
            }
        }
        if self.watch.unreported {
            self.watch.unreported = false;
            return self.observed();
        }
        // The backup inspect runs beside the event stream, so that an event arriving meanwhile is
        // acted on at once rather than after it.
        let mut poll: Option<JoinHandle<Result<Vec<Container>, DockerError>>> = None;
        loop {
            let next_poll = self.watch.next_poll.unwrap_or(until);
            tokio::select! {
                biased;
                Some(signal) = self.interrupts.receiver.recv() => return Input::Interrupted(signal),
                _ = sleep_until(until) => return Input::Deadline,
                Some(event) = self.events.events.recv() => {
                    if !self.watch.ids.contains(&event.id) {
                        continue;
                    }
                    tracing::debug!(target: "docker", "event: {} {:?}", short_id(&event.id), event.change);
                    self.apply(&event.id, event.change);
                    return self.observed();
                }
                polled = async { poll.as_mut().expect("guarded").await }, if poll.is_some() => {
                    poll = None;
                    match polled {
                        Ok(Ok(containers)) if self.refresh(&containers) => return self.observed(),
                        Ok(Err(error)) => tracing::debug!("poll failed: {error}"),
                        _ => {}
                    }
                }
                _ = sleep_until(next_poll), if poll.is_none() => {
                    self.watch.next_poll = Some(Instant::now() + POLL_EVERY);
                    let docker = self.docker.clone();
                    let ids = ids.clone();
                    poll = Some(tokio::spawn(async move { docker.inspect(&ids).await }));
                }
            }
        }
    }

    fn proxy_name(&self) -> String {
        self.proxy
            .as_ref()
            .map_or_else(|| "the proxy".to_owned(), Proxy::describe)
    }

    /// Asks the proxy until what it routes to changes, the deadline passes, or a signal comes.
    async fn await_proxy(&mut self, ids: Vec<String>, until: Instant) -> Input {
        let Some(proxy) = self.proxy.clone() else {
            return Input::Routing(Err("no proxy adapter is configured".into()));
        };
        if self.proxy_watch.ids != ids || self.proxy_watch.until != Some(until) {
            self.proxy_watch = ProxyWatch {
                ids: ids.clone(),
                until: Some(until),
                ..ProxyWatch::default()
            };
        }
        let every = match proxy {
            Proxy::Command(_) => PROXY_COMMAND_POLL,
            _ => PROXY_POLL,
        };
        let targets: Vec<Target> = ids
            .iter()
            .map(|id| {
                self.targets.get(id).cloned().unwrap_or_else(|| Target {
                    id: id.clone(),
                    name: self.names.get(id).cloned().unwrap_or_default(),
                    addresses: Vec::new(),
                })
            })
            .collect();
        loop {
            let next = self.proxy_watch.next.unwrap_or_else(Instant::now);
            let seen = tokio::select! {
                biased;
                Some(signal) = self.interrupts.receiver.recv() => return Input::Interrupted(signal),
                _ = sleep_until(until) => return Input::Deadline,
                seen = async {
                    sleep_until(next).await;
                    proxy.observe_or_none(&targets).await
                } => seen.map_err(|error| error.to_string()),
            };
            self.proxy_watch.next = Some(Instant::now() + every);
            if self.proxy_watch.reported.as_ref() != Some(&seen) {
                match &seen {
                    Ok(routing) => tracing::debug!(target: "proxy", "{}", routing.shown),
                    Err(why) => tracing::debug!(target: "proxy", "cannot ask the proxy: {why}"),
                }
                self.proxy_watch.reported = Some(seen.clone());
                return Input::Routing(seen);
            }
        }
    }

    fn apply(&mut self, id: &str, change: Change) {
        let statuses = &mut self.watch.statuses;
        if change == Change::Destroyed {
            statuses.remove(id);
            return;
        }
        let status = statuses.entry(id.to_owned()).or_insert_with(|| Status {
            id: id.to_owned(),
            state: State::Running,
            health: Health::None,
            exit_code: 0,
        });
        match change {
            Change::Health(health) => status.health = health,
            Change::Started => status.state = State::Running,
            Change::Died { exit_code } => {
                status.state = State::Exited;
                status.exit_code = exit_code;
            }
            Change::Destroyed => {}
        }
    }

    fn refresh(&mut self, containers: &[Container]) -> bool {
        let before = self.watch.statuses.clone();
        self.watch.statuses = containers
            .iter()
            .filter(|c| self.watch.ids.contains(&c.id))
            .map(|c| (c.id.clone(), status_of(c)))
            .collect();
        before != self.watch.statuses
    }

    fn observed(&self) -> Input {
        Input::Observed(self.watch.statuses.values().cloned().collect())
    }

    /// Runs a templated command (the pre-stop, or its undo) once per container, in parallel;
    /// answers the ones that failed, with why.
    /// The service's `pre_stop:` hooks, then the pre-stop command on the containers whose hooks
    /// succeeded: a failed hook counts as a failed pre-stop.
    async fn pre_stop(&self, ids: &[String]) -> Vec<(String, String)> {
        let mut failures = pre_stop_hooks::run(
            self.docker,
            &self.pre_stop_hooks,
            ids,
            PRE_STOP_LIMIT,
            self.reporter,
        )
        .await;
        let hooked: Vec<String> = ids
            .iter()
            .filter(|id| !failures.iter().any(|(failed, _)| failed == *id))
            .cloned()
            .collect();
        failures.extend(
            self.run_hook("pre-stop", self.pre_stop.as_ref(), &hooked)
                .await,
        );
        failures
    }

    async fn run_hook(
        &self,
        name: &str,
        template: Option<&Template>,
        ids: &[String],
    ) -> Vec<(String, String)> {
        let Some(template) = template else {
            return Vec::new();
        };
        let mut running = JoinSet::new();
        for id in ids {
            let name = self.names.get(id).cloned().unwrap_or_default();
            let addr = self
                .targets
                .get(id)
                .and_then(|t| t.addresses.first())
                .map(ToString::to_string)
                .unwrap_or_default();
            let argv = template.render(&Values {
                id,
                name: &name,
                service: &self.service,
                project: &self.project,
                addr: &addr,
            });
            let env = self.docker.globals().env();
            let id = id.clone();
            running.spawn(async move {
                let mut command = crate::docker::command::user_command(&argv, &env);
                let result = timeout(PRE_STOP_LIMIT, command.output()).await;
                (id, argv, result)
            });
        }
        let mut failures = Vec::new();
        while let Some(joined) = running.join_next().await {
            let Ok((id, argv, result)) = joined else {
                continue;
            };
            let shown = shell_words::join(&argv);
            // bench/probe.rs counts the `pre-stop: ` lines.
            tracing::debug!(target: "docker", "{name}: {shown}");
            match result {
                Err(_) => failures.push((
                    id,
                    format!("`{shown}` ran longer than {}", show(PRE_STOP_LIMIT)),
                )),
                Ok(Err(error)) => failures.push((id, format!("cannot run `{shown}`: {error}"))),
                Ok(Ok(output)) => {
                    let text = format!(
                        "{}{}",
                        String::from_utf8_lossy(&output.stdout),
                        String::from_utf8_lossy(&output.stderr)
                    );
                    self.reporter.container_output(short_id(&id), &text);
                    if !output.status.success() {
                        failures.push((id, format!("`{shown}` exited with {}", output.status)));
                    }
                }
            }
        }
        failures
    }

    async fn retire(&self, ids: &[String], keep: bool) -> Input {
        if let Err(error) = self.docker.run(self.docker.stop(ids)).await {
            return Input::Failed(brief(&error));
        }
        if keep {
            return Input::Done;
        }
        match self.docker.run(self.docker.remove(ids, false)).await {
            Ok(_) => Input::Done,
            Err(error) => Input::Failed(brief(&error)),
        }
    }

    /// Starts old containers kept stopped, then undoes the pre-stop on each.
    async fn restore(&self, ids: &[String]) -> Input {
        if let Err(error) = self.docker.run(self.docker.start(ids)).await {
            return Input::Failed(brief(&error));
        }
        let undo = self.undo_pre_stop.as_ref();
        for (id, why) in self.run_hook("undo-pre-stop", undo, ids).await {
            self.reporter.warning(&format!(
                "undoing the pre-stop on {} failed: {why}",
                short_id(&id)
            ));
        }
        Input::Done
    }

    /// Removes every container of the service but `keep`, after reporting why each failed.
    async fn roll_back(&self, keep: &[String]) -> Input {
        let ids = match self
            .docker
            .container_ids(&self.project, &self.service)
            .await
        {
            Ok(ids) => ids,
            Err(error) => {
                return Input::RollbackFailed {
                    left: Vec::new(),
                    why: format!("cannot list the service's containers: {}", brief(&error)),
                };
            }
        };
        let doomed: Vec<String> = ids.into_iter().filter(|id| !keep.contains(id)).collect();
        if doomed.is_empty() {
            return Input::Done;
        }
        let undiagnosed: Vec<String> = doomed
            .iter()
            .filter(|id| !self.diagnosed.contains(id))
            .cloned()
            .collect();
        self.diagnose(&undiagnosed).await;
        let _ = self.docker.run(self.docker.stop(&doomed)).await;
        match self.docker.run(self.docker.remove(&doomed, true)).await {
            Ok(_) => Input::Done,
            Err(error) => Input::RollbackFailed {
                left: doomed,
                why: brief(&error),
            },
        }
    }

    /// Each failed container's last health-check output and last log lines.
    async fn diagnose(&self, ids: &[String]) {
        if ids.is_empty() {
            return;
        }
        let containers = self.docker.inspect(ids).await.unwrap_or_default();
        let mut logs = JoinSet::new();
        for id in ids {
            let command = self.docker.logs_tail(id, 5);
            let docker = self.docker.clone();
            let id = id.clone();
            logs.spawn(async move {
                let text = match docker.run(command).await {
                    Ok(output) => format!("{}{}", output.stdout, output.stderr),
                    Err(error) => error.stderr().to_owned(),
                };
                (id, text)
            });
        }
        let mut collected = BTreeMap::new();
        while let Some(Ok((id, text))) = logs.join_next().await {
            collected.insert(id, text);
        }
        for id in ids {
            let short = short_id(id);
            if let Some(container) = containers.iter().find(|c| &c.id == id) {
                let check = container
                    .last_check_output
                    .as_deref()
                    .map_or(String::new(), |o| format!(", last health checks: {o:?}"));
                self.reporter.container_output(
                    short,
                    &format!(
                        "{} ({}, exit code {}){check}",
                        container.state.name(),
                        container.health.name(),
                        container.exit_code
                    ),
                );
            }
            if let Some(text) = collected.get(id)
                && !text.trim().is_empty()
            {
                self.reporter
                    .container_output(short, &format!("last log lines:\n{text}"));
            }
        }
    }
}

fn list(ids: &[String]) -> String {
    ids.iter()
        .map(|id| short_id(id))
        .collect::<Vec<_>>()
        .join(" ")
}

fn status_of(container: &Container) -> Status {
    Status {
        id: container.id.clone(),
        state: container.state,
        health: container.health,
        exit_code: container.exit_code,
    }
}

/// The gist of a failed docker call: its last lines of stderr.
fn brief(error: &DockerError) -> String {
    let stderr = error.stderr();
    if stderr.is_empty() {
        return error.to_string();
    }
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(2)..].join("; ")
}

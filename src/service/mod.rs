//! One service's rollout, shared by a named-service run and a stack run: plan from what is
//! running, then drive the machine against Docker (and the proxy, when one is configured).

pub mod project;
pub mod proxy;

use std::collections::BTreeSet;

use crate::canary::control::ControlFiles;
use crate::canary::history::History;
use crate::docker::command::ComposeCli;
use crate::docker::compose;
use crate::docker::{Docker, unreachable_or};
use crate::exit::{Exit, Failure};
use crate::interrupt::Interrupts;
use crate::journal::Journal;
use crate::lock::StateDir;
use crate::model::canary::Canary;
use crate::model::container::Container;
use crate::model::project::{ProjectConfig, ServiceConfig};
use crate::plan::{Batching, Plan, Snapshot, plan};
use crate::report::Reporter;
use crate::rollout::Machine;
use crate::rollout::driver::{CanaryIo, Context, Driver};
use crate::rollout::machine::canary::CanaryRun;
use crate::service_settings::Resolved;
use proxy::{check_proxy, connect_proxy};

/// One service's rollout, as decided before anything changes.
pub struct ServiceRollout<'a> {
    pub docker: &'a Docker,
    pub project: &'a str,
    pub service: &'a str,
    pub config: ServiceConfig,
    pub resolved: Resolved,
    /// The hash Compose gives new containers, when already asked (a stack asks once for all).
    pub known_hash: Option<String>,
    pub dry_run: bool,
    /// Go to `deploy.replicas` (a stack rollout) rather than keep the running count.
    pub follow_replicas: bool,
    /// Steps, checks and bake (`crate::canary`); none for a plain rollout.
    pub canary: Option<Canary>,
    /// The project's config as Compose resolved it, recorded for `docker reroll rollback`; none:
    /// not recorded (Compose v1 and podman-compose print no JSON).
    pub project_json: Option<String>,
}

impl<'a> ServiceRollout<'a> {
    /// One named service (`docker reroll web`, `rollback web`): rolled whatever its hash, at the
    /// count running; a plain rollout until told otherwise.
    pub fn named(
        docker: &'a Docker,
        project: &'a ProjectConfig,
        service: &'a str,
        config: ServiceConfig,
        resolved: Resolved,
        dry_run: bool,
    ) -> Self {
        ServiceRollout {
            docker,
            project: &project.name,
            service,
            config,
            resolved,
            known_hash: None,
            dry_run,
            follow_replicas: false,
            canary: None,
            project_json: Some(project.resolved_json.clone()),
        }
    }

    /// The plan for the service's containers as they are now; a refusal is exit 2.
    pub async fn plan(
        &self,
        state: &StateDir,
        containers: Vec<Container>,
    ) -> Result<(Snapshot, Plan), Failure> {
        let config_hash = current_hash(
            self.docker,
            self.service,
            &containers,
            self.known_hash.as_deref(),
        )
        .await?;
        let snapshot = Snapshot {
            project: self.project.to_owned(),
            service: self.service.to_owned(),
            config: self.config.clone(),
            config_hash,
            containers,
            journal: state.journal().load(),
            follow_replicas: self.follow_replicas,
            batching: Batching {
                parallelism: self.resolved.settings.parallelism,
                order: self.resolved.settings.order,
            },
        };
        let mut plan = plan(&snapshot).map_err(Failure::usage)?;
        if let Some(canary) = &self.canary {
            crate::canary::steps::apply(&mut plan, &canary.steps);
        }
        Ok((snapshot, plan))
    }

    /// `--dry-run`'s account of the service: the plan and the settings it would run with.
    pub fn show_dry_run(&self, plan: &Plan, reporter: &Reporter) {
        reporter.plan(self.service, self.project, plan);
        reporter.settings(self.service, &self.resolved.sources);
        for warning in plan.warnings() {
            reporter.warning(&warning);
        }
    }

    /// Read → plan → apply, for one service whose lock the caller holds.
    pub async fn roll(
        self,
        state: &StateDir,
        containers: Vec<Container>,
        reporter: &Reporter,
        interrupts: &mut Interrupts,
    ) -> Result<Exit, Failure> {
        let (snapshot, plan) = self.plan(state, containers).await?;
        if self.dry_run {
            self.show_dry_run(&plan, reporter);
            return Ok(Exit::Done);
        }
        let (docker, project, service) = (self.docker, self.project, self.service);
        let proxy = match &self.resolved.proxy {
            Some(spec) => {
                let proxy = connect_proxy(spec, project, service, &self.config, docker).await?;
                check_proxy(&proxy, service, &snapshot.containers, reporter, interrupts).await?;
                reporter.info(&format!(
                    "verifying every step with {} at {}",
                    proxy.describe(),
                    spec.url.as_deref().unwrap_or("its command")
                ));
                Some(proxy)
            }
            None => None,
        };
        let journal_file = state.journal();
        let events = docker
            .subscribe(project, service)
            .map_err(|e| Failure::usage(format!("cannot run docker events: {e}")))?;
        if let Some(signal) = interrupts.pending() {
            return Err(Failure::new(signal.exit(), "interrupted before any change"));
        }

        // From here on, things change.
        let detail = if plan.is_first_deploy() {
            format!("not running: first deploy of {} container(s)", plan.target)
        } else {
            format!(
                "{} running → {} new container(s){}",
                plan.retire.len(),
                plan.target,
                if plan.leftovers.is_empty() {
                    String::new()
                } else {
                    format!(", {} stopped leftover(s) to remove", plan.leftovers.len())
                }
            )
        };
        reporter.start(service, project, &detail);
        if let Some(recovery) = &plan.recovery {
            reporter.warning(recovery);
        }
        let old_ids: Vec<String> = plan.retire.iter().map(|c| c.id.clone()).collect();
        reporter.containers("old", &old_ids);
        journal_file
            .save(&Journal {
                old: old_ids,
                target: plan.target,
                pid: std::process::id(),
            })
            .map_err(|e| Failure::usage(format!("cannot write the rollout journal: {e}")))?;

        // Podman without systemd: the tool runs the health checks (crate::engine).
        let x_reroll = self.config.x_reroll.as_ref();
        let health_pump = crate::engine::health_pump(docker, &events, reporter, x_reroll).await;
        let canary = self.canary.map(|policy| {
            let pauses = crate::canary::steps::pauses(&plan);
            let old = plan.retire.len() as u32;
            let io = CanaryIo {
                probe: policy.analysis.probe.clone(),
                command: policy.analysis.command.clone(),
                control: ControlFiles::new(state),
                running: None,
                proxy_check: policy.analysis.proxy_max_error_rate.is_some(),
                answered: Default::default(),
            };
            io.control.clear();
            (CanaryRun::new(policy, pauses, old), io)
        });
        let old_hash = plan.retire.first().map(|c| c.config_hash.clone());
        let mut machine = Machine::new(plan, self.resolved.settings);
        let canary_io = match canary {
            Some((run, io)) => {
                machine = machine.with_canary(run);
                Some(io)
            }
            None => None,
        };
        let mut driver = Driver::new(Context {
            docker,
            project: project.to_owned(),
            service: service.to_owned(),
            pre_stop: self.resolved.pre_stop_cmd,
            pre_stop_hooks: self.config.pre_stop.clone(),
            undo_pre_stop: self.resolved.undo_pre_stop_cmd,
            proxy,
            existing: &snapshot.containers,
            reporter,
            interrupts,
            events,
        });
        driver.health_pump = health_pump;
        driver.canary = canary_io;
        let (outcome, times) = driver.drive(&mut machine).await;
        if let Some(io) = driver.canary.take() {
            io.control.clear();
        }
        // Kept while old and new run side by side, so that the next run knows which is which.
        if outcome.exit != Exit::Incomplete && !machine.is_mixed() {
            journal_file.remove();
        }
        // Compose v1 and podman-compose print no JSON config to record.
        let json_config = !matches!(
            docker.compose_cli(),
            ComposeCli::StandaloneV1 | ComposeCli::PodmanCompose
        );
        if outcome.exit == Exit::Done
            && json_config
            && let Some(json) = &self.project_json
        {
            let recorded = Recorded {
                state,
                project,
                service,
                json,
            };
            recorded.record(docker, old_hash, &machine, reporter).await;
        }
        reporter.finish(outcome.exit, &outcome.message, &times);
        Ok(outcome.exit)
    }
}

/// Records the version now serving, for `docker reroll rollback` (`crate::canary::history`); a
/// failure to record is only a warning: the rollout itself succeeded.
struct Recorded<'a> {
    state: &'a StateDir,
    project: &'a str,
    service: &'a str,
    json: &'a str,
}

impl Recorded<'_> {
    async fn record(
        &self,
        docker: &Docker,
        old_hash: Option<String>,
        machine: &Machine,
        reporter: &Reporter,
    ) {
        let Some(new) = machine.new_ids().into_iter().next() else {
            return;
        };
        let history = History::new(self.state);
        let recorded = history
            .record(
                docker,
                (self.project, self.service),
                self.json,
                old_hash.as_deref(),
                &new,
            )
            .await;
        match recorded {
            Ok(note) => reporter.info(&note),
            Err(why) => reporter.warning(&format!(
                "docker reroll rollback will not know this version: {why}"
            )),
        }
    }
}

/// The config hash new containers get, asked of Compose only when it decides something (and not
/// already `known`): when the running containers carry two different hashes (an interrupted
/// rollout). Otherwise all of them are rolled, whatever their hash.
async fn current_hash(
    docker: &Docker,
    service: &str,
    containers: &[Container],
    known: Option<&str>,
) -> Result<String, Failure> {
    let running: BTreeSet<&str> = containers
        .iter()
        .filter(|c| c.is_running())
        .map(|c| c.config_hash.as_str())
        .collect();
    if running.len() < 2 {
        return Ok(running.into_iter().next().unwrap_or_default().to_owned());
    }
    if let Some(hash) = known {
        return Ok(hash.to_owned());
    }
    if docker.compose_cli() == &ComposeCli::PodmanCompose {
        // No `config --hash`: none of the hashes running is known to be the file's.
        return Ok(String::new());
    }
    let output = docker
        .run(docker.config_hash(service))
        .await
        .map_err(unreachable_or("asking Compose for the config hash"))?;
    Ok(compose::parse_hash(&output.stdout, service).unwrap_or_default())
}

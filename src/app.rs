//! One run: read (Compose, containers, an interrupted run's journal) → plan → apply. Nothing
//! changes before the plan is accepted; every refusal before that point is exit 2.

use std::collections::{BTreeMap, BTreeSet};

use crate::cli::Cli;
use crate::docker::command::ComposeCli;
use crate::docker::compose::{self, ProjectConfig};
use crate::docker::container::Container;
use crate::docker::{Docker, DockerError};
use crate::exit::{Exit, Failure};
use crate::interrupt::Interrupts;
use crate::journal::Journal;
use crate::lock::{Lock, StateDir};
use crate::plan::{Snapshot, plan};
use crate::report::Reporter;
use crate::rollout::driver::Driver;
use crate::rollout::{Machine, Settings};

pub async fn run(cli: Cli, reporter: &Reporter) -> Result<Exit, Failure> {
    let mut interrupts = Interrupts::install()
        .map_err(|e| Failure::usage(format!("cannot install signal handlers: {e}")))?;
    let Some(service) = cli.service.clone() else {
        return Err(Failure::usage(
            "name the service to roll, e.g. `docker reroll web`",
        ));
    };
    let mut docker = Docker::new(cli.globals(), cli.project_args());

    // Known before Compose answers when given by -p or COMPOSE_PROJECT_NAME: then the lock is
    // taken first and the containers are listed while Compose reads the project.
    let named = cli
        .project_name
        .clone()
        .or_else(|| std::env::var("COMPOSE_PROJECT_NAME").ok())
        .filter(|name| !name.is_empty());
    let early_lock = match &named {
        Some(project) => Some(lock(&docker, project, &service)?),
        None => None,
    };
    let (config, early_containers) = tokio::join!(read_config(&docker), async {
        match &named {
            Some(project) => Some(docker.containers(project, &service).await),
            None => None,
        }
    });
    let config = match config {
        Ok(config) => config,
        // Was it Compose that is missing, or the project that is wrong?
        Err(failure) => match detect_compose(&docker).await? {
            ComposeCli::Plugin | ComposeCli::PluginBinary(_) => return Err(failure),
            standalone => {
                docker.use_compose(standalone);
                read_config(&docker).await?
            }
        },
    };
    let Some(service_config) = config.services.get(&service).cloned() else {
        let known: Vec<&str> = config.services.keys().map(String::as_str).collect();
        return Err(Failure::usage(format!(
            "no service '{service}' in project '{}' (services: {}): check the name, or pass -f for another compose file",
            config.name,
            known.join(", ")
        )));
    };
    let project = config.name.clone();
    let (state, _lock) = match early_lock {
        Some(early) if named.as_deref() == Some(project.as_str()) => early,
        _ => lock(&docker, &project, &service)?,
    };
    let journal_file = state.journal();

    let containers = match early_containers {
        Some(listed) if named.as_deref() == Some(project.as_str()) => listed,
        _ => docker.containers(&project, &service).await,
    }
    .map_err(unreachable_or("listing the service's containers"))?;
    let config_hash = current_hash(&docker, &service, &containers).await?;

    let snapshot = Snapshot {
        project: project.clone(),
        service: service.clone(),
        config: service_config,
        config_hash,
        containers,
        journal: journal_file.load(),
    };
    let plan = plan(&snapshot).map_err(Failure::usage)?;
    if cli.dry_run {
        reporter.plan(&service, &project, &plan);
        return Ok(Exit::Done);
    }
    let events = docker
        .subscribe(&project, &service)
        .map_err(|e| Failure::usage(format!("cannot run docker events: {e}")))?;
    if let Some(signal) = interrupts.pending() {
        let exit = match signal {
            crate::rollout::machine::Signal::Interrupt => Exit::Interrupted,
            crate::rollout::machine::Signal::Terminate => Exit::Terminated,
        };
        return Err(Failure::new(exit, "interrupted before any change"));
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
    reporter.start(&service, &project, &detail);
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

    let names: BTreeMap<String, String> = snapshot
        .containers
        .iter()
        .map(|c| (c.id.clone(), c.name.clone()))
        .collect();
    let known = snapshot.containers.iter().map(|c| c.id.clone()).collect();
    let settings = Settings {
        healthcheck_timeout: cli.healthcheck_timeout,
        wait_without_healthcheck: cli.wait,
        wait_after_healthy: cli.wait_after_healthy,
        pre_stop: cli.pre_stop_cmd.is_some(),
        wait_until_unhealthy: cli.pre_stop_wait_until_unhealthy,
        drain_timeout: cli.drain_timeout,
        wait_after_unhealthy: cli.wait_after_unhealthy,
    };
    let mut machine = Machine::new(plan, settings);
    let mut driver = Driver::new(
        &docker,
        project,
        service,
        cli.pre_stop_cmd.clone(),
        names,
        known,
        reporter,
        &mut interrupts,
        events,
    );
    let (outcome, times) = driver.drive(&mut machine).await;
    if outcome.exit != Exit::Incomplete {
        journal_file.remove();
    }
    reporter.finish(outcome.exit, &outcome.message, &times);
    Ok(outcome.exit)
}

/// The config hash new containers get, asked of Compose only when it decides something: when the
/// running containers carry two different hashes (an interrupted rollout). Otherwise all of them
/// are rolled, whatever their hash.
async fn current_hash(
    docker: &Docker,
    service: &str,
    containers: &[Container],
) -> Result<String, Failure> {
    let running: BTreeSet<&str> = containers
        .iter()
        .filter(|c| c.is_running())
        .map(|c| c.config_hash.as_str())
        .collect();
    if running.len() < 2 {
        return Ok(running.into_iter().next().unwrap_or_default().to_owned());
    }
    let output = docker
        .run(docker.compose(["config", "--hash", service]))
        .await
        .map_err(unreachable_or("asking Compose for the config hash"))?;
    Ok(compose::parse_hash(&output.stdout, service).unwrap_or_default())
}

fn lock(docker: &Docker, project: &str, service: &str) -> Result<(StateDir, Lock), Failure> {
    let state = StateDir::new(&docker.globals().endpoint(), project, service);
    let lock = state.lock().map_err(|holder| {
        Failure::usage(format!(
            "another docker-reroll ({holder}) is rolling service '{service}' of project '{project}': \
             wait for it to finish, then run again"
        ))
    })?;
    Ok((state, lock))
}

async fn detect_compose(docker: &Docker) -> Result<ComposeCli, Failure> {
    match docker
        .run(docker.docker(["compose", "version", "--short"]))
        .await
    {
        Ok(output) if compose::major_version(&output.stdout).is_some_and(|v| v >= 2) => {
            return Ok(ComposeCli::Plugin);
        }
        Err(error) if error.is_daemon_unreachable() || error.stderr().contains("context") => {
            return Err(unreachable_or("running docker")(error));
        }
        _ => {}
    }
    match docker.run(docker.standalone_compose_version()).await {
        Ok(output) => match compose::major_version(&output.stdout) {
            Some(major) if major >= 2 => Ok(ComposeCli::Standalone),
            _ => Err(Failure::usage(format!(
                "only Compose v1 (docker-compose {}) was found, which has no config hashes and no JSON config: \
                 install Compose v2 (the docker compose plugin)",
                output.stdout.trim()
            ))),
        },
        Err(_) => Err(Failure::usage(
            "Docker Compose was not found: install Compose v2 (the docker compose plugin, or a docker-compose v2 binary on PATH)",
        )),
    }
}

async fn read_config(docker: &Docker) -> Result<ProjectConfig, Failure> {
    let output = docker
        .run(docker.compose(["config", "--format", "json"]))
        .await
        .map_err(|error| {
            let why = error.stderr().lines().last().unwrap_or("").trim().to_owned();
            Failure::usage(format!(
                "Compose cannot read the project: {why}: fix the compose file, or point at it with -f / --project-directory"
            ))
        })?;
    compose::parse_config(&output.stdout).map_err(|e| {
        Failure::usage(format!(
            "cannot understand `docker compose config --format json`: {e}"
        ))
    })
}

fn unreachable_or(doing: &'static str) -> impl Fn(DockerError) -> Failure {
    move |error| {
        if error.is_daemon_unreachable() {
            let why = error
                .stderr()
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_owned();
            Failure::usage(format!(
                "cannot reach the Docker daemon ({why}): start it, or check DOCKER_HOST / --host / --context"
            ))
        } else {
            Failure::usage(format!("{doing} failed: {error}"))
        }
    }
}

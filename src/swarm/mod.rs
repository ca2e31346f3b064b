//! `--swarm`: the project runs as a Swarm stack, and the engine rolls it. The tool reads the
//! project, resolves each service's settings as for a Compose rollout, and deploys the stack with
//! an override that makes Swarm roll the way this tool would (`update_override`); then it waits
//! until every service's update is over and reports it with the same exit codes and JSON.

pub mod update_override;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::time::Instant;

use crate::cli::Cli;
use crate::docker::{Docker, DockerError, unreachable_or};
use crate::exit::{Exit, Failure};
use crate::interrupt::Interrupts;
use crate::model::container::Healthcheck;
use crate::model::project::ProjectConfig;
use crate::model::signal::Signal;
use crate::model::swarm::{Progress, UpdateStatus, replicas_converged};
use crate::report::Reporter;
use crate::service::project::service_config;
use crate::service_settings::service_settings;
use update_override::{monitor, update_override};

const POLL: Duration = Duration::from_millis(500);
/// A service no update started for is judged by its replicas only after this long: the
/// orchestrator starts an update a moment after the deploy returns.
const GRACE: Duration = Duration::from_secs(3);

/// Rolls the stack `config` (the project as Compose read it) on the Swarm `docker` reaches.
pub async fn run(
    cli: &Cli,
    config: ProjectConfig,
    docker: &Docker,
    reporter: &Reporter,
    interrupts: &mut Interrupts,
) -> Result<Exit, Failure> {
    let project = config.name.as_str();
    let selected: Vec<String> = if cli.services.is_empty() {
        config.services.keys().cloned().collect()
    } else {
        cli.services.clone()
    };
    let files = compose_files(cli)?;
    let mut settings = Vec::new();
    for service in &selected {
        let resolved = service_settings(
            service,
            &service_config(&config, service)?,
            &cli.flag_settings(),
        )
        .map_err(Failure::usage)?;
        if resolved.skip {
            reporter.skipped(service, "x-reroll skip: true");
            continue;
        }
        settings.push((service.clone(), resolved.resolved.settings));
    }
    let names: Vec<String> = settings
        .iter()
        .map(|(service, _)| format!("{project}_{service}"))
        .collect();
    let before = statuses(docker, &names).await?;
    let planned: Vec<_> = settings
        .into_iter()
        .zip(&names)
        .map(|((service, settings), name)| {
            let healthcheck = before.get(name).and_then(|(_, check)| *check);
            let monitor = monitor(&settings, healthcheck.as_ref());
            (service, settings, monitor)
        })
        .collect();
    let override_json = update_override(&planned);
    for (service, settings, monitor) in &planned {
        reporter.info(&format!(
            "{service}: Swarm rolls it {}, {}, failure action {}, monitor {}",
            settings.order.name(),
            match settings.parallelism {
                0 => "all tasks at once".to_owned(),
                n => format!("{n} task(s) at a time"),
            },
            settings.failure_action.name(),
            crate::duration::show(*monitor)
        ));
    }
    if cli.dry_run {
        reporter.info(&format!(
            "dry run: would deploy stack {project} from {} with the override {override_json}",
            files
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
        return Ok(Exit::Done);
    }
    let _engine_lock =
        crate::engine_lock::acquire(docker, project, cli.lock_wait, reporter, interrupts).await?;
    let scratch = std::env::temp_dir().join(format!("docker-reroll-swarm-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)
        .map_err(|e| Failure::usage(format!("cannot create {}: {e}", scratch.display())))?;
    let override_file = scratch.join("update-config.yaml");
    std::fs::write(&override_file, override_json.to_string())
        .map_err(|e| Failure::usage(format!("cannot write {}: {e}", override_file.display())))?;
    let mut all_files = files;
    all_files.push(override_file);
    reporter.start(
        &selected.join(", "),
        project,
        "handed to Swarm: docker stack deploy",
    );
    let deployed = docker.run(docker.stack_deploy(&all_files, project)).await;
    let _ = std::fs::remove_dir_all(&scratch);
    deployed.map_err(|error| {
        let why = error.last_stderr_line();
        Failure::usage(format!(
            "docker stack deploy failed, nothing was changed: {why}: is this engine a Swarm \
             manager, and the project a stack?"
        ))
    })?;
    let limit = planned
        .iter()
        .map(|(service, settings, monitor)| {
            let replicas = config.services[service].replicas.unwrap_or(1).max(1);
            (*monitor + settings.delay + Duration::from_secs(60)) * replicas
        })
        .sum::<Duration>();
    let exit = converge(
        docker, project, &names, &before, limit, reporter, interrupts,
    )
    .await?;
    let message = match exit {
        Exit::Done => "Swarm rolled every service".to_owned(),
        Exit::RolledBack => "Swarm rolled back: the old tasks serve".to_owned(),
        other => format!("Swarm stopped the rollout: {}", other.meaning()),
    };
    reporter.finish(exit, &message, &[]);
    Ok(exit)
}

/// Waits until every service's update is over; a signal asks Swarm to roll back.
async fn converge(
    docker: &Docker,
    project: &str,
    names: &[String],
    before: &BTreeMap<String, (UpdateStatus, Option<Healthcheck>)>,
    limit: Duration,
    reporter: &Reporter,
    interrupts: &mut Interrupts,
) -> Result<Exit, Failure> {
    let started = Instant::now();
    let mut over: BTreeMap<String, Exit> = BTreeMap::new();
    let mut signal: Option<Signal> = None;
    while over.len() < names.len() {
        if started.elapsed() > limit {
            reporter.warning(&format!(
                "Swarm did not finish within {}: see docker service ps",
                crate::duration::show(limit)
            ));
            return Ok(Exit::Incomplete);
        }
        tokio::time::sleep(POLL).await;
        let now = statuses(docker, names).await?;
        let replicas = docker
            .run(docker.stack_replicas(project))
            .await
            .map(|o| o.stdout)
            .unwrap_or_default();
        let replicas: BTreeMap<&str, &str> = replicas
            .lines()
            .filter_map(|line| line.split_once('\t'))
            .collect();
        if signal.is_none()
            && let Some(received) = interrupts.pending()
        {
            signal = Some(received);
            reporter.warning("stopping: asking Swarm to roll back what it is updating");
            for name in names.iter().filter(|n| !over.contains_key(*n)) {
                let _ = docker.run(docker.service_rollback(name)).await;
            }
        }
        for name in names {
            if over.contains_key(name) {
                continue;
            }
            let Some((status, _)) = now.get(name) else {
                continue;
            };
            let progress = status.progress(before.get(name).map(|(s, _)| s));
            let converged = replicas
                .get(name.as_str())
                .is_some_and(|r| replicas_converged(r));
            let exit = match progress {
                Progress::Over(exit) => exit,
                Progress::NotStarted if started.elapsed() > GRACE && converged => Exit::Done,
                _ => continue,
            };
            reporter.swarm_service(name, exit, &status.state, &status.message);
            over.insert(name.clone(), exit);
        }
    }
    if let Some(signal) = signal {
        return Ok(signal.exit());
    }
    let worst = [Exit::Incomplete, Exit::RolledBack, Exit::Partial]
        .into_iter()
        .find(|bad| over.values().any(|exit| exit == bad));
    Ok(worst.unwrap_or(Exit::Done))
}

/// Each existing service's update status and healthcheck (a new service has none).
async fn statuses(
    docker: &Docker,
    names: &[String],
) -> Result<BTreeMap<String, (UpdateStatus, Option<Healthcheck>)>, Failure> {
    let stdout = match docker.run(docker.service_status(names)).await {
        Ok(output) => output.stdout,
        // Some services do not exist yet: the others are printed all the same.
        Err(DockerError::Failed { stdout, stderr, .. }) if stderr.contains("o such service") => {
            stdout
        }
        Err(error) => return Err(unreachable_or("reading the stack's services")(error)),
    };
    Ok(stdout
        .lines()
        .filter_map(|line| {
            let mut fields = line.splitn(3, '\t');
            let name = fields.next()?.to_owned();
            let status = serde_json::from_str(fields.next()?).unwrap_or_default();
            let healthcheck = fields.next().and_then(parse_healthcheck);
            Some((name, (status, healthcheck)))
        })
        .collect())
}

fn parse_healthcheck(json: &str) -> Option<Healthcheck> {
    let value: serde_json::Value = serde_json::from_str(json).ok()?;
    let test = value.get("Test")?.as_array()?;
    if test.first().and_then(|t| t.as_str()) == Some("NONE") {
        return None;
    }
    let nanos = |key: &str| value.get(key).and_then(|v| v.as_u64()).unwrap_or(0);
    Some(Healthcheck::with_defaults(
        nanos("Interval"),
        nanos("Timeout"),
        nanos("StartPeriod"),
        nanos("Retries") as u32,
    ))
}

/// The compose files the stack is deployed from: `-f` as given, else Compose's own lookup in the
/// project directory (the first of its file names, and its override file).
fn compose_files(cli: &Cli) -> Result<Vec<PathBuf>, Failure> {
    if !cli.files.is_empty() {
        return Ok(cli.files.clone());
    }
    let dir = cli
        .project_directory
        .clone()
        .unwrap_or_else(|| PathBuf::from("."));
    let first = |names: [&str; 4]| {
        names
            .iter()
            .map(|name| dir.join(name))
            .find(|path| Path::new(path).is_file())
    };
    let main = first([
        "compose.yaml",
        "compose.yml",
        "docker-compose.yaml",
        "docker-compose.yml",
    ])
    .ok_or_else(|| {
        Failure::usage(format!(
            "no compose file in {}: give it with -f for docker stack deploy",
            dir.display()
        ))
    })?;
    let mut files = vec![main];
    files.extend(first([
        "compose.override.yaml",
        "compose.override.yml",
        "docker-compose.override.yaml",
        "docker-compose.override.yml",
    ]));
    Ok(files)
}

//! `docker reroll promote|abort|status SERVICE`: talk to a canary rollout running in another
//! process through the files of `control`; and `rollback SERVICE`.

use std::time::Duration;

use crate::canary::args::Command;
use crate::canary::control::{ControlFiles, Status};
use crate::canary::history::{History, pin, rollback_project};
use crate::cli::Cli;
use crate::docker::Docker;
use crate::docker::unreachable_or;
use crate::exit::{Exit, Failure};
use crate::interrupt::Interrupts;
use crate::lock::StateDir;
use crate::model::canary::Control;
use crate::report::Reporter;
use crate::service::ServiceRollout;
use crate::service::project::{lock, read_config};
use crate::service::project::{read_project, service_config};
use crate::service_settings::{ServiceSettings, service_settings};

/// How long `promote` and `abort` wait for the rollout to take their request.
const HEARD_WITHIN: Duration = Duration::from_secs(10);

/// Runs `command`; the project is `named` (-p, COMPOSE_PROJECT_NAME) or Compose's.
pub async fn run(
    command: &Command,
    docker: &mut Docker,
    named: Option<String>,
    reporter: &Reporter,
) -> Result<Exit, Failure> {
    let service = command.service();
    let project = match named {
        Some(project) => project,
        None => {
            let config = read_project(docker).await?;
            service_config(&config, service)?;
            config.name
        }
    };
    let project = project.as_str();
    let state = &StateDir::new(&docker.globals().endpoint(), project, service);
    let files = ControlFiles::new(state);
    // A rollout holds the lock while it runs: taking it means none does.
    let running = state
        .holder()
        .map_err(|error| Failure::usage(error.explain(project, service)))?;
    let status = files.read_status().filter(|_| running.is_some());
    match command {
        Command::Status { .. } => {
            let text = match (&running, &status) {
                (None, _) => match state.journal().load() {
                    Some(journal) => format!(
                        "{service} ({project}): no rollout running, but one was interrupted with \
                         old and new containers side by side ({} old); docker reroll {service} \
                         resumes it",
                        journal.old.len()
                    ),
                    None => format!("{service} ({project}): no rollout running"),
                },
                (Some(holder), None) => {
                    format!(
                        "{service} ({project}): a rollout is running ({holder}), not paused at a step"
                    )
                }
                (
                    Some(holder),
                    Some(Status {
                        standing: status, ..
                    }),
                ) => {
                    let left = match status.remaining {
                        Some(left) => format!("{left:.0}s left"),
                        None => "waiting for docker reroll promote (or abort)".to_owned(),
                    };
                    let probe = if status.probe.requests > 0 {
                        format!(
                            "; probe: {} of {} failed",
                            status.probe.failed(),
                            status.probe.requests
                        )
                    } else {
                        String::new()
                    };
                    let at = if status.stage == "bake" {
                        format!(
                            "baking with {} new container(s), the old ones kept stopped",
                            status.new
                        )
                    } else {
                        format!(
                            "step {} of {}: {} new next to {} old (expected share {:.0}%)",
                            status.step,
                            status.steps,
                            status.new,
                            status.old,
                            status.expected_share * 100.0
                        )
                    };
                    format!(
                        "{service} ({project}): {at}, {:.0}s in, {left}{probe} ({holder})",
                        status.elapsed
                    )
                }
            };
            reporter.info(&text);
            Ok(Exit::Done)
        }
        Command::Rollback { .. } => Err(Failure::usage(
            "internal error: rollback is run by rollback()",
        )),
        Command::Promote { .. } | Command::Abort { .. } => {
            let control = if matches!(command, Command::Promote { .. }) {
                Control::Promote
            } else {
                Control::Abort
            };
            if status.is_none() {
                let why = match running {
                    Some(holder) => {
                        format!("its rollout ({holder}) is not paused at a canary step")
                    }
                    None => "no rollout of it is running".to_owned(),
                };
                return Err(Failure::usage(format!(
                    "cannot {} {service} ({project}): {why}; docker reroll status {service} says where it stands",
                    control.name()
                )));
            }
            files.request(control).map_err(|e| {
                Failure::usage(format!("cannot write the {} request: {e}", control.name()))
            })?;
            let deadline = tokio::time::Instant::now() + HEARD_WITHIN;
            while files.pending() {
                if tokio::time::Instant::now() > deadline {
                    let _ = files.take_request();
                    return Err(Failure::usage(format!(
                        "the rollout of {service} did not take the {} request within {}s; nothing was changed",
                        control.name(),
                        HEARD_WITHIN.as_secs()
                    )));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let done = match control {
                Control::Promote => "promoted: the rollout goes on",
                Control::Abort => "aborted: the rollout rolls back (it exits 1)",
            };
            reporter.info(&format!("{service} ({project}): {done}"));
            Ok(Exit::Done)
        }
    }
}

/// `docker reroll rollback SERVICE`: the recorded previous version, its image pinned, rolled out
/// as any new version is (the flags given apply; the drain and proxy settings come from the
/// current file's `x-reroll:`).
pub async fn rollback(
    cli: &Cli,
    mut docker: Docker,
    service: &str,
    reporter: &Reporter,
    interrupts: &mut Interrupts,
) -> Result<Exit, Failure> {
    let current = read_project(&mut docker).await?;
    let current_service = service_config(&current, service)?;
    let project = current.name.as_str();
    let (state, _lock) = lock(&docker, project, service)?;
    // A rollback is a rollout: kept apart from other machines' runs like any other.
    let _engine_lock = if cli.dry_run {
        None
    } else {
        crate::engine_lock::acquire(&docker, project, cli.lock_wait, reporter, interrupts).await?
    };
    let history = History::new(&state);
    let previous = history.previous().ok_or_else(|| {
        Failure::usage(format!(
            "no previous version of {service} ({project}) is recorded: docker reroll records the \
             version it replaces from its second successful rollout of the service on"
        ))
    })?;
    let pinned = pin(project, service);
    docker.run(docker.image_id(&pinned)).await.map_err(|_| {
        Failure::usage(format!(
            "the previous version's image {pinned} is gone (removed by hand?): cannot roll back; \
             deploy the version you want with docker reroll {service}"
        ))
    })?;
    let file = state.file("rollback.json");
    let definition = rollback_project(&previous, service, &pinned).map_err(Failure::usage)?;
    std::fs::write(&file, definition.to_string())
        .map_err(|e| Failure::usage(format!("cannot write {}: {e}", file.display())))?;
    let mut previous_docker = Docker::new(
        cli.globals(),
        vec![
            "--file".into(),
            file.display().to_string(),
            "--project-name".into(),
            project.to_owned(),
        ],
    );
    crate::engine::configure(cli.engine, &mut previous_docker);
    let config = read_config(&previous_docker).await?;
    let mut service_config = service_config(&config, service)?;
    service_config.x_reroll = current_service.x_reroll;
    let ServiceSettings { resolved, .. } =
        service_settings(service, &service_config, &cli.flag_settings()).map_err(Failure::usage)?;
    let containers = previous_docker
        .containers(project, service)
        .await
        .map_err(unreachable_or("listing the service's containers"))?;
    reporter.info(&format!(
        "rolling {service} back to the version before its last rollout (config hash {}, image {})",
        crate::template::short_id(&previous.config_hash),
        pinned
    ));
    let rollout = ServiceRollout::named(
        &previous_docker,
        &config,
        service,
        service_config,
        resolved,
        cli.dry_run,
    );
    rollout.roll(&state, containers, reporter, interrupts).await
}

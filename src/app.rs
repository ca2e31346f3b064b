//! The top of a run: one service named is rolled with [`ServiceRollout`]; none or several go to
//! `stack`, which decides which services changed and rolls each the same way. Read → plan →
//! apply; nothing changes before the plan is accepted, and every refusal before that is exit 2.

use crate::cli::Cli;
use crate::docker::{Docker, unreachable_or};
use crate::exit::{Exit, Failure};
use crate::interrupt::Interrupts;
use crate::orphans::Orphans;
use crate::report::Reporter;
use crate::service::ServiceRollout;
use crate::service::project::{
    fall_back_to_standalone_compose, follow_engine_key, lock, read_config, service_config,
};
use crate::service_settings::{ServiceSettings, service_settings};

pub async fn run(cli: Cli, reporter: &Reporter) -> Result<Exit, Failure> {
    let mut interrupts = Interrupts::install()
        .map_err(|e| Failure::usage(format!("cannot install signal handlers: {e}")))?;
    let mut docker = Docker::new(cli.globals(), cli.project_args());
    crate::engine::configure(cli.engine, &mut docker); // Podman support
    if let Some(command) = &cli.command {
        let named = cli
            .project_name
            .clone()
            .or_else(|| std::env::var("COMPOSE_PROJECT_NAME").ok())
            .filter(|name| !name.is_empty());
        if let crate::canary::args::Command::Rollback { service } = command {
            return crate::canary::commands::rollback(
                &cli,
                docker,
                service,
                reporter,
                &mut interrupts,
            )
            .await;
        }
        return crate::canary::commands::run(command, &mut docker, named, reporter).await;
    }
    if cli.canary.any() && cli.services.len() != 1 {
        return Err(Failure::usage(
            "canary settings (--steps, --probe, --bake, …) roll one service: name it, e.g. \
             docker reroll --steps 1,50% web",
        ));
    }
    match cli.services.as_slice() {
        [service] => roll_named(&cli, &mut docker, service, reporter, &mut interrupts).await,
        _ => crate::stack::run(&cli, &mut docker, reporter, &mut interrupts).await,
    }
}

/// `docker reroll web`: one named service, rolled whether it changed or not (a rebuilt image under
/// the same tag must roll).
async fn roll_named(
    cli: &Cli,
    docker: &mut Docker,
    service: &str,
    reporter: &Reporter,
    interrupts: &mut Interrupts,
) -> Result<Exit, Failure> {
    // Known before Compose answers when given by -p or COMPOSE_PROJECT_NAME: then the lock is
    // taken first and the containers are listed while Compose reads the project.
    let named = cli
        .project_name
        .clone()
        .or_else(|| std::env::var("COMPOSE_PROJECT_NAME").ok())
        .filter(|name| !name.is_empty());
    let mut early_lock = match &named {
        Some(project) => Some(lock(docker, project, service)?),
        None => None,
    };
    let (config, mut early_containers) = tokio::join!(read_config(docker), async {
        match &named {
            Some(project) => Some(docker.containers(project, service).await),
            None => None,
        }
    });
    let mut config = match config {
        Ok(config) => config,
        Err(failure) => fall_back_to_standalone_compose(docker, failure).await?,
    };
    let mut service_config = service_config(&config, service)?;
    let mut settings =
        service_settings(service, &service_config, &cli.flag_settings()).map_err(Failure::usage)?;
    if follow_engine_key(docker, [(service, service_config.x_reroll.as_ref())])? {
        // Another engine: what was read and listed through the first one does not count.
        (early_lock, early_containers) = (None, None);
        config = read_config(docker).await?;
        service_config = crate::service::project::service_config(&config, service)?;
        settings = service_settings(service, &service_config, &cli.flag_settings())
            .map_err(Failure::usage)?;
    }
    let ServiceSettings { skip, resolved } = settings;
    if skip {
        reporter.skipped(service, "x-reroll skip: true");
        return Ok(Exit::Done);
    }
    let canary = crate::canary::args::resolve(
        service,
        &cli.canary,
        service_config.x_reroll.as_ref(),
        &resolved.settings,
        resolved.proxy.as_ref().map(|proxy| proxy.kind),
    )
    .map_err(Failure::usage)?;
    let project = config.name.clone();
    let (state, _lock) = match early_lock {
        Some(early) if named.as_deref() == Some(project.as_str()) => early,
        _ => lock(docker, &project, service)?,
    };
    let docker: &Docker = docker;
    let containers = async {
        match early_containers {
            Some(listed) if named.as_deref() == Some(project.as_str()) => listed,
            _ => docker.containers(&project, service).await,
        }
        .map_err(unreachable_or("listing the service's containers"))
    };
    // One service named: orphans are only looked for when asked to remove them (a stack run
    // mentions them), which saves a project-wide listing at startup.
    let orphans = async {
        if cli.remove_orphans {
            Orphans::find(docker, &config, true).await
        } else {
            Ok(Orphans::unknown())
        }
    };
    let (containers, orphans) = tokio::join!(containers, orphans);
    let (containers, orphans) = (containers?, orphans?);
    let mut rollout = ServiceRollout::named(
        docker,
        &config,
        service,
        service_config,
        resolved,
        cli.dry_run,
    );
    rollout.canary = canary;
    let exit = rollout
        .roll(&state, containers, reporter, interrupts)
        .await?;
    let interrupted = interrupts.received().is_some();
    Ok(orphans
        .settle(exit, interrupted, cli.dry_run, docker, reporter)
        .await)
}

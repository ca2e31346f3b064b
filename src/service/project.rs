//! The project as Compose resolves it, which Compose there is, and the per-service lock.

use crate::docker::command::ComposeCli;
use crate::docker::compose;
use crate::docker::{Docker, DockerError, unreachable_or};
use crate::exit::Failure;
use crate::lock::{Lock, StateDir};
use crate::model::project::{ProjectConfig, ServiceConfig};

/// Reads the project, falling back to a standalone `docker-compose` v2 when the plugin is missing.
pub async fn read_project(docker: &mut Docker) -> Result<ProjectConfig, Failure> {
    match read_config(docker).await {
        Ok(config) => Ok(config),
        Err(failure) => fall_back_to_standalone_compose(docker, failure).await,
    }
}

/// Follows the rolled services' `x-reroll: engine` (see [`crate::engine::follow_x_reroll`]):
/// true when the run now drives another engine, whose Compose must read the project again.
pub fn follow_engine_key<'a>(
    docker: &mut Docker,
    x_rerolls: impl IntoIterator<Item = (&'a str, Option<&'a serde_json::Value>)>,
) -> Result<bool, Failure> {
    let asked = crate::engine::x_reroll_engine(x_rerolls).map_err(Failure::usage)?;
    crate::engine::follow_x_reroll(asked, docker).map_err(Failure::usage)
}

/// Services with no Compose container would be a first deploy, unless the engine runs them in a
/// Swarm stack of the project's name (`docker stack deploy`): Compose would then start a second
/// copy beside Swarm's. One listing for all of them; none when every service has containers. An
/// engine that is no Swarm manager (or Podman) has no such service.
pub async fn refuse_swarm_services(
    docker: &Docker,
    project: &str,
    without_containers: &[&str],
) -> Result<(), Failure> {
    if without_containers.is_empty() {
        return Ok(());
    }
    let Ok(listed) = docker.run(docker.stack_replicas(project)).await else {
        return Ok(());
    };
    let in_swarm = |service: &str| {
        let name = format!("{project}_{service}");
        listed
            .stdout
            .lines()
            .any(|line| line.split('\t').next() == Some(name.as_str()))
    };
    match without_containers.iter().copied().find(|s| in_swarm(s)) {
        Some(service) => Err(Failure::usage(format!(
            "service '{service}' has no Compose container but runs as Swarm service \
             '{project}_{service}' (docker stack deploy): roll it with --swarm"
        ))),
        None => Ok(()),
    }
}

/// Was it Compose that is missing, or the project that is wrong?
pub async fn fall_back_to_standalone_compose(
    docker: &mut Docker,
    failure: Failure,
) -> Result<ProjectConfig, Failure> {
    match detect_compose(docker).await? {
        ComposeCli::Plugin | ComposeCli::PluginBinary(_) => Err(failure),
        standalone => {
            docker.use_compose(standalone);
            read_config(docker).await
        }
    }
}

pub fn service_config(config: &ProjectConfig, service: &str) -> Result<ServiceConfig, Failure> {
    config.services.get(service).cloned().ok_or_else(|| {
        let known: Vec<&str> = config.services.keys().map(String::as_str).collect();
        Failure::usage(format!(
            "no service '{service}' in project '{}' (services: {}): check the name, or pass -f for another compose file",
            config.name,
            known.join(", ")
        ))
    })
}

pub fn lock(docker: &Docker, project: &str, service: &str) -> Result<(StateDir, Lock), Failure> {
    let state = StateDir::new(&docker.globals().endpoint(), project, service);
    let lock = state
        .lock()
        .map_err(|error| Failure::usage(error.explain(project, service)))?;
    Ok((state, lock))
}

async fn detect_compose(docker: &Docker) -> Result<ComposeCli, Failure> {
    match docker.run(docker.compose_plugin_version()).await {
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
            // The fallback's fallback: Compose v1 (crate::compose_v1).
            Some(1) => Ok(ComposeCli::StandaloneV1),
            _ => Err(Failure::usage(format!(
                "a docker-compose of unknown version ({:?}) was found: install Compose v2 (the \
                 docker compose plugin)",
                output.stdout.trim()
            ))),
        },
        Err(_) => Err(Failure::usage(
            "Docker Compose was not found: install Compose v2 (the docker compose plugin, or a docker-compose v2 binary on PATH)",
        )),
    }
}

pub async fn read_config(docker: &Docker) -> Result<ProjectConfig, Failure> {
    if matches!(
        docker.compose_cli(),
        ComposeCli::StandaloneV1 | ComposeCli::PodmanCompose
    ) {
        return crate::compose_v1::read_config(docker).await;
    }
    // Compose's JSON keeps the services' `x-` fields only when not interpolating: asked in parallel.
    let (resolved, uninterpolated) = tokio::join!(
        docker.run(docker.config_json(true)),
        docker.run(docker.config_json(false)),
    );
    let unreadable = |error: DockerError| {
        let why = error.last_stderr_line();
        let fix = if why.contains("project name") {
            "give a valid name with -p or COMPOSE_PROJECT_NAME"
        } else {
            "fix the compose file, or point at it with -f / --project-directory"
        };
        Failure::usage(format!("Compose cannot read the project: {why}: {fix}"))
    };
    let not_understood = |e: serde_json::Error| {
        Failure::usage(format!(
            "cannot understand `docker compose config --format json`: {e}"
        ))
    };
    let mut config =
        compose::parse_config(&resolved.map_err(unreadable)?.stdout).map_err(not_understood)?;
    compose::attach_extensions(&mut config, &uninterpolated.map_err(unreadable)?.stdout)
        .map_err(not_understood)?;
    Ok(config)
}

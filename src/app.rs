//! One run: read (Compose, containers, an interrupted run's journal) → plan → apply. Nothing
//! changes before the plan is accepted; every refusal before that point is exit 2. One service
//! named: rolled here; none or several: `stack` decides which, then rolls each with
//! [`ServiceRollout`].

use std::collections::{BTreeMap, BTreeSet};

use crate::cli::Cli;
use crate::docker::command::ComposeCli;
use crate::docker::compose::{self, ProjectConfig, ServiceConfig};
use crate::docker::container::{Container, Health};
use crate::docker::{Docker, DockerError};
use crate::exit::{Exit, Failure};
use crate::interrupt::Interrupts;
use crate::journal::Journal;
use crate::lock::{Lock, StateDir};
use crate::model::routing::Target;
use crate::orphans::Orphans;
use crate::plan::{Batching, Plan, Snapshot, plan};
use crate::proxy::{Naming, Proxy, ProxyError};
use crate::report::Reporter;
use crate::rollout::Machine;
use crate::rollout::driver::Driver;
use crate::service_settings::{ProxySpec, Resolved, ServiceSettings, service_settings};

pub async fn run(cli: Cli, reporter: &Reporter) -> Result<Exit, Failure> {
    let mut interrupts = Interrupts::install()
        .map_err(|e| Failure::usage(format!("cannot install signal handlers: {e}")))?;
    let mut docker = Docker::new(cli.globals(), cli.project_args());
    crate::engine::configure(cli.engine, &mut docker); // Podman support
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
    let early_lock = match &named {
        Some(project) => Some(lock(docker, project, service)?),
        None => None,
    };
    let (config, early_containers) = tokio::join!(read_config(docker), async {
        match &named {
            Some(project) => Some(docker.containers(project, service).await),
            None => None,
        }
    });
    let config = match config {
        Ok(config) => config,
        Err(failure) => fall_back_to_standalone_compose(docker, failure).await?,
    };
    let service_config = service_config(&config, service)?;
    let ServiceSettings { skip, resolved } =
        service_settings(service, &service_config, &cli.flag_settings()).map_err(Failure::usage)?;
    if skip {
        reporter.skipped(service, "x-reroll skip: true");
        return Ok(Exit::Done);
    }
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
    let rollout = ServiceRollout {
        docker,
        project: &project,
        service,
        config: service_config,
        resolved,
        known_hash: None,
        dry_run: cli.dry_run,
        follow_replicas: false,
    };
    let exit = rollout
        .roll(&state, containers, reporter, interrupts)
        .await?;
    let interrupted = interrupts.received().is_some();
    Ok(orphans
        .settle(exit, interrupted, cli.dry_run, docker, reporter)
        .await)
}

/// Reads the project, falling back to a standalone `docker-compose` v2 when the plugin is missing.
pub async fn read_project(docker: &mut Docker) -> Result<ProjectConfig, Failure> {
    match read_config(docker).await {
        Ok(config) => Ok(config),
        Err(failure) => fall_back_to_standalone_compose(docker, failure).await,
    }
}

/// Was it Compose that is missing, or the project that is wrong?
async fn fall_back_to_standalone_compose(
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
}

impl ServiceRollout<'_> {
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
        let plan = plan(&snapshot).map_err(Failure::usage)?;
        Ok((snapshot, plan))
    }

    /// `--dry-run`'s account of the service: the plan and the settings it would run with.
    pub fn show_dry_run(&self, plan: &Plan, reporter: &Reporter) {
        reporter.plan(self.service, self.project, plan);
        reporter.settings(self.service, &self.resolved.sources);
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
                check_proxy(&proxy, service, &snapshot.containers).await?;
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

        let names: BTreeMap<String, String> = snapshot
            .containers
            .iter()
            .map(|c| (c.id.clone(), c.name.clone()))
            .collect();
        let known = snapshot.containers.iter().map(|c| c.id.clone()).collect();
        // Podman without systemd: the tool runs the health checks (crate::engine).
        let x_reroll = self.config.x_reroll.as_ref();
        let health_pump = crate::engine::health_pump(docker, &events, reporter, x_reroll).await;
        let mut machine = Machine::new(plan, self.resolved.settings);
        let undo_pre_stop = self.resolved.undo_pre_stop_cmd.clone();
        let mut driver = Driver::new(
            docker,
            project.to_owned(),
            service.to_owned(),
            self.resolved.pre_stop_cmd,
            names,
            known,
            reporter,
            interrupts,
            events,
        );
        driver.undo_pre_stop = undo_pre_stop;
        driver.proxy = proxy;
        driver.health_pump = health_pump;
        driver.targets = snapshot
            .containers
            .iter()
            .map(|c| (c.id.clone(), crate::rollout::driver::target_of(c)))
            .collect();
        let (outcome, times) = driver.drive(&mut machine).await;
        // Kept while old and new run side by side, so that the next run knows which is which.
        if outcome.exit != Exit::Incomplete && !machine.is_mixed() {
            journal_file.remove();
        }
        reporter.finish(outcome.exit, &outcome.message, &times);
        Ok(outcome.exit)
    }
}

async fn connect_proxy(
    spec: &ProxySpec,
    project: &str,
    service: &str,
    config: &ServiceConfig,
    docker: &Docker,
) -> Result<Proxy, Failure> {
    let naming = Naming {
        service,
        project,
        labels: &config.labels,
    };
    let url = match &spec.url {
        Some(url) => Some(locate_proxy(url, project, docker).await?),
        None => None,
    };
    Proxy::build(
        spec.kind,
        url.as_deref(),
        spec.service.as_deref(),
        spec.cmd.as_ref(),
        &naming,
        docker.globals().env(),
    )
    .map_err(Failure::usage)
}

/// `tcp://haproxy:9999` or `http://traefik:8080/`, where the host is a service of the project:
/// that service's running container, through the host port it publishes for that port, else its
/// address on its network. So a compose file can name its proxy without fixing a host port.
async fn locate_proxy(url: &str, project: &str, docker: &Docker) -> Result<String, Failure> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Ok(url.to_owned());
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let Some((host, port)) = authority.rsplit_once(':') else {
        return Ok(url.to_owned());
    };
    let names_a_service = !host.is_empty()
        && host != "localhost"
        && host.parse::<std::net::IpAddr>().is_err()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    let Ok(port) = port.parse::<u16>() else {
        return Ok(url.to_owned());
    };
    if !names_a_service {
        return Ok(url.to_owned());
    }
    let containers = docker
        .containers(project, host)
        .await
        .map_err(unreachable_or("listing the proxy's containers"))?;
    let Some(proxy) = containers.iter().find(|c| c.is_running()) else {
        return Err(Failure::usage(format!(
            "--proxy-url {url} names service '{host}', which has no running container in project \
             '{project}': start it (docker compose up -d {host}), or give the proxy's address"
        )));
    };
    let at = match proxy.published.iter().find(|(p, _)| *p == port) {
        Some((_, at)) => at.to_string(),
        None => match proxy.addresses.first() {
            Some(std::net::IpAddr::V6(ip)) => format!("[{ip}]:{port}"),
            Some(ip) => format!("{ip}:{port}"),
            None => {
                return Err(Failure::usage(format!(
                    "--proxy-url {url}: service '{host}' neither publishes port {port} nor has an \
                     address: publish it (ports: [\"127.0.0.1::{port}\"]) or give the proxy's address"
                )));
            }
        },
    };
    Ok(format!("{scheme}://{at}{path}"))
}

/// Before anything changes: the proxy answers, knows the service, and routes to its running
/// containers. Otherwise every wait on it would time out, so the settings must be wrong.
async fn check_proxy(
    proxy: &Proxy,
    service: &str,
    containers: &[Container],
) -> Result<(), Failure> {
    let serving: Vec<Target> = containers
        .iter()
        .filter(|c| c.is_running() && matches!(c.health, Health::Healthy | Health::None))
        .map(crate::rollout::driver::target_of)
        .collect();
    let ids: Vec<String> = serving.iter().map(|t| t.id.clone()).collect();
    let routing = match proxy.observe(&serving).await {
        Ok(routing) => routing,
        // Traefik knows a service only while it has servers: none on a first deploy.
        Err(ProxyError::UnknownService { .. }) if serving.is_empty() => return Ok(()),
        Err(error @ ProxyError::UnknownService { .. }) => {
            return Err(Failure::usage(format!(
                "{error}: give the proxy's name for service '{service}' with --proxy-service (or x-reroll proxy-service)"
            )));
        }
        Err(error @ ProxyError::Unreachable(_)) => {
            return Err(Failure::usage(format!(
                "{error}: check --proxy-url (or x-reroll proxy-url) and that the proxy runs"
            )));
        }
        Err(error) => {
            return Err(Failure::usage(format!(
                "{error}: check --proxy and --proxy-url"
            )));
        }
    };
    if !ids.is_empty() && routing.still_routed(&ids).is_empty() {
        return Err(Failure::usage(format!(
            "{} routes to none of the {} running container(s) of service '{service}' ({}): check \
             --proxy-service (or x-reroll proxy-service), and that the proxy reaches the containers' network",
            proxy.describe(),
            ids.len(),
            routing.shown
        )));
    }
    Ok(())
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
        .run(docker.compose(["config", "--hash", service]))
        .await
        .map_err(unreachable_or("asking Compose for the config hash"))?;
    Ok(compose::parse_hash(&output.stdout, service).unwrap_or_default())
}

pub fn lock(docker: &Docker, project: &str, service: &str) -> Result<(StateDir, Lock), Failure> {
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

async fn read_config(docker: &Docker) -> Result<ProjectConfig, Failure> {
    if matches!(
        docker.compose_cli(),
        ComposeCli::StandaloneV1 | ComposeCli::PodmanCompose
    ) {
        return crate::compose_v1::read_config(docker).await;
    }
    // Compose's JSON keeps the services' `x-` fields only when not interpolating: asked in parallel.
    let (resolved, uninterpolated) = tokio::join!(
        docker.run(docker.compose(["config", "--format", "json"])),
        docker.run(docker.compose(["config", "--format", "json", "--no-interpolate"])),
    );
    let unreadable = |error: DockerError| {
        let why = error.last_stderr_line();
        Failure::usage(format!(
            "Compose cannot read the project: {why}: fix the compose file, or point at it with -f / --project-directory"
        ))
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

pub fn unreachable_or(doing: &'static str) -> impl Fn(DockerError) -> Failure {
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

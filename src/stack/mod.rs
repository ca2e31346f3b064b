//! Stack rollouts: `docker reroll` (every service) or `docker reroll api web` (several). Decide
//! everything first (settings, order, which services changed, each plan, every lock), so a refusal
//! is exit 2 with nothing changed; then roll the changed services one after another with the
//! single-service rollout, and stop at the first that fails.

pub mod change;
pub mod order;

use std::collections::{BTreeMap, BTreeSet};

use crate::cli::Cli;
use crate::docker::Docker;
use crate::docker::command::ComposeCli;
use crate::docker::compose::parse_hashes;
use crate::docker::image::ImageId;
use crate::docker::unreachable_or;
use crate::exit::{Exit, Failure};
use crate::interrupt::Interrupts;
use crate::lock::{Lock, StateDir};
use crate::model::container::Container;
use crate::model::project::ProjectConfig;
use crate::orphans::Orphans;
use crate::report::{Reporter, StackOutcome};
use crate::service::ServiceRollout;
use crate::service::project::{
    follow_engine_key, lock, read_project, refuse_swarm_services, service_config,
};
use crate::service_settings::{ServiceSettings, service_settings};
use change::{Verdict, detect};
use order::rollout_order;

/// A service the stack will roll, its lock held from the decision to the end of the run.
struct Decided<'a> {
    rollout: ServiceRollout<'a>,
    state: StateDir,
    _lock: Lock,
}

pub async fn run(
    cli: &Cli,
    docker: &mut Docker,
    reporter: &Reporter,
    interrupts: &mut Interrupts,
) -> Result<Exit, Failure> {
    let mut config = read_project(docker).await?;
    let rolled: Vec<&String> = if cli.services.is_empty() {
        config.services.keys().collect()
    } else {
        cli.services.iter().collect()
    };
    let x_rerolls = rolled.into_iter().filter_map(|service| {
        let x_reroll = config.services.get(service)?.x_reroll.as_ref();
        Some((service.as_str(), x_reroll))
    });
    if follow_engine_key(docker, x_rerolls)? {
        config = read_project(docker).await?;
    }
    if docker.compose_cli() == &ComposeCli::PodmanCompose {
        // podman-compose has no `config --hash`, which tells the stack which services changed.
        return Err(Failure::usage(
            "podman-compose rolls one service at a time: name the service (docker reroll web), \
             or use Compose v2 against Podman's API socket for a whole stack",
        ));
    }
    let docker: &Docker = docker;
    let project = config.name.as_str();
    let _engine_lock = match cli.dry_run {
        true => None,
        false => {
            crate::engine_lock::acquire(docker, project, cli.lock_wait, reporter, interrupts)
                .await?
        }
    };
    let selected: BTreeSet<String> = if cli.services.is_empty() {
        config.services.keys().cloned().collect()
    } else {
        for service in &cli.services {
            service_config(&config, service)?;
        }
        cli.services.iter().cloned().collect()
    };
    let depends_on = config
        .services
        .iter()
        .map(|(name, service)| (name.clone(), service.depends_on.clone()))
        .collect();
    let order = rollout_order(&depends_on, &selected).map_err(Failure::usage)?;
    // Every service's settings, checked before the first line of output.
    let mut settings = BTreeMap::new();
    for service in &order {
        let ServiceSettings { skip, resolved } =
            service_settings(service, &config.services[service], &cli.flag_settings())
                .map_err(Failure::usage)?;
        settings.insert(service, (skip, resolved));
    }
    reporter.order(project, &order);

    let (hashes, images) = tokio::join!(config_hashes(docker), image_ids(docker, &config));
    let hashes = hashes?;
    let mut decided = Vec::new();
    let mut without_containers = Vec::new();
    for service in &order {
        let service_config = service_config(&config, service)?;
        let Some((skip, resolved)) = settings.remove(service) else {
            continue;
        };
        if skip {
            reporter.skipped(service, "x-reroll skip: true");
            continue;
        }
        if let Some(note) = crate::canary::args::ignored_in_a_stack(service, &service_config) {
            reporter.warning(&note);
        }
        let containers = list(docker, project, service).await?;
        if containers.is_empty() {
            without_containers.push(service.as_str());
        }
        let image = images.get(service).unwrap_or(&ImageId::Unknown);
        let hash = hashes.get(service).map(String::as_str);
        match (
            detect(&service_config, hash, image, &containers),
            cli.force_recreate,
        ) {
            (Verdict::NotWanted, _) => {
                reporter.skipped(service, "deploy.replicas is 0");
                continue;
            }
            (Verdict::Unchanged, false) => {
                reporter.skipped(service, "unchanged");
                continue;
            }
            (Verdict::Unchanged, true) => reporter.changed(service, "unchanged, --force-recreate"),
            (Verdict::Changed(why), _) => reporter.changed(service, &why),
        }
        let (state, lock) = lock(docker, project, service)?;
        let rollout = ServiceRollout {
            docker,
            project,
            service,
            config: service_config,
            resolved,
            known_hash: hash.map(str::to_owned),
            dry_run: cli.dry_run,
            follow_replicas: true,
            canary: None,
            project_json: Some(config.resolved_json.clone()),
        };
        // Planned now to refuse before the first service changes; planned again at its turn.
        let (_, plan) = rollout.plan(&state, containers).await?;
        if cli.dry_run {
            rollout.show_dry_run(&plan, reporter);
        }
        decided.push(Decided {
            rollout,
            state,
            _lock: lock,
        });
    }
    refuse_swarm_services(docker, project, &without_containers).await?;
    let orphans = Orphans::find(docker, &config, cli.remove_orphans).await?;
    if cli.dry_run {
        return Ok(orphans
            .settle(Exit::Done, false, true, docker, reporter)
            .await);
    }
    roll_in_order(decided, orphans, docker, reporter, interrupts).await
}

async fn roll_in_order(
    decided: Vec<Decided<'_>>,
    orphans: Orphans,
    docker: &Docker,
    reporter: &Reporter,
    interrupts: &mut Interrupts,
) -> Result<Exit, Failure> {
    let mut outcome = StackOutcome::default();
    let mut exit = Exit::Done;
    for Decided { rollout, state, .. } in decided {
        let service = rollout.service.to_owned();
        if exit != Exit::Done {
            outcome.not_started.push(service);
            continue;
        }
        reporter.tag_events_with(Some(&service));
        let listed = list(rollout.docker, rollout.project, &service).await;
        let result = match listed {
            Ok(containers) => rollout.roll(&state, containers, reporter, interrupts).await,
            Err(failure) => Err(failure),
        };
        match result {
            Ok(Exit::Done) => {
                outcome.finished.push(service);
                // A signal past a service's point of no return let it finish; the next must
                // not start.
                if let Some(signal) = interrupts.received() {
                    exit = signal.exit();
                }
            }
            Ok(Exit::Incomplete) => {
                exit = Exit::Incomplete;
                outcome.incomplete.push(service);
            }
            Ok(Exit::Partial) => {
                exit = Exit::Partial;
                outcome.partial.push(service);
            }
            Ok(failed) => {
                exit = failed;
                outcome.rolled_back.push(service);
            }
            // Refused before its first change (e.g. interrupted between two services).
            Err(failure) => {
                reporter.error(failure.exit, &failure.message);
                exit = failure.exit;
                outcome.not_started.push(service);
            }
        }
        reporter.tag_events_with(None);
    }
    let interrupted = interrupts.received().is_some();
    let exit = orphans
        .settle(exit, interrupted, false, docker, reporter)
        .await;
    reporter.stack_finish(exit, &outcome);
    Ok(exit)
}

async fn list(docker: &Docker, project: &str, service: &str) -> Result<Vec<Container>, Failure> {
    docker
        .containers(project, service)
        .await
        .map_err(unreachable_or("listing the service's containers"))
}

/// `docker compose config --hash '*'`: the hash new containers of each service would carry.
async fn config_hashes(docker: &Docker) -> Result<BTreeMap<String, String>, Failure> {
    let output = docker
        .run(docker.config_hash("*"))
        .await
        .map_err(unreachable_or("asking Compose for the config hashes"))?;
    Ok(parse_hashes(&output.stdout))
}

/// Each service's image id now, by its image reference (Compose names a `build:`-only service's
/// image PROJECT-SERVICE).
async fn image_ids(docker: &Docker, config: &ProjectConfig) -> BTreeMap<String, ImageId> {
    let references: BTreeMap<&String, String> = config
        .services
        .iter()
        .map(|(name, service)| {
            let reference = service
                .image
                .clone()
                .unwrap_or_else(|| format!("{}-{name}", config.name));
            (name, reference)
        })
        .collect();
    let unique: BTreeSet<String> = references.values().cloned().collect();
    let ids = docker
        .image_ids(&unique.into_iter().collect::<Vec<_>>())
        .await;
    references
        .into_iter()
        .map(|(name, reference)| {
            let id = ids.get(&reference).cloned().unwrap_or(ImageId::Unknown);
            (name.clone(), id)
        })
        .collect()
}

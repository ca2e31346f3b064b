//! Which engine the Docker CLI reaches, and what follows from it. Podman serves Docker's API
//! (`podman system service`), so Docker's CLI and Compose v2 work against it unchanged, but
//! Podman runs health checks only through systemd timers: without systemd, a container's health
//! stays `starting` until someone runs `podman healthcheck run`. Then docker-reroll runs them
//! itself while it waits ([`health_pump`]).
//!
//! Two routes to Podman. Docker's CLI and Compose against Podman's API socket: the engine is told
//! by `docker version`, whose server lists a `Podman Engine` component. Or Podman's own CLI with
//! podman-compose (`--engine podman`, or no `docker` on PATH but `podman`): `podman` takes
//! `docker`'s place in every call, podman-compose Compose's (`ComposeCli::PodmanCompose`).
//!
//! `--engine` / `DOCKER_REROLL_ENGINE` picks the route, `--health-runner` /
//! `DOCKER_REROLL_HEALTH_RUNNER` who runs the checks (default: the tool, on a Podman whose cgroup
//! manager is not systemd's).

pub mod health_pump;

use std::sync::Mutex;

use clap::{Args, ValueEnum};
use tokio::sync::OnceCell;

use crate::docker::Docker;
use crate::docker::command::ComposeCli;
use crate::docker::events::Subscription;
use crate::docker::podman::{on_path, podman_cli, podman_program};
pub use crate::model::policy::HealthRunner;
use crate::report::Reporter;
use health_pump::HealthPump;

/// The command-line options (flattened into the command line's `Cli`).
#[derive(Args, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EngineArgs {
    /// docker: Docker's CLI and Compose, against whatever engine serves their API (Podman's
    /// socket too: told by `docker version`); podman: Podman's own CLI and podman-compose; auto:
    /// the services' x-reroll engine, else docker, or podman when only `podman` is on PATH.
    #[arg(
        long,
        value_name = "ENGINE",
        value_enum,
        env = "DOCKER_REROLL_ENGINE",
        default_value = "auto",
        help_heading = "Engine"
    )]
    pub engine: EngineChoice,
    /// Who runs the containers' health checks while the tool waits on them: the engine, or the
    /// tool (`podman healthcheck run` at each healthcheck's interval); auto: the tool on a Podman
    /// without systemd, which runs none (overrides x-reroll health-runner) [default: auto].
    #[arg(
        long,
        value_name = "WHO",
        value_enum,
        env = "DOCKER_REROLL_HEALTH_RUNNER",
        help_heading = "Engine"
    )]
    pub health_runner: Option<HealthRunner>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum EngineChoice {
    #[default]
    Auto,
    Docker,
    Podman,
}

/// `x-reroll: health-runner:` of a service, already checked by `service_settings`.
fn x_reroll_runner(x_reroll: Option<&serde_json::Value>) -> Option<HealthRunner> {
    HealthRunner::parse(x_reroll?.get("health-runner")?.as_str()?)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Docker,
    Podman,
}

/// What `docker version` and `docker info` say about the endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Detected {
    engine: Engine,
    version: String,
    cgroup_driver: String,
}

static SETTINGS: Mutex<Option<EngineArgs>> = Mutex::new(None);
/// One endpoint per run: asked once, whatever the number of services rolled.
static DETECTED: OnceCell<Detected> = OnceCell::const_new();

/// The run's choices; call once, before any rollout. On the podman route, `docker` runs Podman's
/// CLI and Compose is podman-compose.
pub fn configure(args: EngineArgs, docker: &mut Docker) {
    *SETTINGS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(args);
    let podman_cli = match args.engine {
        EngineChoice::Podman => true,
        EngineChoice::Docker => false,
        EngineChoice::Auto => !on_path("docker") && on_path("podman"),
    };
    crate::docker::podman::use_podman_cli(podman_cli);
    if podman_cli {
        // A test's stand-in for `docker` stays.
        if std::env::var_os("DOCKER_REROLL_DOCKER").is_none() {
            docker.use_program(&podman_program());
        }
        docker.use_compose(ComposeCli::PodmanCompose);
    }
}

fn settings() -> EngineArgs {
    SETTINGS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .unwrap_or_default()
}

/// What the rolled services' `x-reroll: engine` asks for (values already checked by
/// `service_settings`); the services must agree, as one run drives one engine.
pub fn x_reroll_engine<'a>(
    x_rerolls: impl IntoIterator<Item = (&'a str, Option<&'a serde_json::Value>)>,
) -> Result<Option<EngineChoice>, String> {
    let mut asked: Option<(&str, EngineChoice)> = None;
    for (service, x_reroll) in x_rerolls {
        let Some(choice) = x_reroll
            .and_then(|x| x.get("engine")?.as_str())
            .and_then(|text| EngineChoice::from_str(text, false).ok())
            .filter(|choice| *choice != EngineChoice::Auto)
        else {
            continue;
        };
        match asked {
            Some((first, earlier)) if earlier != choice => {
                return Err(format!(
                    "services '{first}' and '{service}' ask for different engines in x-reroll \
                     engine: one run drives one engine; make them agree, or give --engine"
                ));
            }
            None => asked = Some((service, choice)),
            Some(_) => {}
        }
    }
    Ok(asked.map(|(_, choice)| choice))
}

/// Follows the compose file's `x-reroll: engine` when neither `--engine` nor
/// `DOCKER_REROLL_ENGINE` chose one: true when the run now drives another route (the project must
/// then be read again through it).
pub fn follow_x_reroll(asked: Option<EngineChoice>, docker: &mut Docker) -> Result<bool, String> {
    let args = settings();
    let Some(asked) = asked.filter(|_| args.engine == EngineChoice::Auto) else {
        return Ok(false);
    };
    let podman_now = podman_cli();
    match asked {
        EngineChoice::Podman if !podman_now => {
            if !on_path(&podman_program()) {
                return Err(
                    "x-reroll engine: podman, but `podman` is not on PATH: install Podman, or \
                     drop the key to use Docker"
                        .to_owned(),
                );
            }
            configure(
                EngineArgs {
                    engine: EngineChoice::Podman,
                    ..args
                },
                docker,
            );
            Ok(true)
        }
        EngineChoice::Docker if podman_now => Err(
            "x-reroll engine: docker, but `docker` is not on PATH: install Docker's CLI, or \
             give --engine podman"
                .to_owned(),
        ),
        _ => Ok(false),
    }
}

/// `Podman Engine` among the server's components; anything else (or no answer) is Docker.
fn parse_components(components: &str) -> Option<String> {
    components.lines().find_map(|line| {
        let (name, version) = line.split_once('=')?;
        (name.trim() == "Podman Engine").then(|| version.trim().to_owned())
    })
}

async fn detect(docker: &Docker) -> Detected {
    if podman_cli() {
        let info = docker.docker([
            "info",
            "--format",
            "{{.Host.CgroupManager}} {{.Version.Version}}",
        ]);
        let output = docker.run(info).await.map(|o| o.stdout).unwrap_or_default();
        let mut words = output.split_whitespace();
        let cgroup_driver = words.next().unwrap_or_default().to_owned();
        return Detected {
            engine: Engine::Podman,
            version: words.next().unwrap_or_default().to_owned(),
            cgroup_driver,
        };
    }
    let version = docker.docker([
        "version",
        "--format",
        "{{range .Server.Components}}{{.Name}}={{.Version}}\n{{end}}",
    ]);
    let podman = match docker.run(version).await {
        Ok(output) => parse_components(&output.stdout),
        Err(error) => {
            tracing::debug!("cannot tell the engine, taking it for Docker: {error}");
            None
        }
    };
    let Some(version) = podman else {
        return Detected {
            engine: Engine::Docker,
            version: String::new(),
            cgroup_driver: String::new(),
        };
    };
    let info = docker.docker(["info", "--format", "{{.CgroupDriver}}"]);
    let cgroup_driver = docker
        .run(info)
        .await
        .map(|output| output.stdout.trim().to_owned())
        .unwrap_or_default();
    Detected {
        engine: Engine::Podman,
        version,
        cgroup_driver,
    }
}

/// Starts running the health checks of the containers the driver watches, when the engine does
/// not run them itself (or when told to: the flag, else the service's `x-reroll:`), and says so;
/// `None` when the engine runs them.
pub async fn health_pump(
    docker: &Docker,
    events: &Subscription,
    reporter: &Reporter,
    x_reroll: Option<&serde_json::Value>,
) -> Option<HealthPump> {
    let args = settings();
    let runner = args
        .health_runner
        .or_else(|| x_reroll_runner(x_reroll))
        .unwrap_or_default();
    let why = match (runner, args.engine) {
        (HealthRunner::Engine, _) | (HealthRunner::Auto, EngineChoice::Docker) => return None,
        (HealthRunner::Tool, _) => "told to (health-runner tool)".to_owned(),
        (HealthRunner::Auto, _) => {
            let detected = DETECTED.get_or_init(|| detect(docker)).await;
            if detected.engine != Engine::Podman {
                return None;
            }
            let engine = if podman_cli() {
                format!("Podman {} (its own CLI, podman-compose)", detected.version)
            } else {
                format!(
                    "Podman {} (its API names a 'Podman Engine')",
                    detected.version
                )
            };
            if detected.cgroup_driver == "systemd" {
                reporter.info(&format!(
                    "engine: {engine}, with systemd: its own timers run the health checks \
                     (--health-runner tool if they do not)"
                ));
                return None;
            }
            format!(
                "engine: {engine}, cgroup driver '{}': Podman runs health checks only through \
                 systemd",
                if detected.cgroup_driver.is_empty() {
                    "unknown"
                } else {
                    &detected.cgroup_driver
                }
            )
        }
    };
    let pump = HealthPump::start(docker.clone(), events.injector());
    reporter.info(&format!(
        "{why}: docker-reroll runs the health checks of the containers it waits on itself \
         (`{}`) at each healthcheck's interval; --health-runner engine leaves them to the engine",
        pump.describe()
    ));
    if !pump.found() {
        reporter.warning(&format!(
            "`{}` is not on PATH: no health check can run, and the new containers cannot turn \
             healthy; install Podman's CLI here, or set DOCKER_REROLL_PODMAN to it",
            pump.program()
        ));
    }
    Some(pump)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x_reroll_can_say_who_runs_the_checks() {
        let x = serde_json::json!({"health-runner": "tool", "wait": "3s"});
        assert_eq!(x_reroll_runner(Some(&x)), Some(HealthRunner::Tool));
        assert_eq!(x_reroll_runner(None), None);
        assert_eq!(HealthRunner::parse("sometimes"), None);
    }

    #[test]
    fn the_rolled_services_must_agree_on_their_engine() {
        let podman = serde_json::json!({"engine": "podman"});
        let auto = serde_json::json!({"engine": "auto", "wait": "3s"});
        let docker = serde_json::json!({"engine": "docker"});
        type Services<'a> = Vec<(&'a str, Option<&'a serde_json::Value>)>;
        let cases: [(Services, Result<Option<EngineChoice>, &str>); 5] = [
            (vec![], Ok(None)),
            (vec![("web", None), ("db", Some(&auto))], Ok(None)),
            (
                vec![("web", Some(&podman)), ("db", None)],
                Ok(Some(EngineChoice::Podman)),
            ),
            (
                vec![("web", Some(&podman)), ("db", Some(&podman))],
                Ok(Some(EngineChoice::Podman)),
            ),
            (
                vec![("web", Some(&podman)), ("db", Some(&docker))],
                Err("'web' and 'db'"),
            ),
        ];
        for (services, expected) in cases {
            let got = x_reroll_engine(services.clone());
            match expected {
                Ok(choice) => assert_eq!(got, Ok(choice), "{services:?}"),
                Err(names) => assert!(
                    got.as_ref()
                        .is_err_and(|e| e.contains(names) && e.contains("--engine")),
                    "{services:?}: {got:?}"
                ),
            }
        }
    }

    #[test]
    fn podman_is_told_by_its_engine_component() {
        let podman = "Podman Engine=4.3.1\nConmon=conmon version 2.1.6\nEngine=4.3.1\n";
        assert_eq!(parse_components(podman), Some("4.3.1".to_owned()));
        let docker = "Engine=20.10.24+dfsg1\ncontainerd=1.6.20\nrunc=1.1.5\ndocker-init=0.19.0\n";
        assert_eq!(parse_components(docker), None);
        assert_eq!(parse_components(""), None);
    }
}

//! Runs the health checks of the containers a rollout waits on, for an engine that does not run
//! them itself (Podman without systemd): `podman healthcheck run ID` once per healthcheck
//! interval, each container on its own schedule, the first check one interval after it is
//! followed (as Docker runs the first one an interval after the start). Podman applies the
//! result (retries, start period) to `.State.Health`; after each check the pump reads the status
//! back and, when it changed, hands it to the driver as if `docker events` had said it (Podman's
//! own event carries no status).
//!
//! The driver tells it which containers it watches ([`HealthPump::follow`]), and none while it
//! does something else (asks the proxy, stops containers, verifies): a check that runs slowly on a
//! busy host then cannot turn a container that passed its gate unhealthy behind the tool's back.
//! Dropping the pump stops every check.

use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::{Instant, sleep_until, timeout};

use crate::docker::Docker;
use crate::docker::command::{detached, show};
use crate::docker::events::{Change, Event};
use crate::model::container::{Health, Healthcheck, State};

/// A check that outlives its own timeout by this much is given up on.
const GRACE: Duration = Duration::from_secs(5);

pub struct HealthPump {
    follow: watch::Sender<Vec<String>>,
    task: JoinHandle<()>,
    podman: Podman,
}

/// How to reach the engine with Podman's own CLI: the same endpoint as Docker's CLI.
#[derive(Clone, Debug)]
struct Podman {
    program: String,
    /// `--url`: the Docker endpoint, when it is an address Podman's remote client takes.
    url: Option<String>,
}

impl Podman {
    fn for_endpoint(docker: &Docker) -> Podman {
        let program = crate::docker::podman::podman_program();
        if crate::docker::podman::podman_cli() {
            return Podman { program, url: None };
        }
        // The endpoint every docker call uses, resolved once (flags over the environment).
        let host = match &docker.globals().endpoint {
            crate::docker::command::Endpoint::Host(host) => Some(host.clone()),
            _ => None,
        };
        let url = host.filter(|h| h.starts_with("unix://") || h.starts_with("tcp://"));
        Podman { program, url }
    }

    fn check(&self, id: &str) -> tokio::process::Command {
        let mut command = detached(&self.program);
        if let Some(url) = &self.url {
            command.args(["--url", url]);
        }
        command
            .args(["healthcheck", "run", "--", id])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        command
    }
}

impl HealthPump {
    /// Starts the pump, following no container yet; statuses go to `changes`.
    pub fn start(docker: Docker, changes: mpsc::UnboundedSender<Event>) -> HealthPump {
        let podman = Podman::for_endpoint(&docker);
        let (follow, followed) = watch::channel(Vec::new());
        let task = tokio::spawn(pump(docker, podman.clone(), followed, changes));
        HealthPump {
            follow,
            task,
            podman,
        }
    }

    /// Runs the checks of these containers from now on (and no longer those of others).
    pub fn follow(&self, ids: &[String]) {
        self.follow.send_if_modified(|followed| {
            if followed.as_slice() == ids {
                return false;
            }
            *followed = ids.to_vec();
            true
        });
    }

    /// The check command, as the user could run it.
    pub fn describe(&self) -> String {
        show(&self.podman.check("ID"))
    }

    pub fn program(&self) -> &str {
        &self.podman.program
    }

    /// Whether the Podman CLI is there to run.
    pub fn found(&self) -> bool {
        crate::docker::podman::on_path(&self.podman.program)
    }
}

impl Drop for HealthPump {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Follows the followed set: each change stops the checks of the previous one (dropping the
/// set aborts them) and starts those of the new one.
async fn pump(
    docker: Docker,
    podman: Podman,
    mut followed: watch::Receiver<Vec<String>>,
    changes: mpsc::UnboundedSender<Event>,
) {
    loop {
        let ids = followed.borrow_and_update().clone();
        let mut checks = JoinSet::new();
        if !ids.is_empty() {
            match docker.inspect(&ids).await {
                Ok(containers) => {
                    for container in containers {
                        let Some(healthcheck) = container.healthcheck else {
                            continue;
                        };
                        if container.state != State::Running {
                            continue;
                        }
                        checks.spawn(keep_checking(
                            docker.clone(),
                            podman.clone(),
                            container.id,
                            healthcheck,
                            container.health,
                            changes.clone(),
                        ));
                    }
                }
                Err(error) => tracing::debug!("health pump: cannot inspect: {error}"),
            }
        }
        if followed.changed().await.is_err() {
            return;
        }
    }
}

/// One container's checks, one interval apart, until it stops running or is no longer followed.
async fn keep_checking(
    docker: Docker,
    podman: Podman,
    id: String,
    healthcheck: Healthcheck,
    mut reported: Health,
    changes: mpsc::UnboundedSender<Event>,
) {
    let mut next = Instant::now() + healthcheck.interval;
    loop {
        sleep_until(next).await;
        next = Instant::now() + healthcheck.interval;
        let mut command = podman.check(&id);
        let shown = show(&command);
        match timeout(healthcheck.timeout + GRACE, command.output()).await {
            Ok(Ok(output)) => tracing::debug!(
                target: "docker",
                "{shown} (exit {}) {}",
                output.status.code().map_or("signal".into(), |c| c.to_string()),
                String::from_utf8_lossy(&output.stderr).trim()
            ),
            Ok(Err(error)) => tracing::debug!(target: "docker", "{shown}: {error}"),
            Err(_) => tracing::debug!(target: "docker", "{shown}: no answer in time"),
        }
        let now = match docker.inspect(std::slice::from_ref(&id)).await {
            Ok(containers) => containers.into_iter().next(),
            Err(error) => {
                tracing::debug!("health pump: cannot inspect {id}: {error}");
                continue;
            }
        };
        let Some(container) = now else {
            return;
        };
        if container.health != reported {
            reported = container.health;
            let change = Change::Health(container.health);
            if changes
                .send(Event {
                    id: id.clone(),
                    change,
                })
                .is_err()
            {
                return;
            }
        }
        if container.state != State::Running {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docker::command::{Endpoint, Globals};

    #[test]
    fn reaches_the_engine_the_docker_cli_reaches() {
        let docker = Docker::new(
            Globals {
                flags: Default::default(),
                endpoint: Endpoint::Host("unix:///run/reroll-podman/podman.sock".into()),
            },
            vec![],
        );
        let podman = Podman::for_endpoint(&docker);
        assert_eq!(
            show(&podman.check("abc")),
            "podman --url unix:///run/reroll-podman/podman.sock healthcheck run -- abc"
        );
        let ssh = Docker::new(
            Globals {
                flags: Default::default(),
                endpoint: Endpoint::Host("ssh://me@there".into()),
            },
            vec![],
        );
        assert_eq!(
            show(&Podman::for_endpoint(&ssh).check("abc")),
            "podman healthcheck run -- abc"
        );
    }
}

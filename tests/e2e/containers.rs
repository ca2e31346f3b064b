//! The containers of one Compose service, found by label as Compose itself does: all states.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use super::cmd::{command, docker_ok, run};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    pub id: String,
    pub name: String,
    /// Docker's `.State.Status`: created, running, exited, …
    pub state: String,
    /// Docker's `.State.Health.Status`, `None` without a healthcheck.
    pub health: Option<String>,
    /// The page the container itself serves (asked from inside it), `None` unless running.
    pub version: Option<String>,
}

impl Container {
    pub fn is_running_healthy(&self) -> bool {
        self.state == "running" && self.health.as_deref() == Some("healthy")
    }
}

/// Every container of `service` in `project`, oldest first.
pub async fn list(project: &str, service: &str) -> Vec<Container> {
    let here = Path::new("/");
    let project_filter = format!("label=com.docker.compose.project={project}");
    let service_filter = format!("label=com.docker.compose.service={service}");
    let ids = docker_ok(
        &[
            "ps",
            "--all",
            "--quiet",
            "--no-trunc",
            "--filter",
            &project_filter,
            "--filter",
            &service_filter,
        ],
        here,
    )
    .await;
    let ids: Vec<&str> = ids.split_whitespace().collect();
    if ids.is_empty() {
        return Vec::new();
    }
    let mut args = vec!["inspect"];
    args.extend(&ids);
    let inspected: Vec<Value> = serde_json::from_str(&docker_ok(&args, here).await)
        .expect("docker inspect printed no JSON");
    let mut containers = Vec::new();
    for c in &inspected {
        let id = c["Id"].as_str().unwrap_or_default().to_owned();
        let state = c["State"]["Status"].as_str().unwrap_or_default().to_owned();
        let version = if state == "running" {
            served_version(&id).await
        } else {
            None
        };
        containers.push((
            c["Created"].as_str().unwrap_or_default().to_owned(),
            Container {
                name: c["Name"]
                    .as_str()
                    .unwrap_or_default()
                    .trim_start_matches('/')
                    .to_owned(),
                health: c["State"]["Health"]["Status"].as_str().map(str::to_owned),
                id,
                state,
                version,
            },
        ));
    }
    containers.sort_by(|a, b| a.0.cmp(&b.0));
    containers.into_iter().map(|(_, c)| c).collect()
}

/// The ids of the containers, for "nothing changed" comparisons.
pub fn ids(containers: &[Container]) -> Vec<String> {
    let mut ids: Vec<String> = containers.iter().map(|c| c.id.clone()).collect();
    ids.sort();
    ids
}

/// Asks the app inside the container for its page (the demo app serves its version).
async fn served_version(id: &str) -> Option<String> {
    let args = ["exec", id, "wget", "-q", "-O", "-", "http://127.0.0.1/"];
    let finished = run(
        command("docker", args, Path::new("/"), &[]),
        Duration::from_secs(30),
    )
    .await;
    finished
        .success()
        .then(|| finished.stdout.trim().to_owned())
}

/// Asserts the end state of a rollout: exactly `n` containers, all running, healthy and serving
/// `version`, and nothing else of the service (no exited, created or drained leftovers).
pub fn assert_exactly(containers: &[Container], n: usize, version: &str) {
    let good = containers
        .iter()
        .filter(|c| c.is_running_healthy() && c.version.as_deref() == Some(version))
        .count();
    assert!(
        good == n && containers.len() == n,
        "expected exactly {n} running, healthy containers serving {version:?} and nothing else, found:\n{containers:#?}"
    );
}

/// The ids of every container of a project, all services and states.
pub async fn project_ids(project: &str) -> Vec<String> {
    let filter = format!("label=com.docker.compose.project={project}");
    let out = docker_ok(
        &["ps", "--all", "--quiet", "--no-trunc", "--filter", &filter],
        Path::new("/"),
    )
    .await;
    let mut ids: Vec<String> = out.split_whitespace().map(str::to_owned).collect();
    ids.sort();
    ids
}

/// Waits until the service has at least `count` containers (in any state); panics after `limit`.
pub async fn wait_for_count(project: &str, service: &str, count: usize, limit: Duration) {
    let deadline = std::time::Instant::now() + limit;
    loop {
        let found = list(project, service).await.len();
        if found >= count {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{service} of {project} still has {found} containers, not {count}, after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

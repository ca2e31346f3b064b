//! What every end-to-end test needs before it starts: permission to run, a reachable engine with
//! Compose v2, the example images, no leftovers of earlier runs, and the machine to itself.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use tokio::sync::{Mutex, MutexGuard};

use super::cmd::{command, run};
use super::engine;
use super::report;

/// The opt-out: skips the end-to-end tests loudly, and is refused when `CI` is set.
pub const SKIP_VAR: &str = "REROLL_SKIP_E2E";

/// Prefix of every Compose project the tests create; see [`project_name`].
pub const PROJECT_PREFIX: &str = "reroll-e2e-";

/// One scenario at a time: they load the same two cores and time their proxies.
static MACHINE: Mutex<()> = Mutex::const_new(());

/// Set once the checks and the setup below have succeeded in this test binary.
static READY: OnceLock<()> = OnceLock::new();

/// Call first in every end-to-end test. `None`: skip the test (the opt-out is set; a warning has
/// been printed). Panics, failing the test, when something it needs is missing.
pub async fn begin() -> Option<MutexGuard<'static, ()>> {
    if skip_requested() {
        return None;
    }
    let guard = MACHINE.lock().await;
    if READY.get().is_none() {
        // Podman's socket is started by the setup that also loads the images into its store.
        if engine::is_podman() {
            build_images().await;
        }
        check_engine().await;
        if !engine::is_podman() {
            build_images().await;
        }
        remove_leftovers().await;
        let _ = READY.set(());
    }
    Some(guard)
}

/// The Compose project name of a scenario: unique per test binary process, recognisable as ours.
pub fn project_name(scenario: &str) -> String {
    format!("{PROJECT_PREFIX}{scenario}-{}", std::process::id())
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn skip_requested() -> bool {
    if std::env::var(SKIP_VAR).ok().as_deref() != Some("1") {
        return false;
    }
    if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
        panic!("{SKIP_VAR}=1 is refused when CI is set: CI must run the end-to-end tests");
    }
    report(&format!(
        "WARNING: {SKIP_VAR}=1: SKIPPING the end-to-end test against a real Docker engine. \
         Nothing about real rollouts has been checked."
    ));
    true
}

async fn check_engine() {
    let root = repo_root();
    let info = run(
        command(
            "docker",
            ["info", "--format", "{{.ServerVersion}}"],
            &root,
            &[],
        ),
        Duration::from_secs(30),
    )
    .await;
    assert!(
        info.success(),
        "The end-to-end tests need a reachable Docker engine, and `docker info` failed. Start \
         the engine (or set DOCKER_HOST), or run tests/setup.sh. To skip these tests on a \
         machine without Docker, set {SKIP_VAR}=1 (refused in CI).\n{}",
        info.transcript()
    );
    let compose = run(
        command("docker", ["compose", "version", "--short"], &root, &[]),
        Duration::from_secs(30),
    )
    .await;
    assert!(
        compose.success() && compose.stdout.trim_start_matches('v').starts_with('2'),
        "The end-to-end tests need Docker Compose v2 as `docker compose` (tests/setup.sh \
         installs it).\n{}",
        compose.transcript()
    );
    let engine = if engine::is_podman() {
        "Podman (through its API socket)"
    } else {
        "Docker engine"
    };
    report(&format!(
        "{engine} {}, Compose {}",
        info.stdout.trim(),
        compose.stdout.trim()
    ));
}

async fn build_images() {
    let mut scripts = vec!["tests/images/build.sh"];
    let mut env: &[(&str, &str)] = &[];
    if engine::is_podman() {
        scripts.push("tests/setup-podman.sh");
        env = &engine::DOCKER_ITSELF;
    }
    for script in scripts {
        let built = run(
            command("bash", [script], &repo_root(), env),
            Duration::from_secs(300),
        )
        .await;
        assert!(
            built.success(),
            "{script} failed (tests/setup.sh installs what it needs):\n{}",
            built.transcript()
        );
    }
}

/// Removes containers and networks of earlier runs that died before their own cleanup: those of
/// our projects whose test process is gone. A run in progress elsewhere keeps its own.
async fn remove_leftovers() {
    let root = repo_root();
    let list = |args: &'static [&'static str]| {
        let root = root.clone();
        async move {
            let out = run(command("docker", args, &root, &[]), Duration::from_secs(60)).await;
            assert!(
                out.success(),
                "listing leftovers failed: {}",
                out.transcript()
            );
            out.stdout
        }
    };
    let containers = list(&[
        "ps",
        "--all",
        "--filter",
        "label=com.docker.compose.project",
        "--format",
        "{{.ID}} {{.Label \"com.docker.compose.project\"}}",
    ])
    .await;
    let stale_containers: Vec<&str> = containers
        .lines()
        .filter_map(|line| line.split_once(' '))
        .filter(|(_, project)| is_stale(project))
        .map(|(id, _)| id)
        .collect();
    if !stale_containers.is_empty() {
        let mut args = vec!["rm", "--force", "--volumes"];
        args.extend(&stale_containers);
        run(
            command("docker", &args, &root, &[]),
            Duration::from_secs(120),
        )
        .await;
    }
    let networks = list(&["network", "ls", "--format", "{{.Name}}"]).await;
    for network in networks.lines() {
        // Compose names a project's network `<project>_<name>`.
        let project = network.rsplit_once('_').map_or(network, |(p, _)| p);
        if is_stale(project) {
            run(
                command("docker", ["network", "rm", network], &root, &[]),
                Duration::from_secs(60),
            )
            .await;
        }
    }
}

/// One of our projects, made by a test process that no longer runs.
fn is_stale(project: &str) -> bool {
    let Some(rest) = project.strip_prefix(PROJECT_PREFIX) else {
        return false;
    };
    let pid = rest.rsplit('-').next().and_then(|p| p.parse::<u32>().ok());
    match pid {
        Some(pid) => !Path::new(&format!("/proc/{pid}")).exists(),
        None => true,
    }
}

//! End-to-end proof of the Compose v1 fallback: Debian's `docker-compose` 1.29 (YAML config, no
//! `--wait`, containers named `p_s_1`) is the only Compose the tool finds, on the machine's Docker
//! engine. The HAProxy recipe under the same load as `tests/e2e.rs`: a rollout with 0 failed
//! requests, and a broken release rolled back.
//!
//! Needs Debian's `docker-compose` (tests/setup.sh installs it): without it these tests are
//! skipped with a loud warning, and fail when `CI` is set. `REROLL_SKIP_E2E=1` skips them too.

#[path = "e2e/mod.rs"]
#[allow(dead_code)] // shared with tests/e2e.rs, which uses the rest
mod harness;

use std::path::Path;
use std::time::Duration;

use harness::cmd::{command, run};
use harness::preflight::begin;
use harness::releases::NEVER_HEALTHY;
use harness::report;
use harness::scenario::{APP, Scenario};
use harness::steps::{
    assert_exit, assert_no_failures, documented_args, roll_under_load_with,
    rolls_back_never_healthy,
};
use tempfile::TempDir;
use tokio::sync::MutexGuard;

/// Debian's Compose v1.
const COMPOSE_V1: &str = "/usr/bin/docker-compose";

/// An environment in which Compose v1 is the only Compose: no `docker compose` plugin (an empty
/// Docker config directory) and `docker-compose` on PATH is v1.
struct OnlyV1 {
    _config: TempDir,
    _bin: TempDir,
    env: Vec<(String, String)>,
}

impl OnlyV1 {
    fn new() -> OnlyV1 {
        let config = tempfile::tempdir().expect("tempdir");
        let bin = tempfile::tempdir().expect("tempdir");
        std::os::unix::fs::symlink(COMPOSE_V1, bin.path().join("docker-compose"))
            .expect("cannot link docker-compose");
        let path = format!(
            "{}:{}",
            bin.path().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let env = vec![
            (
                "DOCKER_CONFIG".to_owned(),
                config.path().display().to_string(),
            ),
            ("PATH".to_owned(), path),
        ];
        OnlyV1 {
            _config: config,
            _bin: bin,
            env,
        }
    }

    fn env(&self) -> Vec<(&str, &str)> {
        self.env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }
}

/// [`begin`], and Compose v1; `None` (with a warning) when it is missing and `CI` is not set.
async fn begin_with_v1() -> Option<(MutexGuard<'static, ()>, OnlyV1)> {
    if !Path::new(COMPOSE_V1).exists() {
        assert!(
            std::env::var_os("CI").is_none_or(|v| v.is_empty()),
            "CI must run the Compose v1 end-to-end tests, and {COMPOSE_V1} is missing: \
             tests/setup.sh installs it"
        );
        report(&format!(
            "WARNING: no {COMPOSE_V1}: SKIPPING the Compose v1 end-to-end test. tests/setup.sh \
             installs it (Debian's docker-compose)."
        ));
        return None;
    }
    let machine = begin().await?;
    Some((machine, OnlyV1::new()))
}

/// The example started by Compose v1 with `replicas` of version a, served.
async fn start(name: &str, replicas: usize, v1: &OnlyV1) -> Scenario {
    let scenario = Scenario::new("haproxy", name);
    let scale = format!("{APP}={replicas}");
    let mut env = scenario.env();
    env.extend(v1.env());
    let args = [
        "--project-name",
        &scenario.project,
        "up",
        "--detach",
        "--scale",
        &scale,
    ];
    let up = run(
        command(COMPOSE_V1, args, scenario.dir(), &env),
        Duration::from_secs(180),
    )
    .await;
    assert!(up.success(), "docker-compose up: {}", up.transcript());
    scenario.wait_until_served().await;
    scenario
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compose_v1_rolls_two_replicas_without_failed_requests() {
    let Some((_machine, v1)) = begin_with_v1().await else {
        return;
    };
    let scenario = start("v1", 2, &v1).await;
    let args = documented_args(&scenario);

    let (finished, tally) = roll_under_load_with(&scenario, &args, &v1.env()).await;

    report(&format!(
        "compose v1: tool {:.1}s; load: {tally}",
        finished.elapsed.as_secs_f64()
    ));
    assert_exit(&finished, 0, "compose v1");
    assert_no_failures(&scenario, &tally, "compose v1").await;
    assert!(
        tally.answered("a") > 0 && tally.answered("b") > 0,
        "both versions should have answered: {tally}"
    );
    let after = scenario.app_containers().await;
    harness::containers::assert_exactly(&after, 2, "b");
    assert!(
        after.iter().all(|c| c.name.contains("_app_")),
        "Compose v1 made the new containers (names p_s_N): {after:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compose_v1_rolls_back_a_release_that_never_turns_healthy() {
    let Some((_machine, v1)) = begin_with_v1().await else {
        return;
    };
    let scenario = start("v1broken", 2, &v1).await;
    let before = scenario.app_containers().await;
    scenario.write_override(NEVER_HEALTHY);
    rolls_back_never_healthy(&scenario, &before, "compose v1 broken release", &v1.env()).await;
}

//! End-to-end proof on Podman by its own tools: the `podman` CLI and podman-compose (PyPI's 1.6,
//! which labels its containers `io.podman.compose.config-hash` and has no `config --hash`), chosen
//! with `DOCKER_REROLL_ENGINE=podman`. Debian's Podman 4.3, rootful, no systemd: the tool runs the
//! health checks. The demo `examples/podman/` documents (the HAProxy example, its command with
//! `podman exec`), under the same load as `tests/e2e.rs`.
//!
//! Needs `podman` and `podman-compose` (tests/setup.sh installs them): without them these tests
//! are skipped with a loud warning, and fail when `CI` is set.

#[path = "e2e/mod.rs"]
#[allow(dead_code)] // shared with tests/e2e.rs, which uses the rest
mod harness;

use harness::containers::assert_exactly;
use harness::engine::Route;
use harness::podman::{assert_ran_the_checks, begin_on_podman, start, write_release};
use harness::releases::{NEVER_HEALTHY, SLOW_START};
use harness::steps::{
    assert_exit, assert_no_failures, documented_args, documented_rollout_succeeds,
    interrupt_rolls_back, roll_under_load_with, rolls_back_never_healthy,
};

const ROUTE: Route = Route::PodmanCompose;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn podman_compose_rolls_two_replicas_without_failed_requests() {
    let Some(_machine) = begin_on_podman(ROUTE).await else {
        return;
    };
    let scenario = start("pcompose", 2).await;
    assert!(
        documented_args(&scenario)
            .iter()
            .any(|arg| arg.starts_with("podman exec")),
        "the demo's command should drain with Podman's CLI"
    );
    let finished = documented_rollout_succeeds(&scenario, 2, "podman-compose").await;
    assert_ran_the_checks(&finished);
    assert!(
        finished.stderr.contains("podman-compose"),
        "the tool should say it drives podman-compose:\n{}",
        finished.transcript()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn podman_compose_rolls_back_a_release_that_never_turns_healthy() {
    let Some(_machine) = begin_on_podman(ROUTE).await else {
        return;
    };
    let scenario = start("pcomposebroken", 2).await;
    let before = scenario.app_containers().await;
    write_release(&scenario, NEVER_HEALTHY);
    rolls_back_never_healthy(&scenario, &before, "podman-compose broken release", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn podman_compose_interrupt_during_health_wait_rolls_back() {
    let Some(_machine) = begin_on_podman(ROUTE).await else {
        return;
    };
    let scenario = start("pcomposesigint", 2).await;
    let before = scenario.app_containers().await;
    write_release(&scenario, SLOW_START);
    interrupt_rolls_back(&scenario, &before, "podman-compose sigint").await;
}

/// `x-reroll: engine: podman` in the compose file picks this route when neither `--engine` nor
/// `DOCKER_REROLL_ENGINE` does, though `docker` is on PATH (auto alone would pick it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_reroll_engine_picks_podman_compose_over_docker_on_path() {
    let Some(_machine) = begin_on_podman(ROUTE).await else {
        return;
    };
    let scenario = start("pcomposekey", 2).await;
    write_release(
        &scenario,
        "services:\n  app:\n    x-reroll:\n      engine: podman\n",
    );
    let args = documented_args(&scenario);
    let (finished, tally) =
        roll_under_load_with(&scenario, &args, &[("DOCKER_REROLL_ENGINE", "auto")]).await;
    harness::report(&format!("x-reroll engine podman: load: {tally}"));
    assert_exit(&finished, 0, "x-reroll engine podman");
    assert_no_failures(&scenario, &tally, "x-reroll engine podman").await;
    assert!(
        finished.stderr.contains("podman-compose"),
        "x-reroll engine: podman should have the tool drive podman-compose:\n{}",
        finished.transcript()
    );
    assert_exactly(&scenario.app_containers().await, 2, "b");
}

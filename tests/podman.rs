//! End-to-end proof on Podman (Debian's 4.3, rootful, no systemd) through its Docker-compatible
//! API socket: Docker's CLI and Compose v2 with `DOCKER_HOST=unix:///run/reroll-podman/podman.sock`
//! (tests/setup-podman.sh runs it). The HAProxy recipe under the same load as `tests/e2e.rs`, every
//! failed request counted. Podman runs no health check by itself here: the tool must notice and
//! run them (`podman healthcheck run`), or no rollout could pass its health gate.
//!
//! Needs `podman` (tests/setup.sh installs it): without it these tests are skipped with a loud
//! warning, and fail when `CI` is set. `REROLL_SKIP_E2E=1` skips them as it does `tests/e2e.rs`.

#[path = "e2e/mod.rs"]
#[allow(dead_code)] // shared with tests/e2e.rs, which uses the rest
mod harness;

use harness::engine::Route;
use harness::podman::{assert_ran_the_checks, begin_on_podman, start, write_release};
use harness::releases::{NEVER_HEALTHY, SLOW_START};
use harness::steps::{documented_rollout_succeeds, interrupt_rolls_back, rolls_back_never_healthy};

const ROUTE: Route = Route::DockerApi;

/// The documented HAProxy recipe on `replicas`, under load.
async fn rollout(replicas: usize) {
    let Some(_machine) = begin_on_podman(ROUTE).await else {
        return;
    };
    let name = format!("podman{replicas}");
    let scenario = start(&name, replicas).await;
    let finished = documented_rollout_succeeds(&scenario, replicas, &name).await;
    assert_ran_the_checks(&finished);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn podman_rolls_one_replica_without_failed_requests() {
    rollout(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn podman_rolls_three_replicas_without_failed_requests() {
    rollout(3).await;
}

/// A release that never turns healthy: rolled back at the health timeout, no failed request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn podman_rolls_back_a_release_that_never_turns_healthy() {
    let Some(_machine) = begin_on_podman(ROUTE).await else {
        return;
    };
    let scenario = start("podmanbroken", 2).await;
    let before = scenario.app_containers().await;
    write_release(&scenario, NEVER_HEALTHY);
    rolls_back_never_healthy(&scenario, &before, "podman broken release", &[]).await;
}

/// Ctrl-C while the new containers are still starting: rolled back, exit 130, no failed request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn podman_interrupt_during_health_wait_rolls_back() {
    let Some(_machine) = begin_on_podman(ROUTE).await else {
        return;
    };
    let scenario = start("podmansigint", 2).await;
    let before = scenario.app_containers().await;
    write_release(&scenario, SLOW_START);
    // The new ones are `starting` for 6 s.
    interrupt_rolls_back(&scenario, &before, "podman sigint").await;
}

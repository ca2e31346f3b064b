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

use std::path::Path;
use std::time::{Duration, Instant};

use harness::cmd::{command, run};
use harness::engine::{self, PODMAN_SOCKET};
use harness::preflight::begin;
use harness::releases::{NEVER_HEALTHY, SLOW_START};
use harness::report;
use harness::scenario::{APP, Scenario};
use harness::steps::{
    assert_exit, assert_no_failures, assert_only_old, documented_args, documented_rollout_succeeds,
    interrupt_rolls_back, roll_under_load, with_options,
};
use tokio::sync::MutexGuard;

/// The example every test here rolls.
const EXAMPLE: &str = "haproxy";

/// [`begin`] on Podman; `None` (with a warning) when Podman is missing and `CI` is not set.
async fn begin_on_podman() -> Option<MutexGuard<'static, ()>> {
    let found = std::process::Command::new("podman")
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none_or(|v| v.is_empty()),
            "CI must run the Podman end-to-end tests, and `podman` is missing: tests/setup.sh \
             installs it"
        );
        report(
            "WARNING: no `podman` on PATH: SKIPPING the Podman end-to-end test. Nothing about \
             rollouts on Podman has been checked. tests/setup.sh installs it.",
        );
        return None;
    }
    engine::use_podman();
    begin().await
}

/// A network of its own whose gateway, where aardvark-dns answers, is known: HAProxy's
/// `parse-resolv-conf` would also ask the host's nameservers, which Podman lists after it, and
/// the tests send nothing off this machine.
fn podman_override(release: &str) -> String {
    let octet = 100 + std::process::id() % 100;
    let haproxy = format!("  haproxy:\n    dns: [10.89.{octet}.1]\n");
    let services = release
        .trim_start()
        .strip_prefix("services:\n")
        .unwrap_or_default();
    format!(
        "services:\n{haproxy}{services}\nnetworks:\n  default:\n    ipam:\n      config:\n        \
         - subnet: 10.89.{octet}.0/24\n"
    )
}

/// Writes `release` (a compose override from `harness::releases`, or nothing) for Podman.
fn write_release(scenario: &Scenario, release: &str) {
    scenario.write_override(&podman_override(release));
}

/// The example with `replicas` of version a, healthy and served. Compose's `--wait` would wait
/// forever here (nothing runs the checks), so the test runs them, as the tool will.
async fn start(name: &str, replicas: usize) -> Scenario {
    let scenario = Scenario::new(EXAMPLE, name);
    write_release(&scenario, "");
    let scale = format!("{APP}={replicas}");
    scenario
        .compose_ok(&["up", "--detach", "--scale", &scale], &[])
        .await;
    check_until_healthy(&scenario).await;
    scenario.wait_until_served().await;
    scenario
}

async fn check_until_healthy(scenario: &Scenario) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let app = scenario.app_containers().await;
        if !app.is_empty() && app.iter().all(|c| c.is_running_healthy()) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the app's containers did not turn healthy: {app:#?}"
        );
        for container in app.iter().filter(|c| !c.is_running_healthy()) {
            let check = command(
                "podman",
                ["--url", PODMAN_SOCKET, "healthcheck", "run", &container.id],
                Path::new("/"),
                &[],
            );
            run(check, Duration::from_secs(30)).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn assert_ran_the_checks(finished: &harness::cmd::Finished) {
    assert!(
        finished.stderr.contains("engine: Podman")
            && finished.stderr.contains("runs the health checks"),
        "the tool should say that it runs the health checks on Podman:\n{}",
        finished.transcript()
    );
}

/// The documented HAProxy recipe on `replicas`, under load.
async fn rollout(replicas: usize) {
    let Some(_machine) = begin_on_podman().await else {
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
    let Some(_machine) = begin_on_podman().await else {
        return;
    };
    let scenario = start("podmanbroken", 2).await;
    let before = scenario.app_containers().await;
    write_release(&scenario, NEVER_HEALTHY);
    let args = with_options(
        &documented_args(&scenario),
        &["--healthcheck-timeout", "8s"],
    );

    let (finished, tally) = roll_under_load(&scenario, &args).await;

    report(&format!(
        "podman broken release: tool {:.1}s; load: {tally}",
        finished.elapsed.as_secs_f64()
    ));
    assert_exit(&finished, 1, "never healthy on Podman");
    assert_no_failures(&scenario, &tally, "never healthy on Podman").await;
    assert_eq!(tally.answered("b"), 0, "the broken release served: {tally}");
    assert_only_old(&before, &scenario.app_containers().await);
}

/// Ctrl-C while the new containers are still starting: rolled back, exit 130, no failed request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn podman_interrupt_during_health_wait_rolls_back() {
    let Some(_machine) = begin_on_podman().await else {
        return;
    };
    let scenario = start("podmansigint", 2).await;
    let before = scenario.app_containers().await;
    write_release(&scenario, SLOW_START);
    // The new ones are `starting` for 6 s.
    interrupt_rolls_back(&scenario, &before, "podman sigint").await;
}

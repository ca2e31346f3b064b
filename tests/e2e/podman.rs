//! Podman scenarios (tests/podman.rs, tests/podman_compose.rs): the checks that Podman is there,
//! the example on a network of its own, its first containers made healthy (nothing else runs
//! their checks here), and what the tool must say.

use std::path::Path;
use std::time::{Duration, Instant};

use tokio::sync::MutexGuard;

use super::cmd::{Finished, command, run};
use super::engine::{self, PODMAN_SOCKET, Route};
use super::preflight::{begin, repo_root};
use super::report;
use super::scenario::{APP, Scenario};

/// The example every Podman test rolls.
pub const EXAMPLE: &str = "haproxy";

/// [`begin`] on Podman by `route`; `None` (with a warning) when Podman (or podman-compose, on
/// that route) is missing and `CI` is not set.
pub async fn begin_on_podman(route: Route) -> Option<MutexGuard<'static, ()>> {
    let mut needs = vec!["podman"];
    if route == Route::PodmanCompose {
        needs.push("podman-compose");
    }
    for program in needs {
        let found = std::process::Command::new(program)
            .arg("--version")
            .output()
            .is_ok_and(|out| out.status.success());
        if found {
            continue;
        }
        assert!(
            std::env::var_os("CI").is_none_or(|v| v.is_empty()),
            "CI must run the Podman end-to-end tests, and `{program}` is missing: tests/setup.sh \
             installs it"
        );
        report(&format!(
            "WARNING: no `{program}` on PATH: SKIPPING this Podman end-to-end test. Nothing about \
             rollouts on Podman has been checked. tests/setup.sh installs it."
        ));
        return None;
    }
    engine::use_podman(route);
    begin().await
}

/// A network of its own whose gateway, where aardvark-dns answers, is known: HAProxy's
/// `parse-resolv-conf` would also ask the host's nameservers, which Podman lists after it, and
/// the tests send nothing off this machine.
fn podman_override(release: &str, octet: u32) -> String {
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

/// Writes `release` (a compose override from `super::releases`, or nothing) for Podman.
pub fn write_release(scenario: &Scenario, release: &str) {
    scenario.write_override(&podman_override(release, subnet_octet(&scenario.project)));
}

/// The third octet of the scenario's subnet `10.89.N.0/24`: one per project, so that a network
/// left behind cannot block the next scenario's.
fn subnet_octet(project: &str) -> u32 {
    let hash = project
        .bytes()
        .fold(17u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    100 + hash % 150
}

/// The example with `replicas` of version a, made by the route's Compose, healthy and served.
/// Compose's `--wait` would wait forever here (nothing runs the checks), so the test runs them,
/// as the tool will.
pub async fn start(name: &str, replicas: usize) -> Scenario {
    let scenario = Scenario::new(EXAMPLE, name);
    write_release(&scenario, "");
    let scale = format!("{APP}={replicas}");
    if engine::route() == Some(Route::PodmanCompose) {
        // The demo on Podman documents this route's command: the one the tests run.
        let demo = repo_root().join("examples/podman/README.md");
        std::fs::copy(&demo, scenario.dir().join("README.md"))
            .unwrap_or_else(|e| panic!("cannot copy {}: {e}", demo.display()));
        let args = ["--project-name", &scenario.project, "up", "--detach"];
        let up = run(
            command(
                "podman-compose",
                args.iter().chain(&["--scale", &scale]),
                scenario.dir(),
                &scenario.env(),
            ),
            Duration::from_secs(180),
        )
        .await;
        assert!(up.success(), "podman-compose up: {}", up.transcript());
    } else {
        scenario
            .compose_ok(&["up", "--detach", "--scale", &scale], &[])
            .await;
    }
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

/// The tool found Podman, and said that it runs the health checks.
pub fn assert_ran_the_checks(finished: &Finished) {
    assert!(
        finished.stderr.contains("engine: Podman")
            && finished.stderr.contains("runs the health checks"),
        "the tool should say that it runs the health checks on Podman:\n{}",
        finished.transcript()
    );
}

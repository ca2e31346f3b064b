//! The README's one demo command, `examples/demo/run.sh`, run as a newcomer runs it (with the
//! binary built here as `REROLL`): it must show plain Compose failing requests (else the demo's
//! load is blind) and docker reroll failing none, and leave nothing of its project behind.
//!
//! Needs a Docker engine, Compose v2, busybox-static and haproxy (tests/setup.sh); without an
//! engine it fails, `REROLL_SKIP_E2E=1` skips it loudly, refused when `CI` is set.

#[path = "e2e/mod.rs"]
#[allow(dead_code)] // shared with tests/e2e.rs, which uses the rest
mod harness;

use std::time::Duration;

use harness::cmd::{command, docker_ok, run};
use harness::preflight::{begin, project_name, repo_root};
use harness::report;
use harness::tool::BINARY;

/// The demo's `failed total` for one row of its table, e.g. `docker reroll   0   1179   …`.
fn row(output: &str, label: &str) -> (u64, u64) {
    let line = output
        .lines()
        .map(str::trim)
        .find(|line| {
            line.strip_prefix(label)
                .is_some_and(|rest| rest.starts_with(' '))
        })
        .unwrap_or_else(|| panic!("no `{label}` row in the demo's output:\n{output}"));
    let numbers: Vec<u64> = line[label.len()..]
        .split_whitespace()
        .take(2)
        .map(|n| {
            n.parse()
                .unwrap_or_else(|_| panic!("not a count in {line:?}"))
        })
        .collect();
    (numbers[0], numbers[1])
}

/// No engine needed: the quick start names the demo right after the install command.
#[test]
fn the_quick_start_names_the_demo_after_the_install() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let commands: Vec<&str> = readme
        .lines()
        .skip_while(|l| *l != "## Quick start")
        .skip_while(|l| !l.starts_with("./install.sh"))
        .take(2)
        .map(|l| l.split_whitespace().next().unwrap_or_default())
        .collect();
    assert_eq!(commands, ["./install.sh", "examples/demo/run.sh"]);
    let script = std::fs::metadata(repo_root().join(commands[1])).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert!(script.permissions().mode() & 0o111 != 0, "not executable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_shows_compose_failing_and_reroll_not() {
    let Some(_machine) = begin().await else {
        return;
    };
    let project = project_name("demo");
    let root = repo_root();
    let finished = run(
        command(
            "bash",
            ["examples/demo/run.sh"],
            &root,
            &[("REROLL", BINARY), ("DEMO_PROJECT", &project)],
        ),
        Duration::from_secs(300),
    )
    .await;
    let said = finished.transcript();
    assert!(finished.success(), "the demo failed:\n{said}");
    let (compose_failed, compose_total) = row(&finished.stderr, "docker compose up -d");
    let (reroll_failed, reroll_total) = row(&finished.stderr, "docker reroll");
    report(&format!(
        "demo: docker compose up -d {compose_failed}/{compose_total} failed, \
         docker reroll {reroll_failed}/{reroll_total} failed, in {:.0}s",
        finished.elapsed.as_secs_f64()
    ));
    assert!(
        compose_total >= 100 && reroll_total >= 100,
        "too little load to judge:\n{said}"
    );
    assert!(
        compose_failed > 0,
        "plain Compose failed no request: the demo's load is blind\n{said}"
    );
    assert_eq!(reroll_failed, 0, "docker reroll failed requests\n{said}");
    assert!(
        finished.stderr.contains("<- docker reroll returned"),
        "no timeline:\n{said}"
    );
    let left = docker_ok(
        &[
            "ps",
            "--all",
            "--quiet",
            "--filter",
            &format!("label=com.docker.compose.project={project}"),
        ],
        &root,
    )
    .await;
    assert!(left.trim().is_empty(), "the demo left containers: {left}");
    let networks = docker_ok(&["network", "ls", "--format", "{{.Name}}"], &root).await;
    assert!(
        !networks
            .lines()
            .any(|n| n.starts_with(&format!("{project}_"))),
        "the demo left its network: {networks}"
    );
}

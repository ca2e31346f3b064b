//! docker-reroll in a real terminal, read as a person reads it: tmux runs a rollout of the HAProxy
//! example, an interrupted one, and the demo, and `capture-pane` reads the screen every 50 ms. The
//! progress line must update in place at the bottom (phase, new containers healthy, the wait,
//! elapsed time) and leave a clean final screen, a Ctrl-C included (its `^C` echo once left a
//! stale progress line behind).
//!
//! Needs tmux (tests/setup.sh installs it) and what `tests/e2e.rs` needs. Without tmux these tests
//! are skipped with a loud warning, and fail when `CI` is set; `REROLL_SKIP_E2E=1` skips them as
//! it does the other end-to-end tests.

#[path = "e2e/mod.rs"]
#[allow(dead_code)] // shared with tests/e2e.rs, which uses the rest
mod harness;
#[path = "terminal/tmux.rs"]
mod tmux;

use std::time::Duration;

use tokio::sync::MutexGuard;

use harness::cmd::docker_ok;
use harness::containers;
use harness::preflight::{begin, project_name, repo_root};
use harness::report;
use harness::scenario::{APP, Scenario};
use harness::steps::documented_args;
use harness::tool::BINARY;
use tmux::{Tmux, is_progress_line};

const WIDTH: u16 = 120;
/// Narrower than the progress line: it must be cut, not wrapped (a wrapped line is redrawn a
/// line off).
const NARROW: u16 = 44;

/// The documented rollout of the HAProxy example as typed into the terminal, to `version`.
fn rollout_command(scenario: &Scenario, version: &str) -> String {
    let args = shell_words::join(documented_args(scenario));
    format!("APP_VERSION={version} {BINARY} {args}")
}

/// A line of the plain report: the time column (or blank under it for a continuation), then the
/// text; not half-overwritten.
fn is_plain_report_line(line: &str) -> bool {
    let time = line.get(..7).unwrap_or(line).trim();
    time.is_empty() || (time.ends_with('s') && time.trim_end_matches('s').parse::<f64>().is_ok())
}

/// The engine's environment (the Podman route's `DOCKER_HOST`) and `more`.
fn with_engine<'a>(more: Vec<(&'a str, &'a str)>) -> Vec<(&'a str, &'a str)> {
    let mut env = more;
    for (key, value) in harness::engine::env() {
        env.push((key, value));
    }
    env
}

/// What a terminal test needs: the machine to itself, the HAProxy example with two replicas of
/// version a, and a terminal in its directory. `None`: skipped (said loudly).
async fn terminal_on_example(
    name: &str,
    width: u16,
) -> Option<(MutexGuard<'static, ()>, Scenario, Tmux)> {
    if !tmux::available() {
        return None;
    }
    let machine = begin().await?;
    let scenario = Scenario::start("haproxy", name, 2).await;
    let env = with_engine(scenario.env());
    let terminal = Tmux::start(name, scenario.dir(), width, 40, &env);
    Some((machine, scenario, terminal))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_progress_line_updates_in_place_and_leaves_a_clean_screen() {
    let Some((_machine, scenario, terminal)) = terminal_on_example("terminal", WIDTH).await else {
        return;
    };
    let command = rollout_command(&scenario, "b");
    let watched =
        tokio::task::block_in_place(|| terminal.watch(&command, Duration::from_secs(120), |_| {}));
    assert_eq!(watched.exit, 0, "the rollout failed:\n{}", watched.last);
    let progress = watched.progress_lines();
    report(&format!(
        "terminal: {} screens read, {} distinct progress lines, e.g. {:?}",
        watched.samples.len(),
        progress.len(),
        progress.iter().find(|l| l.contains("new healthy"))
    ));
    assert!(
        progress.len() >= 5,
        "the progress line hardly changed: {progress:#?}"
    );
    for (what, wanted) in [
        ("the health phase", " health "),
        ("n of N new containers healthy", "/2 new healthy"),
        ("the current wait and its limit", " of 8.0s"),
        ("draining behind the proxy", "out of rotation"),
    ] {
        assert!(
            progress.iter().any(|line| line.contains(wanted)),
            "no progress line showed {what} ({wanted:?}): {progress:#?}"
        );
    }
    // The elapsed time at the start of the line moves on while a phase lasts.
    let health: Vec<&String> = progress.iter().filter(|l| l.contains(" health ")).collect();
    assert!(
        health.first().map(|l| &l[..7]) != health.last().map(|l| &l[..7]),
        "the elapsed time did not move: {health:#?}"
    );
    let last = &watched.last;
    assert!(last.contains(" done "), "no `done` line:\n{last}");
    // The final screen is the plain report: each line of the tool's output begins with its time
    // column (or is a continuation, under it), nothing half-overwritten.
    let output = watched.output();
    assert!(output.len() >= 8, "too little output:\n{last}");
    for line in &output {
        assert!(
            is_plain_report_line(line),
            "not a line of the plain report: {line:?}\n{last}"
        );
    }

    // A terminal narrower than the line: cut to fit, still one line at the bottom.
    terminal.resize(NARROW, 40);
    let command = rollout_command(&scenario, "e");
    let narrow =
        tokio::task::block_in_place(|| terminal.watch(&command, Duration::from_secs(120), |_| {}));
    assert_eq!(narrow.exit, 0, "{}", narrow.last);
    let cut = narrow.progress_lines();
    assert!(
        cut.iter().any(|l| l.contains("new healthy")),
        "no tally on the narrow terminal: {cut:#?}"
    );
    terminal.resize(WIDTH, 40);

    // Nothing extra with -q or --json, in the same terminal.
    for (version, flag) in [("c", "-q"), ("d", "--json")] {
        let command =
            rollout_command(&scenario, version).replacen(BINARY, &format!("{BINARY} {flag}"), 1);
        let watched = tokio::task::block_in_place(|| {
            terminal.watch(&command, Duration::from_secs(120), |_| {})
        });
        assert_eq!(watched.exit, 0, "{flag}:\n{}", watched.last);
        let drawn: Vec<&String> = watched
            .samples
            .iter()
            .filter(|screen| screen.lines().any(is_progress_line))
            .collect();
        assert!(
            drawn.is_empty(),
            "{flag} drew a progress line:\n{}",
            drawn[0]
        );
        let printed = watched.output();
        match flag {
            "-q" => assert!(printed.is_empty(), "-q printed {printed:#?}"),
            // JSON on stdout, the plain report on stderr: the same terminal shows both.
            _ => assert!(
                printed.iter().any(|l| l.starts_with('{'))
                    && printed
                        .iter()
                        .all(|l| l.starts_with('{') || is_plain_report_line(l)),
                "--json printed more than its JSON lines and the plain report: {printed:#?}"
            ),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_in_a_terminal_rolls_back_and_leaves_a_clean_screen() {
    let Some((_machine, scenario, terminal)) = terminal_on_example("terminal-int", WIDTH).await
    else {
        return;
    };
    let before = scenario.app_containers().await;
    let command = rollout_command(&scenario, "b");
    let mut pressed = false;
    let watched = tokio::task::block_in_place(|| {
        terminal.watch(&command, Duration::from_secs(120), |screen| {
            // Once the new containers are being created or watched: before any old one is touched.
            let early = screen
                .lines()
                .any(|l| is_progress_line(l) && (l.contains(" scale ") || l.contains(" health ")));
            if early && !pressed {
                terminal.ctrl_c();
                pressed = true;
            }
        })
    });
    assert!(
        pressed,
        "never saw the progress line to press Ctrl-C on:\n{}",
        watched.last
    );
    let last = &watched.last;
    assert_eq!(
        watched.exit, 130,
        "Ctrl-C should roll back, exit 130:\n{last}"
    );
    assert!(last.contains("rolled back"), "{last}");
    watched.progress_lines();
    let after = containers::list(&scenario.project, APP).await;
    let ids = |list: &[containers::Container]| {
        let mut ids: Vec<String> = list.iter().map(|c| c.id.clone()).collect();
        ids.sort();
        ids
    };
    assert_eq!(
        ids(&after),
        ids(&before),
        "the old containers should be all that is left"
    );
}

/// A terminal in the repository, set to run the demo with the binary built here under a project
/// name of the tests' own. `None`: skipped (said loudly).
async fn terminal_for_demo(name: &str) -> Option<(MutexGuard<'static, ()>, String, Tmux)> {
    if !tmux::available() {
        return None;
    }
    let machine = begin().await?;
    let project = project_name(name);
    let env = with_engine(vec![("REROLL", BINARY), ("DEMO_PROJECT", &project)]);
    let terminal = Tmux::start(name, &repo_root(), WIDTH, 50, &env);
    Some((machine, project, terminal))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_in_a_terminal() {
    let Some((_machine, _project, terminal)) = terminal_for_demo("demo-terminal").await else {
        return;
    };
    let watched = tokio::task::block_in_place(|| {
        terminal.watch("examples/demo/run.sh", Duration::from_secs(300), |_| {})
    });
    let last = &watched.last;
    assert_eq!(watched.exit, 0, "the demo failed:\n{last}");
    let progress = watched.progress_lines();
    assert!(
        progress.iter().any(|l| l.contains("new healthy")),
        "the demo's reroll showed no progress line: {progress:#?}\n{last}"
    );
    let reroll_row = last
        .lines()
        .find(|l| l.trim_start().starts_with("docker reroll "))
        .unwrap_or_else(|| panic!("no result table:\n{last}"));
    let failed: Vec<&str> = reroll_row.split_whitespace().skip(2).take(1).collect();
    assert_eq!(
        failed,
        ["0"],
        "docker reroll failed requests: {reroll_row}\n{last}"
    );
    assert!(
        last.contains("<- docker reroll returned"),
        "no timeline:\n{last}"
    );
    assert!(last.contains("demo: cleaning up"), "{last}");
}

/// Ctrl-C while the demo's reroll runs: the reroll rolls back, the demo removes its project.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_stops_the_demo_and_it_cleans_up() {
    let Some((_machine, project, terminal)) = terminal_for_demo("demo-interrupted").await else {
        return;
    };
    let mut pressed = false;
    let watched = tokio::task::block_in_place(|| {
        terminal.watch("examples/demo/run.sh", Duration::from_secs(300), |screen| {
            let rerolling = screen.contains("== 2/2") && screen.lines().any(is_progress_line);
            if rerolling && !pressed {
                terminal.ctrl_c();
                pressed = true;
            }
        })
    });
    let last = &watched.last;
    assert!(
        pressed,
        "the demo's reroll never showed its progress line:\n{last}"
    );
    assert_eq!(
        watched.exit, 130,
        "Ctrl-C should end the demo with 130:\n{last}"
    );
    assert!(last.contains("rolling back: interrupted"), "{last}");
    assert!(last.contains("demo: cleaning up"), "{last}");
    watched.progress_lines();
    let root = repo_root();
    let label = format!("label=com.docker.compose.project={project}");
    let left = docker_ok(&["ps", "--all", "--quiet", "--filter", &label], &root).await;
    assert!(left.trim().is_empty(), "the demo left containers: {left}");
    let networks = docker_ok(&["network", "ls", "--quiet", "--filter", &label], &root).await;
    assert!(
        networks.trim().is_empty(),
        "the demo left networks: {networks}"
    );
}

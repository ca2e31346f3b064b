//! The steps and checks the scenarios share: the documented command, a rollout under load, and
//! what a correct outcome looks like.

use std::time::Duration;

use super::census::{Census, Headcount};
use super::cmd::Finished;
use super::containers::{self, Container, assert_exactly};
use super::load::{Load, Tally};
use super::readme::documented_command;
use super::report;
use super::scenario::{APP, Scenario};
use super::tool;

/// Longest a rollout may take before the test gives up on it.
pub const ROLL_LIMIT: Duration = Duration::from_secs(120);
/// Longest a load may run: every test stops it well before.
pub const LOAD_LIMIT: Duration = Duration::from_secs(180);
/// Steady traffic before and after a change, so that both versions get requests.
pub const SETTLE: Duration = Duration::from_millis(1500);

/// The environment that deploys version b of the demo app.
pub const VERSION_B: [(&str, &str); 1] = [("APP_VERSION", "b")];

/// The reroll arguments the example's README documents.
pub fn documented_args(scenario: &Scenario) -> Vec<String> {
    let mut documented = documented_command(scenario.dir());
    // What picks the engine (`DOCKER_REROLL_ENGINE=podman`) is already set when it matches.
    documented
        .env
        .retain(|(k, v)| !super::engine::env().any(|(ek, ev)| ek == k && ev == v));
    assert_eq!(
        documented.env,
        [("APP_VERSION".to_owned(), "b".to_owned())],
        "the README should deploy version b"
    );
    documented.args
}

/// The documented options without the service: a stack rollout of every changed service.
pub fn stack_args(scenario: &Scenario) -> Vec<String> {
    let mut args = documented_args(scenario);
    args.pop().expect("no service in the README command");
    args
}

pub fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// The documented arguments with `extra` options put before the service name.
pub fn with_options(documented: &[String], extra: &[&str]) -> Vec<String> {
    let (service, options) = documented
        .split_last()
        .expect("no service in the README command");
    let mut args = options.to_vec();
    args.extend(extra.iter().map(|s| s.to_string()));
    args.push(service.clone());
    args
}

/// Runs the tool to completion under load; returns its result and what the load saw.
pub async fn roll_under_load(scenario: &Scenario, args: &[String]) -> (Finished, Tally) {
    roll_under_load_with(scenario, args, &[]).await
}

/// [`roll_under_load`], with more environment for the tool.
pub async fn roll_under_load_with(
    scenario: &Scenario,
    args: &[String],
    extra_env: &[(&str, &str)],
) -> (Finished, Tally) {
    let load = Load::start(scenario.addr(), LOAD_LIMIT);
    tokio::time::sleep(SETTLE).await;
    let mut env = scenario.env();
    env.extend(VERSION_B);
    env.extend(extra_env);
    let finished = tool::run(scenario.dir(), &strs(args), &env, ROLL_LIMIT).await;
    tokio::time::sleep(SETTLE).await;
    (finished, load.stop().await)
}

/// [`roll_under_load`], with a census of the app's containers from before the tool starts until
/// the load has stopped.
pub async fn roll_counted(scenario: &Scenario, args: &[String]) -> (Finished, Tally, Headcount) {
    let census = Census::start(&scenario.project, APP).await;
    let (finished, tally) = roll_under_load(scenario, args).await;
    (finished, tally, census.stop().await)
}

pub fn assert_exit(finished: &Finished, code: i32, what: &str) {
    assert_eq!(
        finished.code,
        Some(code),
        "{what}: expected exit code {code}\n{}",
        finished.transcript()
    );
}

pub async fn assert_no_failures(scenario: &Scenario, tally: &Tally, what: &str) {
    assert!(
        tally.total >= 300,
        "{what}: too few requests to judge: {tally}"
    );
    if tally.failed > 0 {
        panic!(
            "{what}: {} failed requests: {tally}\n--- what the deployment logged ---\n{}",
            tally.failed,
            scenario.proxy_logs().await
        );
    }
}

pub fn assert_only_old(before: &[Container], after: &[Container]) {
    assert_eq!(
        containers::ids(before),
        containers::ids(after),
        "the old containers should be all that is left, untouched\nbefore: {before:#?}\nafter: {after:#?}"
    );
    assert_exactly(after, before.len(), "a");
}

/// The documented arguments for another service.
pub fn with_service(documented: &[String], service: &str) -> Vec<String> {
    let mut args = documented.to_vec();
    *args.last_mut().expect("no service in the README command") = service.to_owned();
    args
}

/// Ctrl-C while the new containers of a slow release (written as the scenario's override) are
/// still `starting`, under load: exit 130, no failed request, the old containers untouched.
pub async fn interrupt_rolls_back(scenario: &Scenario, before: &[Container], what: &str) {
    signal_rolls_back(scenario, before, what, ("INT", 130)).await;
}

/// Like `interrupt_rolls_back`, with another signal to the tool's process group and the exit code
/// it must end with.
pub async fn signal_rolls_back(
    scenario: &Scenario,
    before: &[Container],
    what: &str,
    (signal, code): (&str, i32),
) {
    let args = documented_args(scenario);
    let load = Load::start(scenario.addr(), LOAD_LIMIT);
    tokio::time::sleep(SETTLE).await;
    let mut env = scenario.env();
    env.extend(VERSION_B);
    let running = tool::spawn(scenario.dir(), &strs(&args), &env);
    let all = before.len() * 2;
    containers::wait_for_count(&scenario.project, APP, all, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    running.signal_group(signal);
    let finished = running.finish(Duration::from_secs(60)).await;
    tokio::time::sleep(SETTLE).await;
    let tally = load.stop().await;

    report(&format!(
        "{what}: tool {:.1}s; load: {tally}",
        finished.elapsed.as_secs_f64()
    ));
    assert_exit(&finished, code, what);
    assert_no_failures(scenario, &tally, what).await;
    assert_only_old(before, &scenario.app_containers().await);
}

/// The documented command rolls the started scenario's `replicas` to version b under load: exit 0,
/// no failed request, both versions answered, exactly the new containers left. Returns the
/// tool's result for further checks.
pub async fn documented_rollout_succeeds(
    scenario: &Scenario,
    replicas: usize,
    name: &str,
) -> Finished {
    let args = documented_args(scenario);
    let (finished, tally) = roll_under_load(scenario, &args).await;

    report(&format!(
        "{name}: tool {:.1}s; load: {tally}",
        finished.elapsed.as_secs_f64()
    ));
    assert_exit(&finished, 0, name);
    assert_no_failures(scenario, &tally, name).await;
    assert!(
        tally.answered("a") > 0 && tally.answered("b") > 0,
        "both versions should have answered: {tally}"
    );
    assert_exactly(&scenario.app_containers().await, replicas, "b");
    finished
}

/// A release that never turns healthy (written as the scenario's override), rolled with the
/// documented command and a short health timeout under load: exit 1, no failed request, the
/// release never served, the old containers untouched. `extra_env` goes to the tool.
#[allow(dead_code)] // the Podman and Compose v1 tests
pub async fn rolls_back_never_healthy(
    scenario: &Scenario,
    before: &[Container],
    what: &str,
    extra_env: &[(&str, &str)],
) {
    let args = with_options(&documented_args(scenario), &["--healthcheck-timeout", "8s"]);
    let (finished, tally) = roll_under_load_with(scenario, &args, extra_env).await;

    report(&format!(
        "{what}: tool {:.1}s; load: {tally}",
        finished.elapsed.as_secs_f64()
    ));
    assert_exit(&finished, 1, what);
    assert_no_failures(scenario, &tally, what).await;
    assert_eq!(
        tally.answered("b"),
        0,
        "{what}: the broken release served: {tally}"
    );
    assert_only_old(before, &scenario.app_containers().await);
}

/// The documented command once per version of `versions` (after `a`), each rollout under its own
/// load: exit 0, no failed request, both versions answered, exactly `replicas` new containers
/// left. `label` starts each report line.
#[allow(dead_code)] // tests/proxies.rs and tests/caddy_nginx.rs
pub async fn rollouts_in_a_row(
    scenario: &Scenario,
    versions: &[&str],
    replicas: usize,
    label: &str,
) {
    let args = documented_args(scenario);
    let mut previous = "a";
    for &version in versions {
        let load = Load::start(scenario.addr(), LOAD_LIMIT);
        tokio::time::sleep(SETTLE).await;
        let mut env = scenario.env();
        env.push(("APP_VERSION", version));
        let finished = tool::run(scenario.dir(), &strs(&args), &env, ROLL_LIMIT).await;
        tokio::time::sleep(SETTLE).await;
        let tally = load.stop().await;

        let what = format!("{label} {previous} -> {version}");
        report(&format!(
            "{what}: tool {:.1}s; load: {tally}",
            finished.elapsed.as_secs_f64()
        ));
        assert_exit(&finished, 0, &what);
        assert_no_failures(scenario, &tally, &what).await;
        assert!(
            tally.answered(previous) > 0 && tally.answered(version) > 0,
            "{what}: both versions should have answered: {tally}"
        );
        assert_exactly(&scenario.app_containers().await, replicas, version);
        previous = version;
    }
}

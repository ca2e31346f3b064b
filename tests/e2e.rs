//! End-to-end proof against a real Docker engine: the examples in `examples/`, a real proxy under
//! a steady load, and the built binary. Every rollout must fail zero requests (but `order:
//! stop-first`, whose gap is only measured).
//!
//! Needs a reachable engine with Compose v2 (tests/setup.sh installs everything). Without one
//! these tests fail; `REROLL_SKIP_E2E=1` skips them with a warning, except when `CI` is set.

#[path = "e2e/mod.rs"]
mod harness;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use harness::cmd::{command, docker_ok, run};
use harness::containers::{self, assert_exactly};
use harness::http::get_once;
use harness::load::Load;
use harness::plugin::{create_context, install_plugins};
use harness::preflight::begin;
use harness::releases::{
    EXITS_AT_START, NEVER_HEALTHY, ONE_AT_A_TIME, ONLY_THE_FIRST_NEW_CONTAINER_SERVES, SLOW_START,
    THREE_REPLICAS_ONE_AT_A_TIME, fixed_host_port, slow_start_one_at_a_time,
};
use harness::report;
use harness::scenario::{APP, Scenario, free_port};
use harness::steps::{
    LOAD_LIMIT, ROLL_LIMIT, SETTLE, VERSION_B, assert_exit, assert_no_failures, assert_only_old,
    documented_args, documented_rollout_succeeds, interrupt_rolls_back, roll_counted,
    roll_under_load, signal_rolls_back, stack_args, strs, with_options, with_service,
};
use harness::tool;

async fn rollout_with_drain(replicas: usize) {
    let Some(_machine) = begin().await else {
        return;
    };
    let name = format!("rollout{replicas}");
    let scenario = Scenario::start("haproxy", &name, replicas).await;
    documented_rollout_succeeds(&scenario, replicas, &name).await;
}

/// Scenario 1: the documented HAProxy recipe rolls one replica without a failed request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolls_one_replica_without_failed_requests() {
    rollout_with_drain(1).await;
}

/// Scenario 1: … and four.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolls_four_replicas_without_failed_requests() {
    rollout_with_drain(4).await;
}

/// What rolling a release under load left: the scenario, its containers before, the tool's
/// result, what the load saw and the census of the app's containers.
struct Rolled {
    scenario: Scenario,
    before: Vec<containers::Container>,
    finished: harness::cmd::Finished,
    tally: harness::load::Tally,
    census: harness::census::Headcount,
}

/// `replicas` of `a`, then a roll to `release` (a compose override) with the documented command
/// and these `options`.
async fn roll_release(name: &str, replicas: usize, release: &str, options: &[&str]) -> Rolled {
    let scenario = Scenario::start("haproxy", name, replicas).await;
    let before = scenario.app_containers().await;
    scenario.write_override(release);
    let args = with_options(&documented_args(&scenario), options);
    let (finished, tally, census) = roll_counted(&scenario, &args).await;
    report(&format!(
        "{name}: tool {:.1}s; {census}; load: {tally}",
        finished.elapsed.as_secs_f64()
    ));
    Rolled {
        scenario,
        before,
        finished,
        tally,
        census,
    }
}

/// Scenario 2: a release that never turns healthy is rolled back at the health timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolls_back_a_release_that_never_turns_healthy() {
    let Some(_machine) = begin().await else {
        return;
    };
    let Rolled {
        scenario,
        before,
        finished,
        tally,
        ..
    } = roll_release(
        "neverhealthy",
        2,
        NEVER_HEALTHY,
        &["--healthcheck-timeout", "8s"],
    )
    .await;

    assert_exit(&finished, 1, "never healthy");
    assert_no_failures(&scenario, &tally, "never healthy").await;
    assert_eq!(
        tally.answered("b"),
        0,
        "the proxy routed to the unhealthy release: {tally}"
    );
    assert_only_old(&before, &scenario.app_containers().await);
}

/// Scenario 3: a release whose container exits at start fails fast, not at the health timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fails_fast_when_the_new_container_exits() {
    let Some(_machine) = begin().await else {
        return;
    };
    let Rolled {
        scenario,
        before,
        finished,
        tally,
        ..
    } = roll_release(
        "exits",
        2,
        EXITS_AT_START,
        &["--healthcheck-timeout", "100s"],
    )
    .await;

    assert_exit(&finished, 1, "exits at start");
    assert!(
        finished.elapsed < Duration::from_secs(30),
        "an exited container should fail the rollout at once, not at the 100 s timeout: {}",
        finished.transcript()
    );
    assert_no_failures(&scenario, &tally, "exits at start").await;
    assert_only_old(&before, &scenario.app_containers().await);
}

/// Scenario 4: Ctrl-C while waiting for health rolls back and exits 130.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupt_during_health_wait_rolls_back() {
    let Some(_machine) = begin().await else {
        return;
    };
    let scenario = Scenario::start("haproxy", "sigint", 2).await;
    let before = scenario.app_containers().await;
    scenario.write_override(SLOW_START);
    // The new ones are `starting` for 6 s.
    interrupt_rolls_back(&scenario, &before, "sigint").await;
}

/// The terminal went away (an SSH session dropped) while the new containers start: SIGHUP to the
/// whole process group, the `docker` children included, rolls back as SIGINT does.
#[tokio::test]
async fn hangup_during_health_wait_rolls_back() {
    let Some(_machine) = begin().await else {
        return;
    };
    let scenario = Scenario::start("haproxy", "sighup", 2).await;
    let before = scenario.app_containers().await;
    scenario.write_override(SLOW_START);
    signal_rolls_back(&scenario, &before, "sighup", ("HUP", 129)).await;
}

/// Rolls `release` on `replicas` under load, kills the tool (-9) once the service has `kill_at`
/// containers, runs it again and checks that the second run finishes: exit 0, the replicas all
/// new, 0 failed requests.
async fn killed_then_rerun(name: &str, replicas: usize, release: &str, kill_at: usize) {
    let scenario = Scenario::start("haproxy", name, replicas).await;
    scenario.write_override(release);
    let args = documented_args(&scenario);
    let load = Load::start(scenario.addr(), LOAD_LIMIT);
    tokio::time::sleep(SETTLE).await;

    let mut env = scenario.env();
    env.extend(VERSION_B);
    let running = tool::spawn(scenario.dir(), &strs(&args), &env);
    containers::wait_for_count(&scenario.project, APP, kill_at, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    running.kill_hard();
    let killed_group = running.pid;
    let killed = running.finish(Duration::from_secs(10)).await;
    let second = tool::run(scenario.dir(), &strs(&args), &env, ROLL_LIMIT).await;
    // Not part of the crash: what the dead tool left running must not outlive the test.
    tool::kill_process_group(killed_group);
    tokio::time::sleep(SETTLE).await;
    let tally = load.stop().await;

    report(&format!(
        "{name}: second run {:.1}s; load: {tally}",
        second.elapsed.as_secs_f64()
    ));
    assert_eq!(
        killed.code, None,
        "the first run should have died of SIGKILL"
    );
    assert_exit(&second, 0, "second run after kill -9");
    assert_no_failures(&scenario, &tally, "kill -9 and rerun").await;
    assert_exactly(&scenario.app_containers().await, replicas, "b");
}

/// Scenario 5: after the tool is killed (-9) while waiting for health, running it again finishes
/// the rollout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_recovers_from_a_killed_one() {
    let Some(_machine) = begin().await else {
        return;
    };
    killed_then_rerun("kill9", 2, SLOW_START, 4).await;
}

/// … and in batches of one: killed in the second batch (one old container kept stopped, one new
/// serving, one starting), the next run removes the stopped one and finishes from there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_recovers_from_one_killed_between_batches() {
    let Some(_machine) = begin().await else {
        return;
    };
    killed_then_rerun("kill9batch", 3, &slow_start_one_at_a_time(), 5).await;
}

/// Scenario 6: a second run while one is running is refused (exit 2); the first one finishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_a_concurrent_run() {
    let Some(_machine) = begin().await else {
        return;
    };
    let scenario = Scenario::start("haproxy", "concurrent", 2).await;
    scenario.write_override(SLOW_START);
    let args = documented_args(&scenario);
    let load = Load::start(scenario.addr(), LOAD_LIMIT);
    tokio::time::sleep(SETTLE).await;

    let mut env = scenario.env();
    env.extend(VERSION_B);
    let first = tool::spawn(scenario.dir(), &strs(&args), &env);
    containers::wait_for_count(&scenario.project, APP, 4, Duration::from_secs(60)).await;
    let second = tool::run(scenario.dir(), &strs(&args), &env, Duration::from_secs(60)).await;
    let first = first.finish(ROLL_LIMIT).await;
    tokio::time::sleep(SETTLE).await;
    let tally = load.stop().await;

    report(&format!(
        "concurrent: second refused after {:.1}s, first {:.1}s; load: {tally}",
        second.elapsed.as_secs_f64(),
        first.elapsed.as_secs_f64()
    ));
    assert_exit(&second, 2, "second, concurrent run");
    assert_exit(&first, 0, "first run");
    assert_no_failures(&scenario, &tally, "concurrent run").await;
    assert_exactly(&scenario.app_containers().await, 2, "b");
}

/// Scenario 7: the first deploy of a service that is not running returns once it is healthy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_deploy_returns_once_healthy() {
    let Some(_machine) = begin().await else {
        return;
    };
    let scenario = Scenario::new("haproxy", "firstdeploy");
    scenario
        .compose_ok(&["up", "--detach", "haproxy"], &[])
        .await;
    assert!(scenario.app_containers().await.is_empty());
    let args = documented_args(&scenario);
    let mut env = scenario.env();
    env.extend(VERSION_B);

    let finished = tool::run(scenario.dir(), &strs(&args), &env, ROLL_LIMIT).await;
    let right_after = scenario.app_containers().await;

    report(&format!(
        "firstdeploy: tool {:.1}s",
        finished.elapsed.as_secs_f64()
    ));
    assert_exit(&finished, 0, "first deploy");
    assert_exactly(&right_after, 1, "b");
    scenario.wait_until_served().await;
}

/// Scenario 8: with one of two old containers exited, the rollout ends with one new container
/// (as many as were running) and nothing else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolls_when_an_old_container_has_exited() {
    let Some(_machine) = begin().await else {
        return;
    };
    let scenario = Scenario::start("haproxy", "exited", 2).await;
    let old = scenario.app_containers().await;
    docker_ok(&["stop", &old[0].id], Path::new("/")).await;
    // Let the proxy notice, so that the load measures the rollout and not this stop.
    tokio::time::sleep(Duration::from_secs(2)).await;
    scenario.wait_until_served().await;
    let args = documented_args(&scenario);

    let (finished, tally) = roll_under_load(&scenario, &args).await;

    report(&format!(
        "exited: tool {:.1}s; load: {tally}",
        finished.elapsed.as_secs_f64()
    ));
    assert_exit(&finished, 0, "with an exited old container");
    assert_no_failures(&scenario, &tally, "with an exited old container").await;
    assert_exactly(&scenario.app_containers().await, 1, "b");
}

/// Scenario 9: bad input is refused with exit 2 before anything changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_bad_input_without_changing_anything() {
    let Some(_machine) = begin().await else {
        return;
    };
    let scenario = Scenario::new("haproxy", "badinput");
    let fixed_port = free_port();
    // Two services that cannot scale: one with a fixed name, one with a fixed host port.
    scenario.write_override(&format!(
        r#"
services:
  named:
    image: busybox:1.36
    init: true
    command: ["sleep", "3600"]
    container_name: {project}-named
  ported:
    image: busybox:1.36
    init: true
    command: ["sleep", "3600"]
    ports:
      - "{fixed_port}:80"
"#,
        project = scenario.project
    ));
    scenario
        .compose_ok(&["up", "--detach", "--wait"], &[])
        .await;
    let before = containers::project_ids(&scenario.project).await;
    let args = documented_args(&scenario);
    let mut env = scenario.env();
    env.extend(VERSION_B);

    let no_env = None;
    let cases = [
        ("unknown service", with_service(&args, "nosuch"), no_env),
        ("container_name", with_service(&args, "named"), no_env),
        ("fixed host port", with_service(&args, "ported"), no_env),
        (
            "missing compose file",
            with_options(&args, &["--file", "/nonexistent/compose.yaml"]),
            no_env,
        ),
        (
            "unreachable daemon",
            args.clone(),
            Some(("DOCKER_HOST", "tcp://127.0.0.1:1")),
        ),
    ];
    for (what, case_args, extra_env) in cases {
        let mut case_env = env.clone();
        case_env.extend(extra_env);
        let finished = tool::run(scenario.dir(), &strs(&case_args), &case_env, ROLL_LIMIT).await;
        report(&format!("badinput: {what}: exit {:?}", finished.code));
        assert_exit(&finished, 2, what);
        assert_eq!(
            containers::project_ids(&scenario.project).await,
            before,
            "{what}: containers changed"
        );
    }
}

/// Scenario 10: the harness is not blind: a plain `docker compose up -d` of a new version, which
/// recreates the containers in place, fails requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_compose_up_fails_requests() {
    let Some(_machine) = begin().await else {
        return;
    };
    let scenario = Scenario::start("haproxy", "blind", 2).await;
    let load = Load::start(scenario.addr(), LOAD_LIMIT);
    tokio::time::sleep(SETTLE).await;

    scenario.compose_ok(&["up", "--detach"], &VERSION_B).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let tally = load.stop().await;

    report(&format!(
        "plain compose up -d (must fail requests): {tally}"
    ));
    assert!(
        tally.failed > 0,
        "plain `docker compose up -d` showed no failed request: the load cannot see downtime: {tally}"
    );
    assert!(tally.answered("b") > 0, "version b never answered: {tally}");
}

/// The drain recipe is what makes the rollout safe, and the load sees it: the same rollout
/// without the pre-stop drain and waits stops old containers the proxy still routes to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollout_without_the_drain_recipe_fails_requests() {
    let Some(_machine) = begin().await else {
        return;
    };
    let scenario = Scenario::start("haproxy", "nodrain", 2).await;
    // Without the example's drain and proxy settings.
    scenario.write_override("services:\n  app:\n    x-reroll: !reset {}\n");
    let bare = [APP.to_owned()];

    let (finished, tally) = roll_under_load(&scenario, &bare).await;

    report(&format!("no drain (must fail requests): {tally}"));
    assert_exit(&finished, 0, "rollout without drain");
    assert!(
        tally.failed > 0,
        "a rollout without the drain recipe showed no failed request: the load cannot see a \
         container stopped while in rotation: {tally}"
    );
}

/// The engine the tests run on.
fn engine() -> String {
    std::env::var("DOCKER_HOST").unwrap_or("unix:///var/run/docker.sock".into())
}

/// `docker GLOBALS reroll …` (the README's command) rolls two replicas to version b under load,
/// without a failed request, in a private Docker config: the plugin, Compose, a context
/// `reroll-e2e` for the engine, and as the current context a dead one, so that any call that
/// ignored the globals fails. The shell's DOCKER_HOST and DOCKER_CONTEXT are `inherited`.
async fn roll_as_plugin(name: &str, globals: &[&str], inherited: &[(&str, &str)]) {
    let Some(_machine) = begin().await else {
        return;
    };
    let scenario = &Scenario::start("haproxy", name, 2).await;
    let config = tempfile::tempdir().expect("no temporary directory");
    install_plugins(config.path());
    create_context(config.path(), "reroll-e2e", &engine(), false).await;
    create_context(config.path(), "reroll-e2e-dead", "tcp://127.0.0.1:1", true).await;
    let config_env = [(
        "DOCKER_CONFIG",
        config.path().to_str().expect("path not UTF-8"),
    )];

    let mut argv: Vec<String> = globals.iter().map(|s| s.to_string()).collect();
    argv.push("reroll".into());
    argv.extend(documented_args(scenario));
    let mut env = scenario.env();
    env.extend(VERSION_B);
    env.extend(config_env);
    let mut plugin = command("docker", &argv, scenario.dir(), &env);
    plugin
        .env_remove("DOCKER_HOST")
        .env_remove("DOCKER_CONTEXT")
        .envs(inherited.iter().copied());
    let load = Load::start(scenario.addr(), LOAD_LIMIT);
    tokio::time::sleep(SETTLE).await;
    let finished = run(plugin, ROLL_LIMIT).await;
    tokio::time::sleep(SETTLE).await;
    let tally = load.stop().await;

    let what = format!("{inherited:?} docker {} reroll", globals.join(" "));
    report(&format!(
        "{what}: tool {:.1}s; load: {tally}",
        finished.elapsed.as_secs_f64()
    ));
    assert_exit(&finished, 0, &what);
    assert_no_failures(scenario, &tally, &what).await;
    assert_exactly(&scenario.app_containers().await, 2, "b");
}

/// Scenario 11: as a Docker CLI plugin, `docker --context NAME reroll` works on that context's
/// engine. The CLI's current context is a dead one, so any call that ignored `--context` fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_follows_the_docker_context() {
    roll_as_plugin("context", &["--context", "reroll-e2e"], &[]).await;
}

/// Scenario 11, with a shell whose DOCKER_HOST names no engine: `--context` wins over it, as in
/// Docker's CLI, for every call, Compose and the pre-stop command included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_context_wins_over_a_bogus_docker_host() {
    let bogus = [("DOCKER_HOST", "unix:///nonexistent.sock")];
    roll_as_plugin("ctxhost", &["--context", "reroll-e2e"], &bogus).await;
}

/// Scenario 11, the other way round: `-H ENGINE` wins over a DOCKER_CONTEXT that names no
/// context, for every call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_host_wins_over_a_bogus_docker_context() {
    let bogus = [("DOCKER_CONTEXT", "reroll-e2e-missing")];
    roll_as_plugin("hostctx", &["-H", &engine()], &bogus).await;
}

/// A second changed service beside `app`, not behind the proxy (no `x-reroll:`, so no drain and
/// no proxy check); HAProxy stays unchanged.
const STACK_WORKER: &str = r#"
services:
  worker:
    image: busybox:1.36
    init: true
    command: ["sh", "-c", "echo $$APP_VERSION; exec sleep 100000"]
    environment:
      APP_VERSION: ${APP_VERSION:-a}
    healthcheck:
      test: ["CMD", "sh", "-c", "test ! -e /.dead"]
      interval: 1s
      timeout: 1s
      retries: 2
"#;

/// Issue "whole-stack rollouts": `docker reroll` with no service rolls the two changed services
/// (app, worker) and leaves the unchanged proxy alone; its dry run changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolls_the_changed_services_of_a_stack() {
    let Some(_machine) = begin().await else {
        return;
    };
    let scenario = Scenario::new("haproxy", "stack");
    scenario.write_override(STACK_WORKER);
    scenario
        .compose_ok(&["up", "--detach", "--wait", "--scale", "app=2"], &[])
        .await;
    scenario.wait_until_served().await;
    let proxy_before = containers::list(&scenario.project, "haproxy").await;
    let everything_before = containers::project_ids(&scenario.project).await;

    let options = stack_args(&scenario);
    let mut env = scenario.env();
    env.extend(VERSION_B);
    let mut dry = options.to_vec();
    dry.push("--dry-run".into());
    let planned = tool::run(scenario.dir(), &strs(&dry), &env, ROLL_LIMIT).await;
    assert_exit(&planned, 0, "stack dry run");
    assert!(
        planned.stderr.contains("haproxy: unchanged, skipped"),
        "{}",
        planned.transcript()
    );
    assert_eq!(
        containers::project_ids(&scenario.project).await,
        everything_before,
        "a dry run changes nothing"
    );

    let (finished, tally) = roll_under_load(&scenario, &options).await;
    report(&format!(
        "stack: tool {:.1}s; load: {tally}",
        finished.elapsed.as_secs_f64()
    ));
    assert_exit(&finished, 0, "stack rollout");
    assert_no_failures(&scenario, &tally, "stack rollout").await;
    assert_exactly(&scenario.app_containers().await, 2, "b");
    let workers = containers::list(&scenario.project, "worker").await;
    assert_eq!(workers.len(), 1, "one worker: {workers:#?}");
    assert!(workers[0].is_running_healthy(), "{workers:#?}");
    assert!(
        !containers::ids(&workers)
            .iter()
            .any(|id| everything_before.contains(id)),
        "the worker was rolled"
    );
    assert_eq!(
        containers::ids(&containers::list(&scenario.project, "haproxy").await),
        containers::ids(&proxy_before),
        "the unchanged proxy keeps its container"
    );
}

// Issue #4: `deploy.update_config` (parallelism, order, failure_action) on the real engine. Each
// rollout is watched by a census of Docker's events, which sees every container that runs at
// the same moment as another, however briefly.

/// Batches of one: three replicas are rolled one container at a time, never more than one
/// container beyond the three, without a failed request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolls_three_replicas_one_at_a_time() {
    let Some(_machine) = begin().await else {
        return;
    };
    let rolled = roll_release("onebyone", 3, ONE_AT_A_TIME, &[]).await;
    let (census, tally) = (&rolled.census, &rolled.tally);

    assert_exit(&rolled.finished, 0, "parallelism 1");
    census.assert_at_most_running(4, "parallelism 1 on 3 replicas");
    assert!(
        census.max_running >= 4,
        "start-first: a new container should have run beside the 3 old ones (a blind census?)\n{}",
        census.timeline()
    );
    assert_eq!(
        census.ids("create").len(),
        3,
        "one new container per batch, three batches\n{}",
        census.timeline()
    );
    assert_no_failures(&rolled.scenario, tally, "parallelism 1").await;
    let after = rolled.scenario.app_containers().await;
    assert_exactly(&after, 3, "b");
    let survivors = containers::ids(&after);
    assert!(
        containers::ids(&rolled.before)
            .iter()
            .all(|old| !survivors.contains(old)),
        "an old container is left: {after:#?}"
    );
}

/// `order: stop-first` rolls a service that publishes a fixed host port, at the price of a gap;
/// without it, the same service is refused and nothing changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_first_rolls_a_service_with_a_fixed_host_port() {
    let Some(_machine) = begin().await else {
        return;
    };
    let fixed_port = free_port();
    let scenario = Scenario::new("haproxy", "stopfirst");
    scenario.write_override(&fixed_host_port(fixed_port, false));
    scenario.up(1).await;
    let everything_before = containers::project_ids(&scenario.project).await;
    let args = documented_args(&scenario);
    let mut env = scenario.env();
    env.extend(VERSION_B);

    let refused = tool::run(scenario.dir(), &strs(&args), &env, ROLL_LIMIT).await;
    report(&format!(
        "stopfirst: start-first with a fixed host port: exit {:?}",
        refused.code
    ));
    assert_exit(&refused, 2, "a fixed host port, start-first");
    assert_eq!(
        containers::project_ids(&scenario.project).await,
        everything_before,
        "a refused rollout changed containers"
    );

    scenario.write_override(&fixed_host_port(fixed_port, true));
    let (finished, tally, census) = roll_counted(&scenario, &args).await;

    report(&format!(
        "stopfirst: tool {:.1}s; {census}; load ({} failed during the gap): {tally}",
        finished.elapsed.as_secs_f64(),
        tally.failed
    ));
    assert_exit(&finished, 0, "a fixed host port, stop-first");
    let output = format!("{}{}", finished.stdout, finished.stderr);
    assert!(
        output.to_lowercase().contains("gap"),
        "the output should say that stop-first means a gap: {}",
        finished.transcript()
    );
    census.assert_at_most_running(
        1,
        "stop-first: the old container stops before the new one starts",
    );
    assert_exactly(&scenario.app_containers().await, 1, "b");
    let direct = SocketAddr::from((Ipv4Addr::LOCALHOST, fixed_port));
    let answer = get_once(direct)
        .await
        .unwrap_or_else(|e| panic!("nothing answers on the fixed port {fixed_port}: {e}"));
    assert_eq!(
        (answer.status, String::from_utf8_lossy(&answer.body).trim()),
        (200, "b"),
        "the fixed port {fixed_port} should serve the new version"
    );
    assert_eq!(
        containers::project_ids(&scenario.project).await.len(),
        everything_before.len(),
        "the proxy and one app container, nothing left over"
    );
}

/// `failure_action: rollback` after a good batch and a failing one: the first batch's new
/// container serves, the second never turns healthy; the old container the first batch retired
/// is started again and every new one removed, without a failed request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_second_batch_rolls_back_the_first() {
    let Some(_machine) = begin().await else {
        return;
    };
    let rolled = roll_release("batchrollback", 3, ONLY_THE_FIRST_NEW_CONTAINER_SERVES, &[]).await;
    let (census, tally) = (&rolled.census, &rolled.tally);

    assert_exit(&rolled.finished, 1, "a failing second batch");
    assert_eq!(
        census.ids("create").len(),
        2,
        "parallelism 1: one new container in the good batch, one in the failing batch, no third\n{}",
        census.timeline()
    );
    let old = containers::ids(&rolled.before);
    let retired: Vec<&str> = census
        .ids("die")
        .into_iter()
        .filter(|id| old.iter().any(|o| o == id))
        .collect();
    assert_eq!(
        retired.len(),
        1,
        "the good batch should have retired exactly one old container\n{}",
        census.timeline()
    );
    assert!(
        census.ids("start").contains(retired[0]),
        "the rollback should have started the retired old container again\n{}",
        census.timeline()
    );
    assert_no_failures(&rolled.scenario, tally, "a failing second batch").await;
    assert!(
        tally.answered("b") > 0,
        "the good batch's new container never served: {tally}"
    );
    assert_only_old(&rolled.before, &rolled.scenario.app_containers().await);
}

/// `failure_action: pause` after a good batch and a failing one: the failed batch is undone, the
/// good one stays (one new and two old containers serve, nothing else is left), and the next run of
/// a good release finishes the rollout. Zero failed requests throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_rollout_serves_old_and_new_and_the_next_run_finishes_it() {
    let Some(_machine) = begin().await else {
        return;
    };
    let paused = roll_release(
        "batchpause",
        3,
        ONLY_THE_FIRST_NEW_CONTAINER_SERVES,
        &["--failure-action", "pause"],
    )
    .await;
    assert_exit(&paused.finished, 1, "a paused rollout");
    assert!(
        paused.finished.stderr.contains("paused after batch 2 of 3"),
        "{}",
        paused.finished.transcript()
    );
    assert_no_failures(&paused.scenario, &paused.tally, "a paused rollout").await;
    let after = paused.scenario.app_containers().await;
    let serving = |version: &str| {
        after
            .iter()
            .filter(|c| c.is_running_healthy() && c.version.as_deref() == Some(version))
            .count()
    };
    assert_eq!(
        (serving("a"), serving("b"), after.len()),
        (2, 1, 3),
        "two old and one new container should serve, and nothing else be left: {after:#?}"
    );

    paused.scenario.write_override(ONE_AT_A_TIME);
    let args = documented_args(&paused.scenario);
    let (finished, tally, census) = roll_counted(&paused.scenario, &args).await;
    report(&format!(
        "batchpause, second run: tool {:.1}s; {census}; load: {tally}",
        finished.elapsed.as_secs_f64()
    ));
    assert_exit(&finished, 0, "the run after a paused one");
    census.assert_at_most_running(4, "the run after a paused one");
    assert_no_failures(&paused.scenario, &tally, "the run after a paused one").await;
    assert_exactly(&paused.scenario.app_containers().await, 3, "b");
}

/// A stack rollout after `deploy.replicas` went from 2 to 3 in the file, in batches of one: three
/// new containers, never more than one beyond them, without a failed request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stack_rollout_goes_from_two_to_three_replicas_one_at_a_time() {
    let Some(_machine) = begin().await else {
        return;
    };
    let scenario = Scenario::start("haproxy", "replicas", 2).await;
    scenario.write_override(THREE_REPLICAS_ONE_AT_A_TIME);

    let (finished, tally, census) = roll_counted(&scenario, &stack_args(&scenario)).await;

    report(&format!(
        "replicas: tool {:.1}s; {census}; load: {tally}",
        finished.elapsed.as_secs_f64()
    ));
    assert_exit(&finished, 0, "stack rollout from 2 to 3 replicas");
    census.assert_at_most_running(4, "parallelism 1 towards 3 replicas");
    assert_no_failures(&scenario, &tally, "stack rollout from 2 to 3 replicas").await;
    assert_exactly(&scenario.app_containers().await, 3, "b");
}

//! End-to-end proof of verified transitions behind proxies that tell what they route to: the real
//! Traefik (Docker provider, API) and HAProxy through its runtime API. Retries off in both, under
//! the same steady load as `tests/e2e.rs`, every failed request counted.
//!
//! Same needs and opt-out as `tests/e2e.rs` (`REROLL_SKIP_E2E=1`, refused when `CI` is set).

#[path = "e2e/mod.rs"]
#[allow(dead_code)] // shared with tests/e2e.rs, which uses the rest
mod harness;

use std::time::Duration;

use harness::cmd::docker_ok;
use harness::containers::{self, assert_exactly};
use harness::load::Load;
use harness::preflight::begin;
use harness::releases::NEVER_HEALTHY;
use harness::report;
use harness::scenario::Scenario;
use harness::steps::{
    LOAD_LIMIT, ROLL_LIMIT, SETTLE, VERSION_B, assert_exit, assert_no_failures, assert_only_old,
    documented_args, roll_under_load, rollouts_in_a_row, strs,
};
use harness::tool;

/// The documented Traefik recipe on `replicas`, under load.
async fn traefik_rollout(replicas: usize) {
    let Some(_machine) = begin().await else {
        return;
    };
    let name = format!("traefik{replicas}");
    let scenario = Scenario::start("traefik", &name, replicas).await;
    let args = documented_args(&scenario);

    let (finished, tally) = roll_under_load(&scenario, &args).await;

    report(&format!(
        "{name}: tool {:.1}s; load: {tally}",
        finished.elapsed.as_secs_f64()
    ));
    assert_exit(&finished, 0, &name);
    assert!(
        finished
            .stderr
            .contains("verifying every step with traefik service app@docker"),
        "the Traefik recipe should verify with the Traefik API:\n{}",
        finished.transcript()
    );
    assert_no_failures(&scenario, &tally, &name).await;
    assert!(
        tally.answered("a") > 0 && tally.answered("b") > 0,
        "both versions should have answered: {tally}"
    );
    assert_exactly(&scenario.app_containers().await, replicas, "b");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traefik_rolls_one_replica_without_failed_requests() {
    traefik_rollout(1).await;
}

/// `docker compose up -d --wait`, then the tool at once (a CI job's deploy): Traefik may take the
/// fresh container in only a moment after it is healthy (its provider throttle), so the tool
/// waits for that rather than refusing the settings as wrong.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traefik_right_after_compose_up_waits_for_the_proxy_to_take_the_container_in() {
    let Some(_machine) = begin().await else {
        return;
    };
    let scenario = Scenario::start("traefik", "traefikfresh", 1).await;
    scenario
        .compose_ok(&["up", "--detach", "--wait"], &VERSION_B)
        .await;
    let args = documented_args(&scenario);
    let mut env = scenario.env();
    env.push(("APP_VERSION", "c"));
    let finished = tool::run(scenario.dir(), &strs(&args), &env, ROLL_LIMIT).await;
    report(&format!(
        "traefik right after compose up: tool {:.1}s, {}",
        finished.elapsed.as_secs_f64(),
        if finished
            .stderr
            .contains("waiting up to 10.00s for the proxy to take")
        {
            "waited for Traefik to take the fresh container in"
        } else {
            "Traefik had it already"
        }
    ));
    // Before the wait, this was exit 2 whenever Traefik had dropped the old container and not
    // yet taken the new one in ("the proxy has no service 'app@docker'"), as seen by hand; the
    // window is a throttle period wide, so not every run falls into it.
    assert_exit(&finished, 0, "a rollout right after compose up");
    assert_exactly(&scenario.app_containers().await, 1, "c");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traefik_rolls_four_replicas_without_failed_requests() {
    traefik_rollout(4).await;
}

/// Five rollouts in a row behind Traefik, each under its own load: the sleeps this replaces
/// failed requests in 3 of 7 such rollouts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traefik_five_rollouts_in_a_row_fail_no_request() {
    let Some(_machine) = begin().await else {
        return;
    };
    let scenario = Scenario::start("traefik", "traefik5", 2).await;
    rollouts_in_a_row(&scenario, &["b", "c", "d", "e", "f"], 2, "traefik rollout").await;
}

/// A release that never turns healthy, behind Traefik: rolled back, the old containers untouched,
/// no failed request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traefik_broken_release_rolls_back_without_failed_requests() {
    let Some(_machine) = begin().await else {
        return;
    };
    let scenario = Scenario::start("traefik", "traefikbroken", 2).await;
    let before = scenario.app_containers().await;
    scenario.write_override(NEVER_HEALTHY);
    let args = documented_args(&scenario);
    let args = with_flag_values(&args, &[("--healthcheck-timeout", "5s")]);

    let (finished, tally) = roll_under_load(&scenario, &args).await;

    report(&format!(
        "traefik broken release: tool {:.1}s; load: {tally}",
        finished.elapsed.as_secs_f64()
    ));
    assert_exit(&finished, 1, "broken release behind Traefik");
    assert_no_failures(&scenario, &tally, "broken release behind Traefik").await;
    assert_only_old(&before, &scenario.app_containers().await);
}

/// A pre-stop that does not drain: Traefik keeps routing to the old containers. The tool waits
/// `--proxy-timeout`, then keeps them serving rather than cutting their requests, and says so
/// with exit 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traefik_that_keeps_routing_to_old_containers_keeps_them_serving() {
    let Some(_machine) = begin().await else {
        return;
    };
    let scenario = Scenario::start("traefik", "traefikstuck", 2).await;
    let before = containers::ids(&scenario.app_containers().await);
    let args = documented_args(&scenario);
    let args = with_flag_values(
        &args,
        &[("--pre-stop-cmd", "true"), ("--proxy-timeout", "4s")],
    );

    let (finished, tally) = roll_under_load(&scenario, &args).await;

    report(&format!(
        "traefik keeps routing: tool {:.1}s; load: {tally}",
        finished.elapsed.as_secs_f64()
    ));
    assert_exit(&finished, 1, "proxy still routing");
    assert!(
        finished
            .stderr
            .contains("kept serving because the proxy still routed to them"),
        "the report should say why old containers are left:\n{}",
        finished.transcript()
    );
    assert_no_failures(&scenario, &tally, "proxy still routing").await;
    let after = scenario.app_containers().await;
    let old_left: Vec<_> = after.iter().filter(|c| before.contains(&c.id)).collect();
    let new: Vec<_> = after.iter().filter(|c| !before.contains(&c.id)).collect();
    assert_eq!(
        old_left.len(),
        2,
        "both old containers serve on: {after:#?}"
    );
    assert!(
        old_left.iter().all(|c| c.state == "running"),
        "the old containers kept serving: {after:#?}"
    );
    assert_eq!(new.len(), 2, "and the two new ones: {after:#?}");
    assert!(
        new.iter()
            .all(|c| c.is_running_healthy() && c.version.as_deref() == Some("b"))
    );
}

/// Bad proxy settings are refused before anything changes (exit 2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_proxy_settings_change_nothing() {
    let Some(_machine) = begin().await else {
        return;
    };
    let scenario = Scenario::start("traefik", "traefikbad", 1).await;
    let before = containers::project_ids(&scenario.project).await;
    let args = documented_args(&scenario);
    let mut env = scenario.env();
    env.extend(VERSION_B);
    let cases = [
        (
            "unknown Traefik service",
            with_flag_values(&args, &[("--proxy-service", "nosuch")]),
            "has no service 'nosuch@docker'",
        ),
        (
            "nothing listens",
            with_flag_values(&args, &[("--proxy-url", "http://127.0.0.1:1")]),
            "cannot reach the Traefik API",
        ),
        (
            "not a service of the project",
            with_flag_values(&args, &[("--proxy-url", "http://nosuch:8080")]),
            "names service 'nosuch', which has no running container",
        ),
    ];
    for (what, case_args, expected) in cases {
        let finished = tool::run(scenario.dir(), &strs(&case_args), &env, ROLL_LIMIT).await;
        report(&format!(
            "bad proxy settings: {what}: exit {:?}",
            finished.code
        ));
        assert_exit(&finished, 2, what);
        assert!(
            finished.stderr.contains(expected),
            "{what}: expected {expected:?} in:\n{}",
            finished.transcript()
        );
        assert_eq!(
            containers::project_ids(&scenario.project).await,
            before,
            "{what}: containers changed"
        );
    }

    // Without the example's `x-reroll:`, the proxy flags alone: no drain to wait for.
    scenario.write_override("services:\n  app:\n    x-reroll: !reset {}\n");
    let flags = [
        "--proxy",
        "traefik",
        "--proxy-url",
        "http://traefik:8080",
        "app",
    ];
    let finished = tool::run(scenario.dir(), &flags, &env, ROLL_LIMIT).await;
    assert_exit(&finished, 2, "proxy without a drain");
    assert!(
        finished.stderr.contains("give --pre-stop-cmd"),
        "{}",
        finished.transcript()
    );
    assert_eq!(containers::project_ids(&scenario.project).await, before);
}

/// The harness is not blind behind Traefik: a plain `docker compose up -d` fails requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traefik_plain_compose_up_fails_requests() {
    let Some(_machine) = begin().await else {
        return;
    };
    let scenario = Scenario::start("traefik", "traefikblind", 2).await;
    let load = Load::start(scenario.addr(), LOAD_LIMIT);
    tokio::time::sleep(SETTLE).await;

    scenario.compose_ok(&["up", "--detach"], &VERSION_B).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let tally = load.stop().await;

    report(&format!(
        "traefik, plain compose up -d (must fail requests): {tally}"
    ));
    assert!(
        tally.failed > 0,
        "plain `docker compose up -d` behind Traefik showed no failed request: {tally}"
    );
}

/// HAProxy with health checks disabled on the old containers' servers keeps them UP whatever
/// the drain marker says: the tool waits for the runtime API to show them down, then keeps them
/// serving (exit 1), with no failed request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_server_forced_up_keeps_its_old_container_serving() {
    let Some(_machine) = begin().await else {
        return;
    };
    let scenario = Scenario::start("haproxy", "forcedup", 2).await;
    let before = scenario.app_containers().await;
    let api = haproxy_api(&scenario).await;
    let states = haproxy_ask(&api, "show servers state app").await;
    let old_addresses = container_addresses(&containers::ids(&before)).await;
    let mut forced = Vec::new();
    for line in states.lines().filter(|l| !l.starts_with('#')) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() > 5 && old_addresses.iter().any(|a| a == fields[4]) {
            let answer = haproxy_ask(&api, &format!("disable health app/{}", fields[3])).await;
            assert!(answer.trim().is_empty(), "disable health: {answer}");
            forced.push(fields[3].to_owned());
        }
    }
    assert_eq!(forced.len(), 2, "the old containers' servers: {states}");
    let args = documented_args(&scenario);
    let args = with_flag_values(&args, &[("--proxy-timeout", "4s")]);

    let (finished, tally) = roll_under_load(&scenario, &args).await;

    report(&format!(
        "haproxy forced up: tool {:.1}s; load: {tally}",
        finished.elapsed.as_secs_f64()
    ));
    assert_exit(&finished, 1, "HAProxy server forced up");
    assert!(
        finished.stderr.contains("haproxy backend app:")
            && finished
                .stderr
                .contains("kept serving because the proxy still routed to them"),
        "the report should show what HAProxy showed and what was kept:\n{}",
        finished.transcript()
    );
    assert_no_failures(&scenario, &tally, "HAProxy server forced up").await;
    let after = scenario.app_containers().await;
    let old_ids = containers::ids(&before);
    let old_left = after.iter().filter(|c| old_ids.contains(&c.id)).count();
    assert_eq!(old_left, 2, "the old containers serve on: {after:#?}");
    let new_b = after
        .iter()
        .filter(|c| !old_ids.contains(&c.id) && c.version.as_deref() == Some("b"))
        .count();
    assert_eq!(new_b, 2, "the new containers serve too: {after:#?}");
}

/// `args` with each flag's value replaced, or the flag added before the service.
fn with_flag_values(args: &[String], flags: &[(&str, &str)]) -> Vec<String> {
    let mut args = args.to_vec();
    for (flag, value) in flags {
        match args.iter().position(|a| a == flag) {
            Some(at) => args[at + 1] = (*value).to_owned(),
            None => {
                let service = args.pop().expect("no service in the README command");
                args.extend([(*flag).to_owned(), (*value).to_owned(), service]);
            }
        }
    }
    args
}

/// Where the scenario's HAProxy publishes its runtime API on loopback.
async fn haproxy_api(scenario: &Scenario) -> String {
    let port = scenario.compose_ok(&["port", "haproxy", "9999"], &[]).await;
    port.stdout.trim().to_owned()
}

async fn haproxy_ask(api: &str, line: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(api)
        .await
        .unwrap_or_else(|e| panic!("cannot reach HAProxy's runtime API at {api}: {e}"));
    stream
        .write_all(format!("{line}\n").as_bytes())
        .await
        .expect("cannot write to the runtime API");
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .await
        .expect("cannot read the runtime API");
    answer
}

async fn container_addresses(ids: &[String]) -> Vec<String> {
    let mut args = vec![
        "inspect",
        "--format",
        "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}",
    ];
    args.extend(ids.iter().map(String::as_str));
    let here = std::path::Path::new("/");
    let out = docker_ok(&args, here).await;
    out.split_whitespace().map(str::to_owned).collect()
}

//! End-to-end proof of the Caddy and nginx recipes (`examples/caddy`, `examples/nginx`): the
//! documented command, repeated under a steady load at 1 and 4 replicas, and a broken release
//! rolled back, each with the proxy's retries off and every failed request counted.
//!
//! Same needs and opt-out as `tests/e2e.rs` (`REROLL_SKIP_E2E=1`, refused when `CI` is set).

#[path = "e2e/mod.rs"]
#[allow(dead_code)] // shared with tests/e2e.rs, which uses the rest
mod harness;

use harness::cmd::docker_ok;
use harness::containers::{self, assert_exactly};
use harness::load::Load;
use harness::preflight::begin;
use harness::releases::NEVER_HEALTHY;
use harness::report;
use harness::scenario::Scenario;
use harness::steps::{
    LOAD_LIMIT, SETTLE, assert_exit, assert_no_failures, documented_args, roll_under_load,
    rollouts_in_a_row, rolls_back_never_healthy,
};

/// [`roll_under_load`], its timing and tally reported as `what`.
async fn roll_reported(
    scenario: &Scenario,
    args: &[String],
    what: &str,
) -> (harness::cmd::Finished, harness::load::Tally) {
    let (finished, tally) = roll_under_load(scenario, args).await;
    report(&format!(
        "{what}: tool {:.1}s; load: {tally}",
        finished.elapsed.as_secs_f64()
    ));
    (finished, tally)
}

/// The versions each test rolls through, one rollout after another: a → b → c → d.
const VERSIONS: [&str; 3] = ["b", "c", "d"];

/// The documented command, once per version in [`VERSIONS`], each rollout under its own load:
/// exit 0, no failed request, both versions answered, exactly `replicas` new containers left.
async fn three_rollouts(example: &str, replicas: usize) {
    let Some(_machine) = begin().await else {
        return;
    };
    let name = format!("{example}{replicas}");
    let scenario = Scenario::start(example, &name, replicas).await;
    let label = format!("{example}, {replicas} replicas, rollout");
    rollouts_in_a_row(&scenario, &VERSIONS, replicas, &label).await;
}

/// A release that never turns healthy (and never accepts a connection): rolled back, the old
/// containers untouched, no failed request.
async fn broken_release_rolls_back(example: &str) {
    let Some(_machine) = begin().await else {
        return;
    };
    let scenario = Scenario::start(example, &format!("{example}broken"), 2).await;
    let before = scenario.app_containers().await;
    scenario.write_override(NEVER_HEALTHY);
    rolls_back_never_healthy(
        &scenario,
        &before,
        &format!("{example}: broken release"),
        &[],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caddy_rolls_one_replica_three_times_without_failed_requests() {
    three_rollouts("caddy", 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caddy_rolls_four_replicas_three_times_without_failed_requests() {
    three_rollouts("caddy", 4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caddy_broken_release_rolls_back_without_failed_requests() {
    broken_release_rolls_back("caddy").await;
}

/// The Caddy example drained by a Compose `pre_stop:` hook instead of `pre-stop-cmd`: the hook
/// (with its own environment, user and working directory) logs to a volume and creates the drain
/// marker; the app logs to the same volume when it gets SIGTERM.
const DRAINED_BY_A_HOOK: &str = r#"
services:
  app:
    volumes:
      - state:/state
    command:
      - sh
      - -c
      - |
        rm -f /.dead
        mkdir -p /www/cgi-bin
        echo "$$APP_VERSION" >/www/index.html
        printf '#!/bin/sh\nif [ -e /.dead ]; then printf "HTTP/1.0 503 Draining\\r\\n\\r\\n"; else printf "HTTP/1.0 200 OK\\r\\n\\r\\nok\\n"; fi\n' >/www/cgi-bin/health
        chmod +x /www/cgi-bin/health
        trap 'echo "stopped $$HOSTNAME" >>/state/log; exit 0' TERM
        httpd -f -p 80 -h /www &
        wait
    pre_stop:
      - command: ["sh", "-c", "echo \"pre_stop $$HOSTNAME $$DRAIN_BY in $$(pwd)\" >>log && touch /.dead"]
        user: root
        working_dir: /state
        environment:
          DRAIN_BY: hook
    x-reroll: !override
      pre-stop-wait-until-unhealthy: true
      wait-after-unhealthy: 1s
      wait-after-healthy: 1s
volumes:
  state:
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caddy_drained_by_a_compose_pre_stop_hook_without_failed_requests() {
    let Some(_machine) = begin().await else {
        return;
    };
    let scenario = Scenario::new("caddy", "caddyhook");
    scenario.write_override(DRAINED_BY_A_HOOK);
    scenario.up(2).await;
    let old = scenario.app_containers().await;
    let args = documented_args(&scenario);

    let (finished, tally) =
        roll_reported(&scenario, &args, "caddy drained by a pre_stop hook").await;
    assert_exit(&finished, 0, "drained by a pre_stop hook");
    assert!(
        finished.stderr.contains("running the pre_stop hooks on"),
        "{}",
        finished.transcript()
    );
    assert_no_failures(&scenario, &tally, "drained by a pre_stop hook").await;
    let new = scenario.app_containers().await;
    assert_exactly(&new, 2, "b");
    let log = docker_ok(
        &["exec", "--", &new[0].id, "cat", "/state/log"],
        scenario.dir(),
    )
    .await;
    for container in &old {
        let host = &container.id[..12];
        let lines: Vec<&str> = log.lines().collect();
        let hooked = lines
            .iter()
            .position(|l| *l == format!("pre_stop {host} hook in /state"));
        let stopped = lines.iter().position(|l| *l == format!("stopped {host}"));
        match (hooked, stopped) {
            (Some(hooked), Some(stopped)) => assert!(
                hooked < stopped,
                "{host}: the hook ran after the stop:\n{log}"
            ),
            _ => panic!("{host}: the hook or the stop left no line:\n{log}"),
        }
    }
    assert_eq!(
        containers::ids(&new)
            .iter()
            .filter(|id| log.contains(&id[..12]))
            .count(),
        0,
        "no hook ran in a new container:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_rolls_one_replica_three_times_without_failed_requests() {
    three_rollouts("nginx", 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_rolls_four_replicas_three_times_without_failed_requests() {
    three_rollouts("nginx", 4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_broken_release_rolls_back_without_failed_requests() {
    broken_release_rolls_back("nginx").await;
}

/// The harness is not blind behind Caddy and nginx: a plain `docker compose up -d` of a new
/// version fails requests there.
async fn plain_compose_up_fails_requests(example: &str) {
    let Some(_machine) = begin().await else {
        return;
    };
    let scenario = Scenario::start(example, &format!("{example}blind"), 2).await;
    let load = Load::start(scenario.addr(), LOAD_LIMIT);
    tokio::time::sleep(SETTLE).await;
    scenario
        .compose_ok(&["up", "--detach"], &[("APP_VERSION", "b")])
        .await;
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    let tally = load.stop().await;

    report(&format!(
        "{example}, plain compose up -d (must fail requests): {tally}"
    ));
    assert!(
        tally.failed > 0,
        "plain `docker compose up -d` behind {example} showed no failed request: {tally}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caddy_plain_compose_up_fails_requests() {
    plain_compose_up_fails_requests("caddy").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_plain_compose_up_fails_requests() {
    plain_compose_up_fails_requests("nginx").await;
}

/// Ends the health watcher in the nginx container (busybox has no pkill here).
const STOP_THE_WATCHER: &str = r#"for p in /proc/[0-9]*; do n=${p#/proc/}; [ "$n" = "$$" ] && continue; grep -q watch-upstreams "$p/cmdline" 2>/dev/null && kill "$n"; done; true"#;

/// nginx that never takes the new containers in (its health watcher stopped): the tool asks
/// nginx, not the clock, so it rolls back after `--proxy-timeout`, the old containers serving
/// throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_that_never_routes_to_the_new_containers_rolls_back_without_failed_requests() {
    let Some(_machine) = begin().await else {
        return;
    };
    let scenario = Scenario::start("nginx", "nginxstale", 2).await;
    let before = scenario.app_containers().await;
    scenario
        .compose_ok(&["exec", "-T", "nginx", "sh", "-c", STOP_THE_WATCHER], &[])
        .await;
    let args =
        harness::steps::with_options(&documented_args(&scenario), &["--proxy-timeout", "4s"]);

    let (finished, tally) =
        roll_reported(&scenario, &args, "nginx never routes to the new containers").await;
    assert_exit(&finished, 1, "nginx never routes to the new containers");
    assert!(
        finished.stderr.contains("not routed"),
        "the report should show what nginx answered:\n{}",
        finished.transcript()
    );
    // nginx never routed to them, and says so at once: the rollback must hear that answer,
    // not wait out --proxy-timeout again and then claim nginx still routes to them.
    assert!(
        !finished.stderr.contains("removing them anyway"),
        "the rollback waited for nginx to drop containers it never routed to:\n{}",
        finished.transcript()
    );
    assert_no_failures(
        &scenario,
        &tally,
        "nginx never routes to the new containers",
    )
    .await;
    assert_eq!(tally.answered("b"), 0, "the new release served: {tally}");
    harness::steps::assert_only_old(&before, &scenario.app_containers().await);
}

/// A pre-stop that does not drain: Caddy's checks keep passing, so `/caddy-routes` keeps saying
/// Caddy routes to the old containers. The tool waits `--proxy-timeout`, then keeps them
/// serving rather than cutting their requests, and says so with exit 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caddy_that_keeps_routing_to_old_containers_keeps_them_serving() {
    let Some(_machine) = begin().await else {
        return;
    };
    let scenario = Scenario::start("caddy", "caddystuck", 2).await;
    let before = containers::ids(&scenario.app_containers().await);
    let args = harness::steps::with_options(
        &documented_args(&scenario),
        &["--pre-stop-cmd", "true", "--proxy-timeout", "4s"],
    );

    let (finished, tally) = roll_reported(&scenario, &args, "caddy keeps routing").await;
    assert_exit(&finished, 1, "Caddy still routing");
    assert!(
        finished
            .stderr
            .contains("kept serving because the proxy still routed to them"),
        "{}",
        finished.transcript()
    );
    assert_no_failures(&scenario, &tally, "Caddy still routing").await;
    let after = scenario.app_containers().await;
    let old_left = after.iter().filter(|c| before.contains(&c.id)).count();
    assert_eq!(old_left, 2, "both old containers serve on: {after:#?}");
}

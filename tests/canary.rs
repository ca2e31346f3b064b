//! End-to-end proof of progressive delivery behind the HAProxy example (retries off), under the
//! steady load of `tests/e2e.rs` that counts every failed request: a good release steps canary →
//! 50/50 → full, promoted from a second process, with the share of traffic measured at each step;
//! a release answering 500 to half its requests rolled back by the probe within its step, the
//! time to detection measured; an abort from a second process; a failed bake that starts the old
//! containers again.
//!
//! Same needs and opt-out as `tests/e2e.rs` (`REROLL_SKIP_E2E=1`, refused when `CI` is set).

#[path = "e2e/mod.rs"]
#[allow(dead_code)] // shared with tests/e2e.rs, which uses the rest
mod harness;

use std::time::{Duration, Instant};

use harness::cmd::Finished;
use harness::containers::assert_exactly;
use harness::http;
use harness::load::{Load, Tally};
use harness::preflight::begin;
use harness::report;
use harness::scenario::Scenario;
use harness::steps::{
    LOAD_LIMIT, ROLL_LIMIT, SETTLE, VERSION_B, assert_exit, assert_no_failures, assert_only_old,
    documented_args, roll_under_load, strs, with_options,
};
use harness::tool::{self, Running};

/// How far the measured share of a step may be from k/(N+k): HAProxy's round robin is exact per
/// request, so only the sample's noise and requests in flight at the edges count.
const SHARE_TOLERANCE: f64 = 0.08;
/// How long the share is sampled at a step.
const SHARE_SAMPLE: Duration = Duration::from_secs(4);

/// Release b of the demo app, answering 500 to about half of the requests for its page (a CGI
/// stands in for the page, which busybox httpd runs when there is no index.html); its health
/// check passes, so only the probe can tell.
const HALF_BROKEN: &str = r#"
services:
  app:
    command:
      - sh
      - -c
      - |
        rm -f /.dead
        mkdir -p /www/cgi-bin
        cat >/www/cgi-bin/health <<'CGI'
        #!/bin/sh
        if [ -e /.dead ]; then
          printf 'HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain\r\n\r\ndraining\n'
        else
          printf 'HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nok\n'
        fi
        CGI
        cat >/www/cgi-bin/index.cgi <<'CGI'
        #!/bin/sh
        if [ $$((RANDOM % 2)) -eq 0 ]; then
          printf 'HTTP/1.0 500 Internal Server Error\r\nContent-Type: text/plain\r\n\r\nbroken\n'
        else
          printf 'HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n%s\n' "$$APP_VERSION"
        fi
        CGI
        chmod +x /www/cgi-bin/health /www/cgi-bin/index.cgi
        exec httpd -f -p 80 -h /www
"#;

/// The proxy's address as the probe's URL.
fn probe_url(scenario: &Scenario) -> String {
    format!("http://127.0.0.1:{}/", scenario.port)
}

/// The documented command with canary options.
fn canary_args(scenario: &Scenario, options: &[&str]) -> Vec<String> {
    let url = probe_url(scenario);
    let mut all = vec!["--probe", url.as_str()];
    all.extend(options);
    with_options(&documented_args(scenario), &all)
}

/// `docker reroll ARGS` in the scenario's directory, from a second process, to completion.
async fn second_process(scenario: &Scenario, args: &[&str]) -> Finished {
    tool::run(
        scenario.dir(),
        args,
        &scenario.env(),
        Duration::from_secs(60),
    )
    .await
}

/// Polls `docker reroll status app` until it says `words`; returns what it said. Fails with what
/// the rollout printed if it ends first, or does not get there in time.
async fn wait_for_status(scenario: &Scenario, words: &str, running: &mut Running) -> String {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let status = second_process(scenario, &["status", "app"]).await;
        assert_exit(&status, 0, "docker reroll status");
        if status.stderr.contains(words) {
            return status.stderr;
        }
        let ended = running.exited();
        if ended.is_some() || Instant::now() >= deadline {
            let told = running.end_and_tell().await;
            panic!(
                "the rollout (pid {}) never reached '{words}' ({}); status said: {}\n{told}",
                running.pid,
                if ended.is_some() {
                    "it ended first"
                } else {
                    "not within 90s"
                },
                status.stderr
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// The share of requests version b answered, over sequential requests through the proxy.
async fn measured_share(scenario: &Scenario) -> (f64, u64) {
    let until = Instant::now() + SHARE_SAMPLE;
    let (mut old, mut new) = (0u64, 0u64);
    while Instant::now() < until {
        if let Ok(Ok(response)) =
            tokio::time::timeout(Duration::from_secs(1), http::get_once(scenario.addr())).await
        {
            match String::from_utf8_lossy(&response.body).trim() {
                "a" => old += 1,
                "b" => new += 1,
                _ => {}
            }
        }
    }
    (new as f64 / (old + new).max(1) as f64, old + new)
}

/// At a paused step: the status names it, and b's measured share is within the tolerance of
/// `expected`. Returns the measured share.
async fn check_step(
    scenario: &Scenario,
    running: &mut Running,
    step: &str,
    expected: f64,
    expected_text: &str,
) -> f64 {
    let status = wait_for_status(scenario, step, running).await;
    assert!(
        status.contains(expected_text) && status.contains("waiting for docker reroll promote"),
        "status at {step}: {status}"
    );
    let (share, sampled) = measured_share(scenario).await;
    report(&format!(
        "{step}: measured share of the new version {:.1}% over {sampled} requests, expected {:.1}%",
        share * 100.0,
        expected * 100.0
    ));
    assert!(
        (share - expected).abs() <= SHARE_TOLERANCE,
        "{step}: measured share {share:.3}, expected {expected:.3} ± {SHARE_TOLERANCE}"
    );
    share
}

/// The detection time the report gives: the seconds before "into step".
fn detection_seconds(stderr: &str) -> f64 {
    let at = stderr
        .find("s into ")
        .unwrap_or_else(|| panic!("no detection time in:\n{stderr}"));
    let number: String = stderr[..at]
        .chars()
        .rev()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    number.parse().expect("a number of seconds")
}

/// Every failed request the load counted was the canary's own 500, none the rollout's.
fn only_canary_errors(tally: &Tally, what: &str) {
    assert!(
        tally
            .failure_kinds
            .keys()
            .all(|kind| kind == "status 500: broken"),
        "{what}: a failure other than the canary's 500: {:?}\n{tally}",
        tally.failure_kinds
    );
}

/// A good release goes canary (1 of 3) → 50/50 → full under load, each pause ended by
/// `docker reroll promote` from a second process; 0 failed requests; the share measured at each
/// step; a bake after the last; nothing but the new containers left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_release_steps_canary_half_full_promoted_from_a_second_process() {
    let Some(_machine) = begin().await else {
        return;
    };
    let scenario = Scenario::start("haproxy", "canarygood", 2).await;
    let args = canary_args(
        &scenario,
        &[
            "--steps",
            "1,100%",
            "--step-pause",
            "manual",
            "--bake",
            "3s",
        ],
    );
    let load = Load::start(scenario.addr(), LOAD_LIMIT);
    tokio::time::sleep(SETTLE).await;
    let mut env = scenario.env();
    env.extend(VERSION_B);
    let mut running = tool::spawn(scenario.dir(), &strs(&args), &env);

    let canary = check_step(
        &scenario,
        &mut running,
        "step 1 of 2",
        1.0 / 3.0,
        "(expected share 33%)",
    )
    .await;
    let promoted = second_process(&scenario, &["promote", "app"]).await;
    assert_exit(&promoted, 0, "promote at step 1");
    assert!(
        promoted.stderr.contains("promoted"),
        "{}",
        promoted.transcript()
    );
    let half = check_step(
        &scenario,
        &mut running,
        "step 2 of 2",
        0.5,
        "(expected share 50%)",
    )
    .await;
    let promoted = second_process(&scenario, &["promote", "app"]).await;
    assert_exit(&promoted, 0, "promote at step 2");

    let finished = running.finish(ROLL_LIMIT).await;
    tokio::time::sleep(SETTLE).await;
    let tally = load.stop().await;
    report(&format!(
        "canary good release: tool {:.1}s; shares {:.1}% (1/3) and {:.1}% (1/2); load: {tally}",
        finished.elapsed.as_secs_f64(),
        canary * 100.0,
        half * 100.0
    ));
    assert_exit(&finished, 0, "canary good release");
    for words in [
        "step 1 of 2 passed",
        "step 2 of 2 passed",
        "the bake passed",
        "probe 0 of",
    ] {
        assert!(
            finished.stderr.contains(words),
            "missing '{words}':\n{}",
            finished.transcript()
        );
    }
    assert_no_failures(&scenario, &tally, "canary good release").await;
    assert_exactly(&scenario.app_containers().await, 2, "b");
    let after = second_process(&scenario, &["status", "app"]).await;
    assert!(
        after.stderr.contains("no rollout running"),
        "{}",
        after.transcript()
    );
}

/// A release that answers 500 to half its requests, healthy by its health check: the probe sees
/// it within its step and the rollout rolls back through the drain (exit 1), naming the probe and
/// its numbers. The only failed requests are the canary's own 500s before detection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_answering_500_is_rolled_back_by_the_probe_within_its_step() {
    let Some(_machine) = begin().await else {
        return;
    };
    let scenario = Scenario::start("haproxy", "canarybad", 2).await;
    let args = canary_args(
        &scenario,
        &[
            "--steps",
            "1",
            "--step-pause",
            "60s",
            "--probe-max-error-rate",
            "0.05",
        ],
    );
    let named = format!("probe {} failed: ", probe_url(&scenario));
    half_broken_rolled_back(&scenario, &args, "the probe", &[&named, "first: HTTP 500"]).await;
}

/// Release b ([`HALF_BROKEN`]) rolled with `args` under load: rolled back within its step (exit
/// 1), the report naming the check (`words`) and when it was detected; the only failed requests
/// the canary's own 500s; the old containers untouched.
async fn half_broken_rolled_back(scenario: &Scenario, args: &[String], by: &str, words: &[&str]) {
    let before = scenario.app_containers().await;
    scenario.write_override(HALF_BROKEN);
    let what = format!("canary answering 500, caught by {by}");

    let (finished, tally) = roll_under_load(scenario, args).await;

    let detection = if finished.code == Some(1) {
        detection_seconds(&finished.stderr)
    } else {
        f64::NAN
    };
    report(&format!(
        "{what}: detected {detection:.2}s into the step; tool {:.1}s; load: {tally}",
        finished.elapsed.as_secs_f64()
    ));
    assert_exit(&finished, 1, &what);
    for words in words
        .iter()
        .chain(&["into step 1 of 1 (1 new next to 2 old)"])
    {
        assert!(
            finished.stderr.contains(words),
            "{what}: the report should name the check and its numbers ('{words}'):\n{}",
            finished.transcript()
        );
    }
    assert!(
        detection < 60.0,
        "{what}: detected after the step: {detection}s"
    );
    only_canary_errors(&tally, &what);
    assert_only_old(&before, &scenario.app_containers().await);
}

/// `docker reroll abort` from a second process while the canary is paused: the rollout rolls back
/// through the drain (exit 1) with no failed request; a second rollout meanwhile is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_from_a_second_process_rolls_back_without_failed_requests() {
    let Some(_machine) = begin().await else {
        return;
    };
    let scenario = Scenario::start("haproxy", "canaryabort", 2).await;
    let before = scenario.app_containers().await;
    let args = canary_args(&scenario, &["--steps", "1", "--step-pause", "manual"]);
    let load = Load::start(scenario.addr(), LOAD_LIMIT);
    tokio::time::sleep(SETTLE).await;
    let mut env = scenario.env();
    env.extend(VERSION_B);
    let mut running = tool::spawn(scenario.dir(), &strs(&args), &env);
    wait_for_status(&scenario, "step 1 of 1", &mut running).await;

    let mut second_env = scenario.env();
    second_env.extend(VERSION_B);
    let second = tool::run(
        scenario.dir(),
        &strs(&args),
        &second_env,
        Duration::from_secs(60),
    )
    .await;
    assert_exit(&second, 2, "a second rollout while the canary is paused");
    assert!(
        second.stderr.contains("another docker-reroll"),
        "{}",
        second.transcript()
    );

    let aborted = second_process(&scenario, &["abort", "app"]).await;
    assert_exit(&aborted, 0, "abort");
    let finished = running.finish(ROLL_LIMIT).await;
    tokio::time::sleep(SETTLE).await;
    let tally = load.stop().await;
    report(&format!(
        "canary abort: tool {:.1}s; load: {tally}",
        finished.elapsed.as_secs_f64()
    ));
    assert_exit(&finished, 1, "aborted canary");
    assert!(
        finished.stderr.contains("aborted by docker reroll abort"),
        "{}",
        finished.transcript()
    );
    assert_no_failures(&scenario, &tally, "aborted canary").await;
    assert_only_old(&before, &scenario.app_containers().await);
}

/// Release b answers 500 to half its requests; rolled without steps but with a bake, the probe
/// fails it after the old containers were stopped: those same containers are started again (no
/// pull, no new container), the new ones drained and removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_bake_starts_the_same_old_containers_again() {
    let Some(_machine) = begin().await else {
        return;
    };
    let scenario = Scenario::start("haproxy", "canarybake", 2).await;
    let before = scenario.app_containers().await;
    scenario.write_override(HALF_BROKEN);
    let args = canary_args(
        &scenario,
        &["--bake", "60s", "--probe-max-error-rate", "0.05"],
    );

    let (finished, tally) = roll_under_load(&scenario, &args).await;

    report(&format!(
        "failed bake: tool {:.1}s; load: {tally}",
        finished.elapsed.as_secs_f64()
    ));
    assert_exit(&finished, 1, "failed bake");
    assert!(
        finished.stderr.contains("into the bake") && finished.stderr.contains("first: HTTP 500"),
        "{}",
        finished.transcript()
    );
    only_canary_errors(&tally, "failed bake");
    assert_only_old(&before, &scenario.app_containers().await);
}

/// `docker reroll rollback app` under load, after the tool rolled a → b → c: back to b (its
/// recorded config and pinned image, whatever the environment says now) with 0 failed requests,
/// exactly the two b containers left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_on_demand_rollback_returns_to_the_previous_version_without_failed_requests() {
    let Some(_machine) = begin().await else {
        return;
    };
    let scenario = Scenario::start("haproxy", "canaryrollback", 2).await;
    let pinned = format!("docker-reroll-pin/{}-app:previous", scenario.project);
    let args = documented_args(&scenario);
    for version in ["b", "c"] {
        let mut env = scenario.env();
        env.push(("APP_VERSION", version));
        let finished = tool::run(scenario.dir(), &strs(&args), &env, ROLL_LIMIT).await;
        assert_exit(&finished, 0, &format!("rollout to {version}"));
        if version == "c" {
            assert!(
                finished
                    .stderr
                    .contains(&format!("image pinned as {pinned}")),
                "{}",
                finished.transcript()
            );
        }
    }
    let load = Load::start(scenario.addr(), LOAD_LIMIT);
    tokio::time::sleep(SETTLE).await;
    let finished = second_process(&scenario, &["rollback", "app"]).await;
    tokio::time::sleep(SETTLE).await;
    let tally = load.stop().await;
    report(&format!(
        "on-demand rollback c -> b: tool {:.1}s; load: {tally}",
        finished.elapsed.as_secs_f64()
    ));
    assert_exit(&finished, 0, "rollback");
    assert!(
        finished
            .stderr
            .contains("rolling app back to the version before its last rollout"),
        "{}",
        finished.transcript()
    );
    assert_no_failures(&scenario, &tally, "on-demand rollback").await;
    assert!(
        tally.answered("c") > 0 && tally.answered("b") > 0,
        "both versions should have answered: {tally}"
    );
    assert_exactly(&scenario.app_containers().await, 2, "b");
}

/// The tool killed (kill -9) while the canary is paused: the canary serves on, `status` says a
/// rollout was interrupted, and running the same command again resumes at the next step and
/// finishes, with 0 failed requests throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_canary_survives_the_tool_dying_and_a_rerun_resumes_it() {
    let Some(_machine) = begin().await else {
        return;
    };
    let scenario = Scenario::start("haproxy", "canaryresume", 2).await;
    let args = canary_args(&scenario, &["--steps", "1,100%", "--step-pause", "manual"]);
    let load = Load::start(scenario.addr(), LOAD_LIMIT);
    tokio::time::sleep(SETTLE).await;
    let mut env = scenario.env();
    env.extend(VERSION_B);
    let mut running = tool::spawn(scenario.dir(), &strs(&args), &env);
    wait_for_status(&scenario, "step 1 of 2", &mut running).await;
    let pid = running.pid;
    running.kill_hard();
    let killed = running.finish(Duration::from_secs(30)).await;
    tool::kill_process_group(pid);
    assert_eq!(killed.code, None, "killed: {}", killed.transcript());

    let status = second_process(&scenario, &["status", "app"]).await;
    assert!(
        status
            .stderr
            .contains("no rollout running, but one was interrupted"),
        "{}",
        status.transcript()
    );
    let promote = second_process(&scenario, &["promote", "app"]).await;
    promote.code.filter(|code| *code == 2).unwrap_or_else(|| {
        panic!(
            "promote with no run alive is refused: {}",
            promote.transcript()
        )
    });

    let resumed_args = canary_args(&scenario, &["--steps", "1,100%", "--step-pause", "2s"]);
    let resumed = tool::run(scenario.dir(), &strs(&resumed_args), &env, ROLL_LIMIT).await;
    tokio::time::sleep(SETTLE).await;
    let tally = load.stop().await;
    report(&format!(
        "canary resumed after kill -9: tool {:.1}s; load: {tally}",
        resumed.elapsed.as_secs_f64()
    ));
    assert_exit(&resumed, 0, "resumed canary");
    assert!(
        resumed.stderr.contains("an earlier run was interrupted")
            && resumed
                .stderr
                .contains("step 1 of 1: 2 new container(s) next to 2 old"),
        "the rerun resumes at the next step:\n{}",
        resumed.transcript()
    );
    assert_no_failures(&scenario, &tally, "canary resumed after kill -9").await;
    assert_exactly(&scenario.app_containers().await, 2, "b");
}

/// The same release judged by HAProxy's own counts for the canary's server (`show stat` 5xx),
/// no probe: rolled back within its step, the check and its numbers named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_answering_500_is_rolled_back_by_haproxys_counts() {
    let Some(_machine) = begin().await else {
        return;
    };
    let scenario = Scenario::start("haproxy", "canaryproxy", 2).await;
    let args = with_options(
        &documented_args(&scenario),
        &[
            "--steps",
            "1",
            "--step-pause",
            "60s",
            "--proxy-max-error-rate",
            "0.05",
        ],
    );
    let named = "the proxy's counts for the new containers failed: ";
    half_broken_rolled_back(&scenario, &args, "HAProxy's counts", &[named]).await;
}

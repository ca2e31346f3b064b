//! The `docker-reroll` binary against a fake `docker` (tests/fake/docker.rs) that records every
//! call and answers from a script: what it calls, in which order, and how it ends, for the happy
//! path, every failure, signals, the lock, recovery after kill -9, and each refusal.
//!
//! Run with `cargo test --test cli`; no Docker needed.

#[path = "cli/canary.rs"]
mod canary;
#[path = "cli/orphans.rs"]
mod orphans;
#[path = "cli/pre_stop_hooks.rs"]
mod pre_stop_hooks;
#[path = "cli/scenario.rs"]
mod scenario;
#[path = "cli/stack.rs"]
mod stack;
#[path = "cli/update_config.rs"]
mod update_config;

use std::time::Duration;

use scenario::{Compose, FAKE, NEW, NEW_HASH, NEW2, OLD, OLD2, Scenario, on, short};
use serde_json::{Value, json};

const STARTING: (&str, Option<&str>) = ("running", Some("starting"));
const HEALTHY: (&str, Option<&str>) = ("running", Some("healthy"));
const UNHEALTHY: (&str, Option<&str>) = ("running", Some("unhealthy"));

fn up(total: u32) -> String {
    format!("compose up --detach --no-deps --no-recreate --scale web={total} -- web")
}

/// A rollout whose new container turns healthy at once, by event.
fn quick() -> Scenario {
    Scenario::new().event_once_seen(NEW, "health_status: healthy", json!({}))
}

/// A rollout whose new container never turns healthy.
fn stuck() -> Scenario {
    Scenario::new().looks(NEW, &[STARTING])
}

/// The pre-stop template that runs the fake, so its calls are recorded too.
fn pre_stop(args: &str) -> String {
    format!("{FAKE} {args}")
}

// ---------------------------------------------------------------------------------------------
// Rolling

#[test]
fn rolls_one_container_to_a_new_one_and_retires_the_old() {
    let world = quick();
    let template = pre_stop("exec {id} sh -c 'echo {short_id} {name} {service}.{project}'");
    let run = world.run(&["--pre-stop-cmd", &template, "web"]);
    run.assert_exit(0).assert_stderr("1 new container(s) serve");
    assert_eq!(
        run.mutating(),
        [
            up(2),
            format!("exec {OLD} sh -c echo {} shop-web-1 web.shop", short(OLD)),
            format!("stop -- {OLD}"),
            format!("rm -- {OLD}"),
        ],
        "{run}"
    );
    let pre_stop = run
        .calls
        .iter()
        .find(|c| c.words().first() == Some(&"exec"))
        .unwrap();
    assert_eq!(
        pre_stop.args,
        [
            "exec",
            OLD,
            "sh",
            "-c",
            &format!("echo {} shop-web-1 web.shop", short(OLD))
        ],
        "one argument per word, the quoted one whole"
    );
    assert!(
        !world.journal_path().exists(),
        "the journal is removed after success"
    );
    assert!(
        run.took < Duration::from_secs(5),
        "healthy by event, not after polls\n{run}"
    );
}

#[test]
fn json_output_is_one_object_per_line_ending_in_finish() {
    let run = quick().run(&["--json", "web"]);
    run.assert_exit(0);
    let events: Vec<Value> = run
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}\n{run}")))
        .collect();
    assert_eq!(events.first().unwrap()["event"], "start", "{run}");
    let finish = events.last().unwrap();
    assert_eq!(finish["event"], "finish", "{run}");
    assert_eq!(finish["exit_code"], 0);
    assert_eq!(finish["outcome"], "done");
    let roles: Vec<(&str, Value)> = events
        .iter()
        .filter(|e| e["event"] == "containers")
        .map(|e| (e["role"].as_str().unwrap(), e["ids"].clone()))
        .collect();
    assert_eq!(roles, [("old", json!([OLD])), ("new", json!([NEW]))]);
}

#[test]
fn waits_for_old_containers_to_drain_after_the_pre_stop_command() {
    let run = quick().drains().run(&[
        "--pre-stop-cmd",
        &pre_stop("exec {id} touch /.dead"),
        "--pre-stop-wait-until-unhealthy",
        "--drain-timeout",
        "20s",
        "web",
    ]);
    run.assert_exit(0);
    assert_eq!(
        run.mutating(),
        [
            up(2),
            format!("exec {OLD} touch /.dead"),
            format!("stop -- {OLD}"),
            format!("rm -- {OLD}")
        ],
        "{run}"
    );
    assert!(
        !run.stderr.contains("did not turn unhealthy"),
        "drained, not timed out\n{run}"
    );
    assert!(run.took < Duration::from_secs(10), "{run}");
}

#[test]
fn a_first_deploy_scales_to_the_configured_replicas_and_retires_nothing() {
    let run = Scenario::empty()
        .web_config("deploy", json!({ "replicas": 2 }))
        .creates(NEW, 1, &[HEALTHY])
        .creates(NEW2, 2, &[HEALTHY])
        .run(&["web"]);
    run.assert_exit(0)
        .assert_stderr("first deploy of 2 container(s)");
    assert_eq!(run.mutating(), [up(2)], "{run}");
}

/// The service runs in a Swarm stack of the project's name: Compose would start it a second time.
#[test]
fn a_service_that_runs_in_a_swarm_stack_is_refused_without_swarm() {
    let run = Scenario::empty()
        .rule(
            on("service ls --filter label=com.docker.stack.namespace=shop")
                .stdout("shop_web\t2/2\n"),
        )
        .creates(NEW, 1, &[HEALTHY])
        .run(&["web"]);
    run.assert_refused("Swarm service 'shop_web'", "--swarm");
    assert!(run.mutating().is_empty(), "{run}");
}

#[test]
fn stopped_leftovers_are_removed_before_the_scale() {
    let run = quick()
        .old(OLD2, 3)
        .looks(OLD2, &[("exited", None)])
        .run(&["web"]);
    run.assert_exit(0)
        .assert_stderr("1 stopped leftover(s) to remove");
    assert_eq!(
        run.mutating(),
        [
            format!("rm --force -- {OLD2}"),
            up(2),
            format!("stop -- {OLD}"),
            format!("rm -- {OLD}")
        ],
        "{run}"
    );
}

#[test]
fn new_containers_without_a_healthcheck_must_keep_running_for_the_wait() {
    let run = Scenario::new()
        .looks(NEW, &[("running", None)])
        .run(&["--wait", "1s", "web"]);
    run.assert_exit(0).assert_stderr("no healthcheck");
    assert_eq!(
        run.mutating(),
        [up(2), format!("stop -- {OLD}"), format!("rm -- {OLD}")],
        "{run}"
    );
    assert!(run.took >= Duration::from_secs(1), "{run}");
}

#[test]
fn a_new_container_without_a_healthcheck_that_exits_during_the_wait_rolls_back() {
    let run = Scenario::new()
        .looks(NEW, &[("running", None), ("exited", None)])
        .event_once_seen(NEW, "die", json!({ "exitCode": "3" }))
        .run(&["--wait", "20s", "web"]);
    run.assert_exit(1)
        .assert_stderr(&format!("new container {} exited with code 3", short(NEW)))
        .assert_untouched(&[OLD]);
    assert!(run.took < Duration::from_secs(10), "{run}");
}

#[test]
fn old_containers_that_do_not_drain_in_time_are_retired_with_a_warning() {
    let run = quick().run(&[
        "--pre-stop-cmd",
        &pre_stop("exec {id} touch /.dead"),
        "--pre-stop-wait-until-unhealthy",
        "--drain-timeout",
        "1s",
        "web",
    ]);
    run.assert_exit(0).assert_stderr(&format!(
        "old container(s) {} did not turn unhealthy in time",
        short(OLD)
    ));
    assert_eq!(
        run.mutating(),
        [
            up(2),
            format!("exec {OLD} touch /.dead"),
            format!("stop -- {OLD}"),
            format!("rm -- {OLD}")
        ],
        "{run}"
    );
}

#[test]
fn a_failed_pre_stop_command_is_reported_and_the_rollout_goes_on() {
    let run = quick()
        .drains()
        .rule(on(&format!("exec {OLD}")).fails("OCI runtime exec failed: touch: not found"))
        .run(&[
            "--pre-stop-cmd",
            &pre_stop("exec {id} touch /.dead"),
            "--pre-stop-wait-until-unhealthy",
            "--drain-timeout",
            "20s",
            "web",
        ]);
    run.assert_exit(0)
        .assert_stderr(&format!("pre-stop failed on {}", short(OLD)))
        .assert_stderr("OCI runtime exec failed");
    assert_eq!(run.called("stop"), [format!("stop -- {OLD}")], "{run}");
    assert!(
        run.took < Duration::from_secs(10),
        "not waited on to drain\n{run}"
    );
}

#[test]
fn quiet_prints_nothing_on_success() {
    let run = quick().run(&["-q", "web"]);
    run.assert_exit(0);
    assert_eq!(run.stderr, "", "{run}");
}

#[test]
fn json_refusals_end_in_a_finish_event_too() {
    let run = Scenario::new().run(&["--json", "api"]);
    run.assert_refused("no service 'api'", "check the name");
    let finish: Value = serde_json::from_str(run.stdout.trim()).expect("one JSON line");
    assert_eq!(
        (finish["event"].clone(), finish["exit_code"].clone()),
        (json!("finish"), json!(2))
    );
}

// ---------------------------------------------------------------------------------------------
// Failing before the old containers are touched: roll back

#[test]
fn a_failed_scale_removes_what_it_created() {
    let run = Scenario::new()
        .rule(
            on("compose up")
                .set(&["up"])
                .fails("Error response from daemon: no space left on device"),
        )
        .run(&["web"]);
    run.assert_exit(1)
        .assert_stderr("the scale failed: Error response from daemon: no space left on device")
        .assert_stderr("rolled back")
        .assert_untouched(&[OLD]);
    assert_eq!(
        run.mutating(),
        [
            up(2),
            format!("stop -- {NEW}"),
            format!("rm --force -- {NEW}")
        ],
        "{run}"
    );
}

#[test]
fn an_unhealthy_new_container_rolls_back_at_once() {
    let run = Scenario::new().looks(NEW, &[STARTING, UNHEALTHY]).run(&[
        "--healthcheck-timeout",
        "30s",
        "web",
    ]);
    run.assert_exit(1)
        .assert_stderr(&format!("new container {} is unhealthy", short(NEW)))
        .assert_stderr("last health checks: \"exit 1: check says unhealthy\"")
        .assert_stderr("last log lines")
        .assert_untouched(&[OLD]);
    assert_eq!(run.called("rm"), [format!("rm --force -- {NEW}")], "{run}");
    assert!(
        run.took < Duration::from_secs(15),
        "not at the 30s timeout\n{run}"
    );
}

#[test]
fn an_unhealthy_event_rolls_back_without_waiting_for_a_poll() {
    // Inspect never shows it: only the event stream can tell.
    let run = stuck()
        .event_once_seen(NEW, "health_status: unhealthy", json!({}))
        .run(&["--healthcheck-timeout", "30s", "web"]);
    run.assert_exit(1)
        .assert_stderr(&format!("new container {} is unhealthy", short(NEW)))
        .assert_untouched(&[OLD]);
    assert_eq!(run.called("rm"), [format!("rm --force -- {NEW}")], "{run}");
    assert!(run.took < Duration::from_secs(15), "{run}");
}

#[test]
fn a_new_container_that_exits_rolls_back() {
    let run = Scenario::new()
        .looks(NEW, &[STARTING, ("exited", Some("unhealthy"))])
        .event_once_seen(NEW, "die", json!({ "exitCode": "3" }))
        .run(&["--healthcheck-timeout", "30s", "web"]);
    run.assert_exit(1)
        .assert_stderr(&format!("new container {} exited with code 3", short(NEW)))
        .assert_untouched(&[OLD]);
    assert_eq!(run.called("rm"), [format!("rm --force -- {NEW}")], "{run}");
}

#[test]
fn a_scale_that_creates_another_number_than_asked_rolls_back_all_it_created() {
    let run = Scenario::new().creates(NEW2, 3, &[HEALTHY]).run(&["web"]);
    run.assert_exit(1)
        .assert_stderr("the scale created 2 container(s)")
        .assert_stderr("where 1 were asked for")
        .assert_untouched(&[OLD]);
    assert_eq!(
        run.called("rm"),
        [format!("rm --force -- {NEW} {NEW2}")],
        "{run}"
    );
}

#[test]
fn a_new_container_not_healthy_in_time_rolls_back() {
    let run = stuck().run(&["--healthcheck-timeout", "1s", "web"]);
    run.assert_exit(1)
        .assert_stderr(&format!("not healthy in time: {} is starting", short(NEW)))
        .assert_untouched(&[OLD]);
    assert_eq!(run.called("rm"), [format!("rm --force -- {NEW}")], "{run}");
    assert!(
        run.took >= Duration::from_secs(1) && run.took < Duration::from_secs(10),
        "{run}"
    );
}

// ---------------------------------------------------------------------------------------------
// Failing to clean up: exit 3, say what is left

#[test]
fn a_failed_retire_exits_3_naming_what_is_left_and_the_fix() {
    let world = quick()
        .rule(on(&format!("stop -- {OLD}")).fails("Error response from daemon: permission denied"));
    let run = world.run(&["web"]);
    run.assert_exit(3)
        .assert_stderr(
            "retiring the old ones failed: Error response from daemon: permission denied",
        )
        .assert_stderr(&format!("left running: {OLD}"))
        .assert_stderr(&format!("fix: docker rm -f {OLD}"));
    assert!(
        world.journal_path().exists(),
        "the journal stays for the next run\n{run}"
    );
}

#[test]
fn a_failed_rollback_exits_3_naming_what_is_left_and_the_fix() {
    let run = Scenario::new()
        .looks(NEW, &[STARTING, UNHEALTHY])
        .rule(on("rm --force").fails("Error response from daemon: removal already in progress"))
        .run(&["web"]);
    run.assert_exit(3)
        .assert_stderr(
            "rolling back failed too: Error response from daemon: removal already in progress",
        )
        .assert_stderr(&format!("docker rm -f {}", short(NEW)))
        .assert_untouched(&[OLD]);
}

#[test]
fn a_container_left_after_the_retire_exits_3_naming_it() {
    let run = quick()
        .rule(
            on("ps")
                .if_set(&["retired"])
                .stdout(&format!("{OLD}\n{NEW}\n")),
        )
        .run(&["web"]);
    run.assert_exit(3)
        .assert_stderr("the rollout ended in an unexpected state")
        .assert_stderr(&format!("{} (running) should not be there", short(OLD)))
        .assert_stderr(&format!("fix: docker rm -f {}", short(OLD)));
}

#[test]
fn a_failed_rollback_after_a_failed_scale_names_the_containers_left() {
    let run = Scenario::new()
        .rule(
            on("compose up")
                .set(&["up"])
                .fails("Error response from daemon: no space left on device"),
        )
        .rule(on("rm --force").fails("Error response from daemon: removal already in progress"))
        .run(&["web"]);
    run.assert_exit(3)
        .assert_stderr("rolling back failed too")
        .assert_stderr(&format!("docker rm -f {}", short(NEW)))
        .assert_untouched(&[OLD]);
}

// ---------------------------------------------------------------------------------------------
// Docker's global flags reach every call

/// Asserts every recorded docker call carries `flag` before its subcommand (a standalone
/// `docker-compose` and a pre-stop command take none), and every call, whatever the program, has
/// the endpoint `env` and not the other variable, which would contradict it.
#[track_caller]
fn assert_everywhere(run: &scenario::Run, flag: &str, env: (&str, &str)) {
    assert!(run.calls.len() > 8, "{run}");
    let other = match env.0 {
        "DOCKER_HOST" => "DOCKER_CONTEXT",
        _ => "DOCKER_HOST",
    };
    for call in &run.calls {
        assert_eq!(
            call.env.get(env.0).map(String::as_str),
            Some(env.1),
            "{call:?}\n{run}"
        );
        assert_eq!(call.env.get(other), None, "{call:?}\n{run}");
        let pre_stop = call.args.first().is_some_and(|a| a == "exec");
        if !pre_stop && call.prog != "docker-compose" {
            assert_eq!(call.globals(), [flag], "{call:?}\n{run}");
        }
    }
}

#[test]
fn context_and_host_reach_every_call_over_what_the_environment_says() {
    let cases = [
        (
            &["--context", "staging"][..],
            "--context=staging",
            ("DOCKER_CONTEXT", "staging"),
        ),
        (
            &["-c", "staging"][..],
            "--context=staging",
            ("DOCKER_CONTEXT", "staging"),
        ),
        (
            &["-H", "ssh://deploy@box"][..],
            "--host=ssh://deploy@box",
            ("DOCKER_HOST", "ssh://deploy@box"),
        ),
    ];
    for (flags, flag, env) in cases {
        let template = pre_stop("exec {id} touch /.dead");
        let mut args = flags.to_vec();
        args.extend(["--pre-stop-cmd", &template, "web"]);
        let world = quick();
        // What the shell had: each would win over the flag for a child that inherited it.
        let mut command = world.command(&args);
        command
            .env("DOCKER_HOST", "unix:///nonexistent.sock")
            .env("DOCKER_CONTEXT", "bogus");
        let run = world.spawn(command).finish();
        run.assert_exit(0);
        assert_everywhere(&run, flag, env);
        assert!(
            run.calls.iter().any(|c| c.line().starts_with("compose up")),
            "{run}"
        );
        assert!(
            run.calls.iter().any(|c| c.line().starts_with("events")),
            "{run}"
        );
    }
}

#[test]
fn without_flags_docker_host_wins_over_docker_context_for_every_call() {
    let world = quick();
    let template = pre_stop("exec {id} touch /.dead");
    let mut command = world.command(&["--pre-stop-cmd", &template, "web"]);
    command
        .env("DOCKER_HOST", "tcp://engine:2375")
        .env("DOCKER_CONTEXT", "other");
    let run = world.spawn(command).finish();
    run.assert_exit(0);
    for call in &run.calls {
        assert_eq!(call.globals(), Vec::<&str>::new(), "{call:?}\n{run}");
        assert_eq!(
            call.env.get("DOCKER_HOST").map(String::as_str),
            Some("tcp://engine:2375"),
            "{call:?}\n{run}"
        );
        assert_eq!(call.env.get("DOCKER_CONTEXT"), None, "{call:?}\n{run}");
    }
}

/// A bad value from the environment names the variable, not only the flag the user never typed.
#[test]
fn a_bad_value_from_the_environment_names_the_variable() {
    let world = Scenario::new();
    let mut command = world.command(&["web"]);
    command.env("DOCKER_REROLL_ENGINE", "bogus");
    let run = world.spawn(command).finish();
    run.assert_exit(2)
        .assert_stderr("invalid value 'bogus' for '--engine <ENGINE>'")
        .assert_stderr("environment variable DOCKER_REROLL_ENGINE: fix or unset it");
    assert_eq!(run.stderr.lines().count(), 1, "{run}");
    assert!(run.calls.is_empty(), "{run}");

    let mut command = world.command(&["--engine", "nope", "web"]);
    command.env("DOCKER_REROLL_ENGINE", "bogus");
    let run = world.spawn(command).finish();
    run.assert_exit(2).assert_stderr("invalid value 'nope'");
    assert!(!run.stderr.contains("environment variable"), "{run}");
}

/// A state directory that cannot be made (a stray HOME) is refused as such, not blamed on a
/// concurrent run that does not exist.
#[test]
fn an_unusable_state_directory_is_refused_before_any_change() {
    let world = Scenario::new();
    let mut command = world.command(&["web"]);
    command
        .env_remove("DOCKER_REROLL_STATE_DIR")
        .env("HOME", "/proc/no-such-home");
    let run = world.spawn(command).finish();
    run.assert_refused(
        "cannot create /proc/no-such-home/.local/state/docker-reroll",
        "set DOCKER_REROLL_STATE_DIR (or XDG_STATE_HOME) to a writable directory",
    );
    assert!(!run.stderr.contains("another docker-reroll"), "{run}");
}

#[test]
fn refuses_both_host_and_context_as_docker_does() {
    let run = Scenario::new().run(&["-H", "unix:///s", "--context", "prod", "web"]);
    run.assert_refused("--context", "--host");
    assert!(run.calls.is_empty(), "{run}");
}

#[test]
fn as_a_plugin_the_globals_given_before_reroll_reach_every_call() {
    let world = quick();
    let template = pre_stop("exec {id} touch /.dead");
    let mut command = world.command(&[
        "--context",
        "staging",
        "reroll",
        "--pre-stop-cmd",
        &template,
        "web",
    ]);
    command
        .env("DOCKER_CLI_PLUGIN_ORIGINAL_CLI_COMMAND", "docker")
        .env("DOCKER_HOST", "unix:///nonexistent.sock");
    let run = world.spawn(command).finish();
    run.assert_exit(0);
    assert_everywhere(&run, "--context=staging", ("DOCKER_CONTEXT", "staging"));
}

#[test]
fn a_standalone_compose_v2_is_used_with_the_globals_as_environment() {
    let world = quick().compose(Compose::Standalone("2.29.7"));
    let mut command = world.command(&["--context", "staging", "web"]);
    command.env("DOCKER_HOST", "unix:///nonexistent.sock");
    let run = world.spawn(command).finish();
    run.assert_exit(0);
    assert_everywhere(&run, "--context=staging", ("DOCKER_CONTEXT", "staging"));
    assert_eq!(
        run.mutating(),
        [
            "docker-compose up --detach --no-deps --no-recreate --scale web=2 -- web".to_owned(),
            format!("stop -- {OLD}"),
            format!("rm -- {OLD}"),
        ],
        "{run}"
    );
}

#[test]
fn compose_project_flags_reach_every_compose_call() {
    let world =
        quick().project_flags("--file deploy/compose.yml --env-file prod.env --project-name shop");
    let run = world.run(&[
        "-f",
        "deploy/compose.yml",
        "--env-file",
        "prod.env",
        "-p",
        "shop",
        "web",
    ]);
    run.assert_exit(0);
    let compose: Vec<String> = run
        .called("compose")
        .into_iter()
        .filter(|l| !l.starts_with("compose version"))
        .collect();
    // `config --hash` is asked only when two configurations run side by side; the config twice
    // (interpolated, and uninterpolated for the services' `x-reroll:`).
    assert_eq!(
        compose.len(),
        3,
        "config, config --no-interpolate, up\n{run}"
    );
    for line in compose {
        assert!(
            line.starts_with(
                "compose --file deploy/compose.yml --env-file prod.env --project-name shop "
            ),
            "{line}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Signals

fn interrupted_during_the_health_wait(signal: &str, code: i32) {
    let world = stuck();
    let template = pre_stop("exec {id} touch /.dead");
    let mut running = world.spawn(world.command(&[
        "--healthcheck-timeout",
        "30s",
        "--pre-stop-cmd",
        &template,
        "web",
    ]));
    // The second inspect is the first poll: the tool has seen NEW running by then.
    running.wait_for_calls(&format!("inspect --type container -- {NEW}"), 2);
    running.signal(signal);
    let run = running.finish();
    run.assert_exit(code)
        .assert_stderr("rolled back")
        .assert_untouched(&[OLD]);
    assert_eq!(
        run.mutating(),
        [
            up(2),
            // The new container runs, so a proxy may route to it: it is drained like an old one.
            format!("exec {NEW} touch /.dead"),
            format!("stop -- {NEW}"),
            format!("rm --force -- {NEW}"),
        ],
        "{run}"
    );
    assert!(run.took < Duration::from_secs(15), "{run}");
    assert!(!world.journal_path().exists(), "{run}");
}

#[test]
fn sigint_during_the_health_wait_rolls_back_and_exits_130() {
    interrupted_during_the_health_wait("INT", 130);
}

#[test]
fn sigterm_during_the_health_wait_rolls_back_and_exits_143() {
    interrupted_during_the_health_wait("TERM", 143);
}

#[test]
fn sighup_during_the_health_wait_rolls_back_and_exits_129() {
    interrupted_during_the_health_wait("HUP", 129);
}

/// Under `nohup` the user asked the run to outlive the terminal: SIGHUP stays ignored, and the run
/// ends as it would have (here: the new container is not healthy in time).
#[test]
fn under_nohup_a_hangup_changes_nothing() {
    let world = stuck();
    let tool = world.command(&["--healthcheck-timeout", "3s", "web"]);
    let mut command = std::process::Command::new("/usr/bin/nohup");
    command.arg(tool.get_program()).args(tool.get_args());
    command
        .current_dir(tool.get_current_dir().unwrap())
        .env_clear();
    for (name, value) in tool.get_envs() {
        if let Some(value) = value {
            command.env(name, value);
        }
    }
    command
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut running = world.spawn(command);
    running.wait_for_calls(&format!("inspect --type container -- {NEW}"), 2);
    running.signal("HUP");
    let run = running.finish();
    run.assert_exit(1)
        .assert_stderr("not healthy in time")
        .assert_untouched(&[OLD]);
}

/// Runs a rollout whose old container never drains, signalled once the pre-stop command ran.
fn signalled_while_draining(signals: &[&str]) -> scenario::Run {
    let world = quick();
    let template = pre_stop("exec {id} touch /.dead");
    let mut running = world.spawn(world.command(&[
        "--pre-stop-cmd",
        &template,
        "--pre-stop-wait-until-unhealthy",
        "--drain-timeout",
        "3s",
        "web",
    ]));
    running.wait_for_calls(&format!("exec {OLD}"), 1);
    for signal in signals {
        running.signal(signal);
        std::thread::sleep(Duration::from_millis(100));
    }
    running.finish()
}

#[test]
fn a_signal_past_the_pre_stop_finishes_the_rollout() {
    let run = signalled_while_draining(&["INT"]);
    run.assert_exit(0)
        .assert_stderr("interrupted while old containers drain: finishing that step first");
    assert_eq!(run.called("stop"), [format!("stop -- {OLD}")], "{run}");
    assert_eq!(run.called("rm"), [format!("rm -- {OLD}")], "{run}");
}

#[test]
fn a_second_signal_past_the_pre_stop_stops_waiting() {
    let run = signalled_while_draining(&["INT", "INT"]);
    assert!(
        run.took < Duration::from_secs(3),
        "the second signal cut the 3s drain short\n{run}"
    );
}

// ---------------------------------------------------------------------------------------------
// One run per service at a time

#[test]
fn a_second_run_is_refused_while_the_first_holds_the_lock() {
    let first = stuck();
    let mut running = first.spawn(first.command(&["--healthcheck-timeout", "30s", "web"]));
    running.wait_for_calls(&format!("inspect --type container -- {NEW}"), 1);

    let second = Scenario::new();
    let mut command = second.command(&["web"]);
    command.env("DOCKER_REROLL_STATE_DIR", first.state_dir());
    let refused = second.spawn(command).finish();
    refused.assert_refused(
        &format!(
            "another docker-reroll (pid {}) is rolling service 'web' of project 'shop'",
            running.child.id()
        ),
        "wait for it to finish, then run again",
    );
    assert!(
        refused.called("ps").is_empty(),
        "not even a look at the containers\n{refused}"
    );

    running.signal("TERM");
    running.finish().assert_exit(143);
}

// ---------------------------------------------------------------------------------------------
// Converging after an interrupted run

#[test]
fn old_and_new_configs_side_by_side_are_converged_without_scaling() {
    let run = Scenario::empty()
        .old(OLD, 1)
        .adopted(NEW, 2, &[STARTING, HEALTHY])
        .run(&["web"]);
    run.assert_exit(0)
        .assert_stderr("two configurations run side by side (1 old, 1 new)")
        .assert_untouched(&[NEW]);
    assert_eq!(
        run.mutating(),
        [format!("stop -- {OLD}"), format!("rm -- {OLD}")],
        "no scale\n{run}"
    );
    assert!(
        run.called(&format!("inspect --type container -- {NEW}"))
            .len()
            >= 2,
        "waited healthy\n{run}"
    );
}

#[test]
fn the_journal_of_an_interrupted_run_tells_old_from_new() {
    // Same config hash on both (an image rebuilt under the same tag): only the journal knows.
    let world = Scenario::empty()
        .old_with_hash(OLD, 1, NEW_HASH)
        .adopted(NEW, 2, &[HEALTHY])
        .old_with_hash(OLD2, 3, NEW_HASH)
        .adopted(NEW2, 4, &[HEALTHY]);
    std::fs::create_dir_all(world.state_dir()).unwrap();
    let journal = json!({ "old": [OLD, OLD2], "target": 2, "pid": 4_000_000 });
    std::fs::write(world.journal_path(), journal.to_string()).unwrap();
    let run = world.run(&["web"]);
    run.assert_exit(0)
        .assert_stderr(
            "an earlier run was interrupted: 2 old and 2 new container(s) found; converging to 2",
        )
        .assert_untouched(&[NEW, NEW2]);
    assert_eq!(
        run.mutating(),
        [
            format!("stop -- {OLD} {OLD2}"),
            format!("rm -- {OLD} {OLD2}")
        ],
        "{run}"
    );
    assert!(!world.journal_path().exists(), "{run}");
}

#[test]
fn a_run_killed_with_sigkill_is_finished_by_the_next_one() {
    let world = stuck();
    let mut running = world.spawn(world.command(&["--healthcheck-timeout", "30s", "web"]));
    running.wait_for_calls(&format!("inspect --type container -- {NEW}"), 1);
    running.signal("KILL");
    running.finish().assert_exit(-1);
    assert!(
        world.journal_path().exists(),
        "the killed run left its journal"
    );

    // The same world (its fake remembers the scale): OLD and NEW run, NEW is healthy by now.
    let world = world.looks(NEW, &[HEALTHY]);
    let run = world.run(&["web"]);
    run.assert_exit(0)
        .assert_stderr("an earlier run was interrupted: 1 old and 1 new");
    assert_eq!(
        run.mutating(),
        [up(2), format!("stop -- {OLD}"), format!("rm -- {OLD}")],
        "the only `up` is the killed run's\n{run}"
    );
    assert!(!world.journal_path().exists(), "{run}");
}

// ---------------------------------------------------------------------------------------------
// Refusals: exit 2, one line naming the problem and the fix, nothing changed

#[test]
fn refuses_an_unknown_service() {
    Scenario::new().run(&["api"]).assert_refused(
        "no service 'api' in project 'shop' (services: db, web)",
        "check the name, or pass -f for another compose file",
    );
}

#[test]
fn refuses_a_missing_compose_file() {
    Scenario::new()
        .rule(on("compose --file missing.yml config").fails("open /srv/shop/missing.yml: no such file or directory"))
        .run(&["-f", "missing.yml", "web"])
        .assert_refused(
            "Compose cannot read the project: open /srv/shop/missing.yml: no such file or directory",
            "fix the compose file, or point at it with -f / --project-directory",
        );
}

#[test]
fn refuses_an_invalid_compose_file() {
    Scenario::new()
        .rule(
            on("compose config --format json")
                .fails("validating compose.yaml: services.web.ports must be a list"),
        )
        .run(&["web"])
        .assert_refused("services.web.ports must be a list", "fix the compose file");
}

/// A project name Compose refuses is refused with Compose's reason: no lock container is made
/// under it first (the engine would refuse that name with a less useful error).
#[test]
fn refuses_a_project_name_compose_refuses_before_locking_under_it() {
    let world = Scenario::new().rule(on("compose --project-name Bad_Name config").fails(
        "invalid project name \"Bad_Name\": must consist only of lowercase alphanumeric \
         characters, hyphens, and underscores as well as start with a letter or number",
    ));
    let mut command = world.command(&["-p", "Bad_Name", "web"]);
    command.env("DOCKER_REROLL_ENGINE_LOCK", "1");
    let run = world.spawn(command).finish();
    run.assert_refused(
        "invalid project name \"Bad_Name\"",
        "give a valid name with -p or COMPOSE_PROJECT_NAME",
    );
    assert!(
        !run.calls
            .iter()
            .any(|call| call.line().contains("reroll-lock")),
        "{run}"
    );
}

#[test]
fn refuses_a_service_with_a_container_name() {
    Scenario::new()
        .web_config("container_name", json!("shop-web"))
        .run(&["web"])
        .assert_refused(
            "sets container_name 'shop-web'",
            "remove container_name from the compose file",
        );
}

#[test]
fn refuses_a_service_with_a_fixed_host_port() {
    Scenario::new()
        .web_config("ports", json!([{ "target": 80, "published": "8080" }]))
        .run(&["web"])
        .assert_refused(
            "publishes host port 8080, which 2 containers cannot share",
            "publish only the container port",
        );
}

#[test]
fn refuses_when_the_daemon_is_unreachable() {
    Scenario::new()
        .rule(on("ps").fails("Cannot connect to the Docker daemon at unix:///x. Is the docker daemon running?"))
        .run(&["web"])
        .assert_refused(
            "cannot reach the Docker daemon (Cannot connect to the Docker daemon at unix:///x. Is the docker daemon running?)",
            "start it, or check DOCKER_HOST / --host / --context",
        );
}

#[test]
fn refuses_without_compose() {
    let run = Scenario::new().compose(Compose::Missing).run(&["web"]);
    run.assert_refused("Docker Compose was not found", "install Compose v2");
    assert!(run.called("docker-compose").is_empty(), "{run}");
}

#[test]
fn rolls_with_compose_v1_reading_its_yaml_config() {
    // What docker-compose 1.29 prints: YAML, no project name, short port strings.
    let yaml = "services:\n  db:\n    image: postgres\n  web:\n    image: shop/web:2\n    \
                ports:\n    - 127.0.0.1::80/tcp\nversion: '3.9'\n";
    let run = quick()
        .compose(Compose::Standalone("1.29.2"))
        .project_flags("--project-name shop")
        .rule(on("docker-compose --project-name shop config").stdout(yaml))
        .run(&["--project-name", "shop", "web"]);
    run.assert_exit(0).assert_stderr("1 new container(s) serve");
    assert_eq!(
        run.called("docker-compose"),
        [
            "docker-compose version --short",
            "docker-compose --project-name shop config",
            "docker-compose --project-name shop up --detach --no-deps --no-recreate --scale web=2 -- web",
        ],
        "{run}"
    );
}

#[test]
fn refuses_a_bad_duration_before_calling_docker() {
    let run = Scenario::new().run(&["--wait", "soon", "web"]);
    run.assert_refused(
        "'soon' is not a duration",
        "write it like 30s, 2m, 1m30s or 500ms",
    );
    assert!(run.calls.is_empty(), "{run}");
}

#[test]
fn refuses_a_pre_stop_template_with_an_unclosed_quote() {
    let run = Scenario::new().run(&["--pre-stop-cmd", "docker exec {id} 'touch /.dead", "web"]);
    run.assert_refused("cannot split", "check its quotes");
    assert!(run.calls.is_empty(), "{run}");
}

#[test]
fn refuses_a_pre_stop_template_with_an_unknown_placeholder() {
    let run = Scenario::new().run(&[
        "--pre-stop-cmd",
        "docker exec {container} touch /.dead",
        "web",
    ]);
    run.assert_refused(
        "unknown placeholder {container}",
        "use one of {id} {short_id} {name} {service} {project}",
    );
    assert!(run.calls.is_empty(), "{run}");
}

// ---------------------------------------------------------------------------------------------
// Docker CLI plugin

#[test]
fn answers_docker_cli_plugin_metadata_with_its_version() {
    let run = Scenario::new().run(&["docker-cli-plugin-metadata"]);
    run.assert_exit(0);
    let metadata: Value = serde_json::from_str(&run.stdout).expect("JSON");
    assert_eq!(metadata["Version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(metadata["SchemaVersion"], "0.1.0");
    assert!(run.calls.is_empty(), "{run}");
}

#[test]
fn a_dry_run_prints_the_plan_and_changes_nothing() {
    let run = Scenario::new().run(&["--dry-run", "web"]);
    run.assert_exit(0)
        .assert_stderr("nothing is changed")
        .assert_stderr("scale web to 2 containers, creating 1 new one(s)")
        .assert_stderr("drain and retire");
    assert!(run.mutating().is_empty(), "{run}");
    assert!(!run.stderr.contains("warning"), "{run}");

    // What a rollout would warn about first, a dry run says too.
    let run = Scenario::new()
        .web_config("network_mode", json!("host"))
        .run(&["--dry-run", "web"]);
    run.assert_exit(0).assert_stderr(
        "warning: network_mode host: the new containers share the host's ports with the old ones",
    );
    let run = Scenario::new().run(&["--dry-run", "--order", "stop-first", "web"]);
    run.assert_exit(0).assert_stderr(
        "warning: order stop-first: old containers stop before their replacements start",
    );
    assert!(run.mutating().is_empty(), "{run}");
}

#[test]
fn waiting_until_unhealthy_needs_a_pre_stop_command() {
    Scenario::new()
        .run(&["--pre-stop-wait-until-unhealthy", "web"])
        .assert_refused(
            "waiting until unhealthy needs a pre-stop command",
            "--pre-stop-cmd",
        );
}

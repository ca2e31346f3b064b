//! Compose `pre_stop:` hooks: run by the tool (`docker stop` skips them) in each old container,
//! in order, with their user, privileges, working directory and environment, before the
//! pre-stop command and the stop; a failing hook handled as a failing pre-stop.

use std::time::Duration;

use super::scenario::{FAKE, NEW, OLD, Scenario, on, short};
use serde_json::json;

/// A new container that turns healthy at once; `web` has `hooks` as its `pre_stop:`.
fn with_hooks(hooks: serde_json::Value) -> Scenario {
    Scenario::new()
        .event_once_seen(NEW, "health_status: healthy", json!({}))
        .web_config("pre_stop", hooks)
}

#[test]
fn hooks_run_in_order_with_their_options_before_the_pre_stop_command_and_the_stop() {
    let hooks = json!([
        {"command": ["sh", "-c", "echo draining >/state/log"], "user": "app", "privileged": true,
         "working_dir": "/srv", "environment": {"MODE": "drain", "FROM_HOST": null}},
        {"command": ["touch", "/.dead"]},
    ]);
    let run = with_hooks(hooks).rule(on("exec")).run(&[
        "--pre-stop-cmd",
        &format!("{FAKE} exec {{id}} sync"),
        "web",
    ]);
    run.assert_exit(0)
        .assert_stderr("running the pre_stop hooks, then the pre-stop command,");
    assert!(!run.stderr.contains("pre-stop failed"), "{run}");
    assert_eq!(
        run.mutating(),
        [
            "compose up --detach --no-deps --no-recreate --scale web=2 -- web".to_owned(),
            format!(
                "exec --user app --privileged --workdir /srv --env FROM_HOST --env MODE=drain -- \
                 {OLD} sh -c echo draining >/state/log"
            ),
            format!("exec -- {OLD} touch /.dead"),
            format!("exec {OLD} sync"),
            format!("stop -- {OLD}"),
            format!("rm -- {OLD}"),
        ],
        "{run}"
    );
    let first = run
        .calls
        .iter()
        .find(|c| c.words().contains(&"--user"))
        .unwrap();
    assert_eq!(
        first.words().last(),
        Some(&"echo draining >/state/log"),
        "the hook's argument stays one word\n{run}"
    );
}

#[test]
fn a_failing_hook_is_a_failed_pre_stop_and_skips_the_rest_for_that_container() {
    let hooks = json!([{"command": ["false"]}, {"command": ["touch", "/.dead"]}]);
    let run = with_hooks(hooks)
        .rule(on(&format!("exec -- {OLD} false")).fails("exit status 1"))
        .run(&["--pre-stop-cmd", &format!("{FAKE} exec {{id}} sync"), "web"]);
    run.assert_exit(0)
        .assert_stderr(&format!("pre-stop failed on {}", short(OLD)))
        .assert_stderr("pre_stop hook `false` exited with");
    assert_eq!(
        run.called("exec"),
        [format!("exec -- {OLD} false")],
        "neither the next hook nor the pre-stop command runs after a failed hook\n{run}"
    );
    assert_eq!(run.called("stop"), [format!("stop -- {OLD}")], "{run}");
}

#[test]
fn hooks_alone_drain_the_service_for_the_wait_until_unhealthy() {
    let hooks = json!([{"command": ["touch", "/.dead"]}]);
    let run = with_hooks(hooks)
        .drains()
        .rule(on(&format!("exec -- {OLD}")).set(&[&format!("pre-stop:{OLD}")]))
        .run(&[
            "--pre-stop-wait-until-unhealthy",
            "--drain-timeout",
            "20s",
            "web",
        ]);
    run.assert_exit(0)
        .assert_stderr(&format!("running the pre_stop hooks on {}", short(OLD)));
    assert_eq!(
        run.called("exec"),
        [format!("exec -- {OLD} touch /.dead")],
        "{run}"
    );
    assert!(
        run.took < Duration::from_secs(10),
        "drained by event\n{run}"
    );
}

#[test]
fn without_hooks_or_a_command_waiting_until_unhealthy_is_refused() {
    let run = Scenario::new().run(&["--pre-stop-wait-until-unhealthy", "web"]);
    run.assert_refused(
        "waiting until unhealthy needs a pre-stop command",
        "or a pre_stop: hook",
    );
}

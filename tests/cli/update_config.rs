//! `deploy.update_config` as a settings layer: under the flags and `x-reroll:`, over the
//! defaults; a bad value refused before anything changes.

use super::scenario::{NEW, OLD, Scenario, on};
use serde_json::{Value, json};

fn with_update_config(update_config: Value) -> Scenario {
    Scenario::new().web_config("deploy", json!({ "update_config": update_config }))
}

#[test]
fn a_bogus_failure_action_is_refused_before_anything_changes() {
    for args in [&["web"][..], &[][..]] {
        let run = with_update_config(json!({ "failure_action": "retry" })).run(args);
        run.assert_refused(
            "service 'web': deploy.update_config.failure_action 'retry' is not rollback, pause or continue",
            "fix the compose file, or override it with --failure-action",
        );
    }
}

#[test]
fn a_flag_overrides_update_config_and_the_dry_run_says_where_each_came_from() {
    let world = with_update_config(json!({
        "parallelism": 1, "delay": "1m30s", "monitor": "1.5s", "order": "start-first",
        "failure_action": "pause", "max_failure_ratio": 0.3,
    }));
    let run = world.run(&[
        "--dry-run",
        "--parallelism",
        "2",
        "--failure-action",
        "continue",
        "--json",
        "web",
    ]);
    run.assert_exit(0)
        .assert_stderr("parallelism = 2 (flag)")
        .assert_stderr("failure-action = continue (flag)")
        .assert_stderr("delay = 1m30s (deploy.update_config)")
        .assert_stderr("wait-after-healthy = 1.50s (deploy.update_config)")
        .assert_stderr("order = start-first (deploy.update_config)")
        .assert_stderr("max-failure-ratio = 0.3 (deploy.update_config)")
        .assert_stderr("undo-pre-stop-cmd = none (default)");
    assert!(run.mutating().is_empty(), "{run}");
    assert!(
        !run.stderr.contains("not supported"),
        "update_config is honoured, not warned about\n{run}"
    );
    let settings: Value = run
        .stdout
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .find(|event| event["event"] == "settings")
        .unwrap_or_else(|| panic!("a settings event\n{run}"));
    let delay = settings["settings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == "delay")
        .unwrap();
    assert_eq!(delay["source"], "deploy.update_config", "{run}");
}

#[test]
fn a_bad_batch_flag_is_refused_before_calling_docker() {
    let cases = [
        (&["--order", "sideways", "web"][..], "'sideways'"),
        (
            &["--max-failure-ratio", "2", "web"][..],
            "give a number from 0 to 1",
        ),
        (&["--parallelism", "all", "web"][..], "'all'"),
    ];
    for (args, problem) in cases {
        let run = Scenario::new().run(args);
        run.assert_refused(problem, "see docker-reroll --help");
        assert!(run.calls.is_empty(), "{run}");
    }
}

#[test]
fn an_undo_command_without_a_pre_stop_command_is_refused() {
    Scenario::new()
        .run(&[
            "--undo-pre-stop-cmd",
            "docker exec {id} rm -f /.dead",
            "web",
        ])
        .assert_refused(
            "an undo-pre-stop command needs a pre-stop command to undo",
            "give --pre-stop-cmd",
        );
}

/// A service with a fixed host port and `order: stop-first`.
fn stop_first_on_a_fixed_port() -> Scenario {
    Scenario::new()
        .web_config("ports", json!([{ "target": 80, "published": "8080" }]))
        .web_config(
            "deploy",
            json!({ "update_config": { "order": "stop-first" } }),
        )
        // Removing the kept old container is what retires it in this world.
        .rule(on(&format!("rm --force -- {OLD}")).set(&["retired"]))
}

#[test]
fn stop_first_stops_the_old_container_before_creating_and_starting_the_new_one_by_id() {
    let run = stop_first_on_a_fixed_port().run(&["web"]);
    run.assert_exit(0).assert_stderr("gap");
    assert_eq!(
        run.mutating(),
        [
            // Stopped, not removed: it comes back if the new one fails.
            format!("stop -- {OLD}"),
            // Compose would start the stopped old container again: create only, start by id.
            "compose up --no-start --no-deps --no-recreate --scale web=2 -- web".to_owned(),
            format!("start -- {NEW}"),
            format!("rm --force -- {OLD}"),
        ],
        "{run}"
    );
}

/// Stop-first, then the rollback: the new container goes first (it holds the host port), then
/// the old one starts again.
fn stop_first_rolled_back() -> Vec<String> {
    vec![
        format!("stop -- {OLD}"),
        "compose up --no-start --no-deps --no-recreate --scale web=2 -- web".to_owned(),
        format!("start -- {NEW}"),
        format!("stop -- {NEW}"),
        format!("rm --force -- {NEW}"),
        format!("start -- {OLD}"),
    ]
}

#[test]
fn stop_first_starts_the_old_container_again_when_the_new_one_fails() {
    let run = stop_first_on_a_fixed_port()
        .looks(NEW, &[("exited", None)])
        .looks(OLD, &[("running", Some("healthy"))])
        .run(&["web"]);
    run.assert_exit(1)
        .assert_stderr("rolled back: the 1 old container(s) still serve (1 of them restarted)");
    assert_eq!(run.mutating(), stop_first_rolled_back(), "{run}");
}

#[test]
fn the_undo_command_runs_on_the_old_container_a_rollback_starts_again() {
    let fake = super::scenario::FAKE;
    let run = stop_first_on_a_fixed_port()
        .looks(NEW, &[("exited", None)])
        .run(&[
            "--pre-stop-cmd",
            &format!("{fake} exec {{id}} touch /.dead"),
            "--undo-pre-stop-cmd",
            &format!("{fake} exec {{id}} rm -f /.dead"),
            "web",
        ]);
    run.assert_exit(1);
    let mut expected = vec![format!("exec {OLD} touch /.dead")];
    expected.extend(stop_first_rolled_back());
    expected.push(format!("exec {OLD} rm -f /.dead"));
    assert_eq!(run.mutating(), expected, "{run}");
}

#[test]
fn new_containers_that_cannot_start_are_removed_and_the_old_one_comes_back() {
    let run = stop_first_on_a_fixed_port()
        .rule(
            on(&format!("start -- {NEW}"))
                .fails("Error response from daemon: port is already allocated"),
        )
        .run(&["web"]);
    run.assert_exit(1).assert_stderr(
        "starting the new containers failed: Error response from daemon: port is already allocated",
    );
    assert_eq!(run.mutating(), stop_first_rolled_back(), "{run}");
}

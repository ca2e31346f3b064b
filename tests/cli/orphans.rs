//! `--remove-orphans`: containers of the project whose service the compose file no longer has
//! are mentioned and left alone, or stopped and removed once the rollout succeeded.

use super::scenario::{NEW, OLD, ORPHAN, Scenario, short};
use serde_json::json;

fn quick() -> Scenario {
    Scenario::new().event_once_seen(NEW, "health_status: healthy", json!({}))
}

#[test]
fn without_the_flag_one_named_service_leaves_orphans_alone_without_looking() {
    let run = quick().orphan(ORPHAN, "old").run(&["web"]);
    run.assert_exit(0).assert_untouched(&[ORPHAN]);
    assert!(
        !run.stderr.contains("no longer in the compose file"),
        "{run}"
    );
    // The project-wide listing costs a docker call at startup: only made when it matters.
    assert!(
        run.called("ps --all --no-trunc --filter label=com.docker.compose.project=shop --filter label=com.docker.compose.oneoff=False --format")
            .is_empty(),
        "{run}"
    );
}

#[test]
fn a_dry_run_says_which_orphans_would_be_removed_and_changes_nothing() {
    let run = quick()
        .orphan(ORPHAN, "old")
        .run(&["--dry-run", "--remove-orphans", "web"]);
    run.assert_exit(0).assert_stderr(&format!(
        "service 'old' is no longer in the compose file: shop-old-1 ({}) would be stopped and \
         removed after the rollouts",
        short(ORPHAN)
    ));
    assert!(run.mutating().is_empty(), "{run}");
}

#[test]
fn remove_orphans_stops_and_removes_them_after_the_rollout() {
    let run = quick()
        .orphan(ORPHAN, "old")
        .run(&["--remove-orphans", "--json", "web"]);
    run.assert_exit(0)
        .assert_stderr("shop-old-1")
        .assert_stderr("stopped and removed");
    assert_eq!(
        run.mutating(),
        [
            "compose up --detach --no-deps --no-recreate --scale web=2 -- web".to_owned(),
            format!("stop -- {OLD}"),
            format!("rm -- {OLD}"),
            format!("stop -- {ORPHAN}"),
            format!("rm -- {ORPHAN}"),
        ],
        "{run}"
    );
    let event = run
        .stdout
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .find(|event| event["event"] == "orphans")
        .unwrap_or_else(|| panic!("an orphans event\n{run}"));
    assert_eq!(event["fate"], "removed");
    assert_eq!(event["containers"][0]["id"], ORPHAN);
    assert_eq!(event["containers"][0]["service"], "old");
}

/// Compose's own variable asks for the same, the tool's way: Compose never sees it, so its scale
/// does not remove them before anything is known to work.
#[test]
fn compose_remove_orphans_removes_them_after_the_rollout_never_during_the_scale() {
    let world = quick().orphan(ORPHAN, "old");
    let mut command = world.command(&["web"]);
    command.env("COMPOSE_REMOVE_ORPHANS", "1");
    let run = world.spawn(command).finish();
    run.assert_exit(0).assert_stderr("stopped and removed");
    assert_eq!(
        run.mutating().last(),
        Some(&format!("rm -- {ORPHAN}")),
        "{run}"
    );
    for call in &run.calls {
        assert_eq!(
            call.env.get("COMPOSE_REMOVE_ORPHANS"),
            None,
            "{call:?}\n{run}"
        );
    }

    let failing = Scenario::new()
        .looks(NEW, &[("running", Some("unhealthy"))])
        .orphan(ORPHAN, "old");
    let mut command = failing.command(&["web"]);
    command.env("COMPOSE_REMOVE_ORPHANS", "true");
    let run = failing.spawn(command).finish();
    run.assert_exit(1).assert_untouched(&[ORPHAN, OLD]);
}

#[test]
fn orphans_stay_when_the_rollout_fails() {
    let run = Scenario::new()
        .looks(NEW, &[("running", Some("unhealthy"))])
        .orphan(ORPHAN, "old")
        .run(&["--remove-orphans", "web"]);
    run.assert_exit(1)
        .assert_stderr("left alone, as the rollouts did not all finish")
        .assert_untouched(&[ORPHAN, OLD]);
}

#[test]
fn a_service_under_an_inactive_profile_is_no_orphan() {
    let run = quick()
        .orphan(ORPHAN, "debug")
        .profiled_service("debug")
        .run(&["--remove-orphans", "web"]);
    run.assert_exit(0).assert_untouched(&[ORPHAN]);
    assert!(
        !run.stderr.contains("no longer in the compose file"),
        "{run}"
    );
}

#[test]
fn a_failed_removal_says_what_is_left_and_exits_3() {
    let run = quick()
        .orphan(ORPHAN, "old")
        .rule(
            super::scenario::on(&format!("stop -- {ORPHAN}"))
                .fails("Error response from daemon: permission denied"),
        )
        .run(&["--remove-orphans", "web"]);
    run.assert_exit(3)
        .assert_stderr("permission denied")
        .assert_stderr(&format!("fix: docker rm -f {ORPHAN}"));
}

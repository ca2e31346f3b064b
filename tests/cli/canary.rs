//! The canary's settings, refusals and commands against the fake `docker`: what makes no sense is
//! refused before anything changes; promote, abort and rollback with nothing to act on are
//! refused; a stepped rollout calls what a plain one does, pausing in between.

use super::scenario::{OLD, Scenario};
use serde_json::json;

fn quick() -> Scenario {
    super::quick()
}

#[test]
fn combinations_that_make_no_sense_are_refused_before_anything_changes() {
    let cases: [(&[&str], &str, &str); 5] = [
        (
            &["--steps", "1", "--parallelism", "1", "web"],
            "service 'web': --steps replaces batches",
            "drop --parallelism",
        ),
        (
            &["--steps", "1", "--order", "stop-first", "web"],
            "order stop-first cannot",
            "use start-first",
        ),
        (
            &["--probe", "http://127.0.0.1:1/", "web"],
            "the checks (--probe, --analysis-cmd) run during canary steps or a bake",
            "give --steps or --bake too",
        ),
        (
            &["--steps", "1"],
            "canary settings (--steps, --probe, --bake, …) roll one service",
            "docker reroll --steps 1,50% web",
        ),
        (
            &["--steps", "2,1", "web"],
            "steps must rise",
            "see docker-reroll --help",
        ),
    ];
    for (args, problem, fix) in cases {
        quick().run(args).assert_refused(problem, fix);
    }
    let bad = Scenario::new().web_config("x-reroll", json!({ "steps": "half" }));
    bad.run(&["web"]).assert_refused(
        "service 'web': x-reroll steps: 'half' is not a list of steps",
        "fix the compose file",
    );
}

#[test]
fn promote_abort_and_rollback_with_nothing_to_act_on_are_refused() {
    let world = quick();
    world.run(&["promote", "web"]).assert_refused(
        "cannot promote web (shop): no rollout of it is running",
        "docker reroll status web says where it stands",
    );
    world
        .run(&["abort", "web"])
        .assert_refused("cannot abort web (shop)", "docker reroll status web");
    world.run(&["rollback", "web"]).assert_refused(
        "no previous version of web (shop) is recorded",
        "from its second successful rollout of the service on",
    );
    world
        .run(&["status", "web"])
        .assert_exit(0)
        .assert_stderr("web (shop): no rollout running");
}

#[test]
fn a_service_named_like_a_command_is_rolled_after_a_double_dash() {
    let run = quick().run(&["--dry-run", "--", "status"]);
    run.assert_exit(2)
        .assert_stderr("no service 'status' in project 'shop'");
}

#[test]
fn a_stepped_rollout_pauses_then_retires_as_a_plain_one_does() {
    let world = quick();
    let run = world.run(&["--steps", "100%", "--step-pause", "1s", "web"]);
    run.assert_exit(0)
        .assert_stderr("step 1 of 1: 1 new container(s) next to 1 old: expected share 50% (1/2); pausing 1.00s")
        .assert_stderr("step 1 of 1 passed after 1.")
        .assert_stderr("1 new container(s) serve");
    assert_eq!(
        run.mutating(),
        [
            super::up(2),
            format!("stop -- {OLD}"),
            format!("rm -- {OLD}")
        ],
        "{run}"
    );
}

#[test]
fn a_failing_analysis_command_rolls_back_naming_it() {
    let world = quick();
    let run = world.run(&[
        "--steps",
        "100%",
        "--step-pause",
        "30s",
        "--analysis-cmd",
        "sh -c 'echo {short_id} is bad >&2; exit 3'",
        "web",
    ]);
    run.assert_exit(1)
        .assert_stderr(
            "analysis command `sh -c 'echo {short_id} is bad >&2; exit 3'` failed: b1b1b1b1b1b1:",
        )
        .assert_stderr("into step 1 of 1 (1 new next to 1 old)")
        .assert_stderr("rolled back");
    assert!(
        run.mutating()
            .iter()
            .any(|call| call.starts_with("rm --force")),
        "the new container goes: {run}"
    );
}

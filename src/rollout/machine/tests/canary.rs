//! Canary rollouts as compact tables on plain time: steps and their pauses, the checks' verdicts,
//! promote and abort, the bake.

use super::*;
use crate::model::canary::{Analysis, Canary, Control, Pause, Probe, parse_steps};
use crate::rollout::machine::canary::{CanaryRun, ProbeCount, Sample};

/// Two old containers, canary steps as written, a probe tolerating 5%, and the bake.
fn canary(steps: &str, pause: Pause, bake: Option<u64>, command: bool) -> Machine {
    let mut plan = plan(&["a1", "a2"], 2);
    let steps = parse_steps(steps).unwrap();
    crate::canary::steps::apply(&mut plan, &steps);
    let pauses = crate::canary::steps::pauses(&plan);
    let policy = Canary {
        steps,
        pause,
        analysis: Analysis {
            probe: Some(Probe {
                url: "http://lb/".into(),
                max_error_rate: 0.05,
                max_latency: None,
            }),
            command: command.then(|| crate::template::Template::parse("check {id}").unwrap()),
            proxy_max_error_rate: Some(0.1),
        },
        bake: bake.map(Duration::from_secs),
    };
    Machine::new(plan, Settings::default()).with_canary(CanaryRun::new(policy, pauses, 2))
}

fn probed(requests: u64, errors: u64) -> Input {
    Input::Analysis(Sample {
        probe: ProbeCount {
            requests,
            errors,
            slow: 0,
            first_error: (errors > 0).then(|| "HTTP 500".to_owned()),
        },
        ..Sample::default()
    })
}

/// What the proxy counted for the new containers.
fn counted(answers: u64, server_errors: u64) -> Input {
    Input::Analysis(Sample {
        proxy: ProbeCount {
            requests: answers,
            errors: server_errors,
            ..ProbeCount::default()
        },
        ..Sample::default()
    })
}

fn asked(control: Control) -> Input {
    Input::Analysis(Sample {
        control: Some(control),
        ..Sample::default()
    })
}

fn commanded(result: Result<(), String>) -> Input {
    Input::Analysis(Sample {
        command: Some(result),
        ..Sample::default()
    })
}

/// Runs the steps: (milliseconds to let pass first, input, expected action).
fn run_ms(machine: &mut Machine, steps: Vec<(u64, Input, &str)>) -> Action {
    let start = now();
    let mut last = None;
    for (index, (wait, input, expected)) in steps.into_iter().enumerate() {
        pass(Duration::from_millis(wait));
        let action = machine.handle(input, now());
        assert_eq!(show(&action, start), expected, "step {index}");
        assert_reads_well(machine, &action);
        last = Some(action);
    }
    last.expect("at least one step")
}

/// Up to the first step's pause: one new container healthy next to the two old ones.
fn to_first_step() -> Vec<(u64, Input, &'static str)> {
    vec![
        (0, Input::Begin, "scale 3"),
        (
            0,
            Input::Scaled(vec![created("b1", true)]),
            "watch [b1] until 6s",
        ),
        (1000, healthy("b1"), "analyze (reset)"),
    ]
}

fn both_healthy() -> Input {
    Input::Observed(vec![
        status("b1", State::Running, Health::Healthy),
        status("b2", State::Running, Health::Healthy),
    ])
}

fn finished_with(action: &Action, exit: Exit, words: &str) -> bool {
    matches!(action, Action::Finish(Outcome { exit: e, message }) if *e == exit && message.contains(words))
}

#[test]
fn a_good_canary_steps_pauses_bakes_and_finishes() {
    let mut machine = canary("1", Pause::For(Duration::from_secs(2)), Some(3), false);
    let mut steps = to_first_step();
    steps.extend([
        (0, probed(0, 0), "watch [b1] until 1.5s"),
        (500, Input::Deadline, "analyze"),
        (0, probed(30, 1), "watch [b1] until 2s"),
        (500, healthy("b1"), "watch [b1] until 2s"),
        (0, Input::Deadline, "analyze"),
        (0, probed(10, 0), "watch [b1] until 2.5s"),
        (500, Input::Deadline, "analyze"),
        (0, probed(10, 0), "watch [b1] until 3s"),
        // The pause is over and 1 of 50 (2%) failed: the next batch retires the old ones.
        (500, Input::Deadline, "scale 4"),
        (
            0,
            Input::Scaled(vec![created("b2", true)]),
            "watch [b1,b2] until 9s",
        ),
        (0, both_healthy(), "stop a1,a2"),
        (0, Input::Done, "analyze (reset)"),
        (0, probed(5, 0), "watch [b1,b2] until 3.5s"),
        (500, Input::Deadline, "analyze"),
        (0, probed(40, 0), "watch [b1,b2] until 4s"),
        (2500, Input::Deadline, "rm a1,a2"),
        (0, Input::Done, "verify"),
        (
            0,
            Input::Verified(vec![
                container("b1", Health::Healthy),
                container("b2", Health::Healthy),
            ]),
            "exit 0",
        ),
    ]);
    run_ms(&mut machine, steps);
}

#[test]
fn a_failed_check_or_an_abort_rolls_back_naming_why() {
    type Case = (&'static str, Vec<(u64, Input, &'static str)>, &'static str);
    let cases: Vec<Case> = vec![
        (
            "the probe sees 5 of 20 fail",
            vec![(0, probed(20, 5), "rollback keeping a1,a2")],
            "probe http://lb/ failed: 5 of 20 request(s) failed (25.0%, at most 5.0% allowed: 5 error(s), first: HTTP 500), 0.00s into step 1 of 1 (1 new next to 2 old)",
        ),
        (
            "too few requests to judge yet, then enough",
            vec![
                (0, probed(4, 2), "watch [b1] until 1.5s"),
                // No command result came with that sample: the command is still due.
                (500, Input::Deadline, "analyze +cmd"),
                (0, probed(16, 0), "rollback keeping a1,a2"),
            ],
            "2 of 20 request(s) failed (10.0%",
        ),
        (
            "the analysis command fails",
            vec![(
                0,
                commanded(Err("b1: exit status 1".into())),
                "rollback keeping a1,a2",
            )],
            "analysis command `check {id}` failed: b1: exit status 1",
        ),
        (
            "the proxy counts 5xx from the canary",
            vec![
                (0, counted(30, 3), "watch [b1] until 1.5s"),
                (500, Input::Deadline, "analyze +cmd"),
                (0, counted(10, 2), "rollback keeping a1,a2"),
            ],
            "the proxy's counts for the new containers failed: 5 of 40 answer(s) were 5xx (12.5%, at most 10.0% allowed)",
        ),
        (
            "Ctrl-C while paused",
            vec![
                (0, probed(0, 0), "watch [b1] until 1.5s"),
                (
                    200,
                    Input::Interrupted(Signal::Interrupt),
                    "rollback keeping a1,a2",
                ),
            ],
            "interrupted (SIGINT)",
        ),
        (
            "abort from another process",
            vec![(0, asked(Control::Abort), "rollback keeping a1,a2")],
            "aborted by docker reroll abort, 0.00s into step 1 of 1",
        ),
        (
            "the canary turns unhealthy while paused",
            vec![
                (0, probed(0, 0), "watch [b1] until 1.5s"),
                (
                    200,
                    Input::Observed(vec![status("b1", State::Running, Health::Unhealthy)]),
                    "rollback keeping a1,a2",
                ),
            ],
            "during the step: new container b1 is unhealthy",
        ),
    ];
    for (name, extra, words) in cases {
        let mut machine = canary("1", Pause::For(Duration::from_secs(30)), None, true);
        let mut steps = to_first_step();
        steps[2].2 = "analyze +cmd (reset)";
        steps.extend(extra);
        run_ms(&mut machine, steps);
        let finish = machine.handle(Input::Done, now());
        // A signal rolls back too, and exits as interrupted.
        let exit = if name.starts_with("Ctrl-C") {
            Exit::Interrupted
        } else {
            Exit::RolledBack
        };
        assert!(finished_with(&finish, exit, words), "{name}: {finish:?}");
    }
}

#[test]
fn a_manual_pause_waits_for_promote() {
    let mut machine = canary("1,100%", Pause::Manual, None, false);
    let mut steps = to_first_step();
    steps.extend([
        (0, probed(0, 0), "watch [b1] until 1.5s"),
        // An hour later, still paused: no deadline ends a manual pause.
        (3_600_000, Input::Deadline, "analyze"),
        (0, probed(20, 0), "watch [b1] until 3601.5s"),
        (500, Input::Deadline, "analyze"),
        (0, asked(Control::Promote), "scale 4"),
        (
            0,
            Input::Scaled(vec![created("b2", true)]),
            "watch [b1,b2] until 3607.5s",
        ),
        (0, both_healthy(), "analyze (reset)"),
        // Step 2 of 2 (all new next to all old, the 50/50 stage) waits too, then retires.
        (0, asked(Control::Promote), "retire a1,a2"),
    ]);
    run_ms(&mut machine, steps);
    assert_eq!(machine.standing(now()), None);
}

#[test]
fn a_failed_bake_starts_the_old_containers_again() {
    let mut machine = canary("1", Pause::For(Duration::from_secs(1)), Some(60), false);
    let mut steps = to_first_step();
    steps.extend([
        (0, probed(0, 0), "watch [b1] until 1.5s"),
        (500, Input::Deadline, "analyze"),
        (0, probed(0, 0), "watch [b1] until 2s"),
        (500, Input::Deadline, "scale 4"),
        (
            0,
            Input::Scaled(vec![created("b2", true)]),
            "watch [b1,b2] until 8s",
        ),
        (0, both_healthy(), "stop a1,a2"),
        (0, Input::Done, "analyze (reset)"),
        (0, probed(0, 0), "watch [b1,b2] until 2.5s"),
        (500, Input::Deadline, "analyze"),
        // Every new container serves: none goes before the old ones are back.
        (0, probed(20, 20), "rollback keeping a1,a2,b1,b2"),
        (0, Input::Done, "restore a1,a2"),
        (0, Input::Done, "watch [a1,a2] until 8.5s"),
        (
            500,
            Input::Observed(vec![
                status("a1", State::Running, Health::Healthy),
                status("a2", State::Running, Health::Healthy),
            ]),
            "rollback keeping a1,a2",
        ),
    ]);
    run_ms(&mut machine, steps);
    let finish = machine.handle(Input::Done, now());
    assert!(
        finished_with(&finish, Exit::RolledBack, "into the bake"),
        "{finish:?}"
    );
    let standing = machine.standing(now());
    assert_eq!(standing, None, "the bake window is closed");
}

#[test]
fn standing_tells_the_step_and_the_expected_share() {
    let mut machine = canary("1", Pause::Manual, None, false);
    run_ms(&mut machine, to_first_step());
    pass(Duration::from_secs(4));
    let standing = machine.standing(now()).unwrap();
    assert_eq!(
        (
            standing.stage.as_str(),
            standing.step,
            standing.steps,
            standing.new,
            standing.old
        ),
        ("step", 1, 1, 1, 2)
    );
    assert!((standing.expected_share - 1.0 / 3.0).abs() < 1e-9);
    assert_eq!(standing.remaining, None, "manual: until promote");
    assert_eq!(standing.elapsed, 4.0);
}

/// With a proxy adapter, a failed bake waits until the proxy routes to the restarted old
/// containers before it drains the new ones.
#[test]
fn a_failed_bake_waits_for_the_proxy_to_route_to_the_old_containers_again() {
    let mut plan = plan(&["a1"], 1);
    let policy = Canary {
        steps: Vec::new(),
        pause: Pause::Manual,
        analysis: Analysis {
            command: Some(crate::template::Template::parse("check").unwrap()),
            ..Analysis::default()
        },
        bake: Some(Duration::from_secs(60)),
    };
    crate::canary::steps::apply(&mut plan, &[]);
    let settings = Settings {
        pre_stop: true,
        verify_proxy: true,
        ..Settings::default()
    };
    let mut machine =
        Machine::new(plan, settings).with_canary(CanaryRun::new(policy, Vec::new(), 1));
    let serving = |ids: &[&str]| {
        proxy(
            &ids.iter()
                .map(|id| (*id, Route::Serving))
                .collect::<Vec<_>>(),
        )
    };
    run_ms(
        &mut machine,
        vec![
            (0, Input::Begin, "scale 2"),
            (
                0,
                Input::Scaled(vec![created("b1", true)]),
                "watch [b1] until 6s",
            ),
            (1000, healthy("b1"), "ask proxy [b1] until 31s"),
            (0, serving(&["a1", "b1"]), "pre-stop a1"),
            (
                0,
                Input::PreStopFinished(vec![]),
                "ask proxy [a1] until 31s",
            ),
            (0, serving(&["b1"]), "stop a1"),
            (0, Input::Done, "analyze +cmd (reset)"),
            (
                0,
                commanded(Err("b1: exit status 1".into())),
                "rollback keeping a1,b1",
            ),
            (0, Input::Done, "restore a1"),
            (0, Input::Done, "watch [a1] until 7s"),
            (
                500,
                Input::Observed(vec![status("a1", State::Running, Health::Healthy)]),
                "ask proxy [a1] until 31.5s",
            ),
            (0, serving(&["b1"]), "ask proxy [a1] until 31.5s"),
            (500, serving(&["a1", "b1"]), "pre-stop b1"),
        ],
    );
}

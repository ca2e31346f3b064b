//! The retreat on its own, as compact tables on plain time: a fleet as a failure left it, the
//! steps it takes to undo, and what it leaves in the fleet.

use std::time::Duration;

use super::*;
use crate::model::container::{Health, State};
use crate::model::routing::Route;
use crate::model::signal::Signal;
use crate::rollout::machine::tests::{
    CHECK, batched, created, drain_settings, now, pass, proxy, show, status,
};

/// A failed rollout's fleet: old `a*` containers, new ones created, some old ones kept stopped.
struct Undoing {
    plan: Plan,
    settings: Settings,
    fleet: Fleet,
    notes: Vec<Note>,
    retreat: Retreat,
}

impl Undoing {
    /// `new`: (id, healthy); `kept`: old containers retired but kept stopped.
    fn new(
        action: FailureAction,
        settings: Settings,
        new: &[(&str, Health)],
        kept: &[&str],
        batch: usize,
    ) -> Undoing {
        let plan = batched(&["a1", "a2", "a3"], 3, 1, Order::StartFirst);
        let mut fleet = Fleet::adopting(new.iter().map(|(id, _)| created(id, true)).collect());
        fleet.batch_new = vec![new.last().expect("a new container").0.to_owned()];
        fleet.kept = kept.iter().map(|id| id.to_string()).collect();
        let statuses = new
            .iter()
            .map(|&(id, health)| status(id, State::Running, health))
            .collect();
        fleet.record(&fleet.new_ids(), statuses);
        let retreat = Retreat::planned(action, plan.order, &fleet, &plan.batches[batch].retire);
        Undoing {
            plan,
            settings,
            fleet,
            notes: Vec::new(),
            retreat,
        }
    }

    /// Feeds each input (`Begin` starts the retreat) after letting the seconds pass, and checks
    /// the answer.
    fn run(&mut self, steps: Vec<(u64, Input, &str)>) -> Step {
        let start = now();
        let mut last = None;
        for (index, (wait, input, expected)) in steps.into_iter().enumerate() {
            pass(Duration::from_secs(wait));
            let mut ctx = Ctx {
                plan: &self.plan,
                settings: &self.settings,
                fleet: &mut self.fleet,
                notes: &mut self.notes,
            };
            let step = match input {
                Input::Begin => self.retreat.start(&mut ctx),
                Input::Interrupted(_) => self.retreat.cut_drain(&mut ctx),
                input => self.retreat.handle(input, &mut ctx, now()),
            };
            let shown = match &step {
                Step::Act(action) => show(action, start),
                Step::Done { after, restored } => format!("done {after:?}, {restored} restored"),
                Step::Stuck(_) => "stuck".to_owned(),
            };
            assert_eq!(shown, expected, "step {index}");
            last = Some(step);
        }
        last.expect("at least one step")
    }
}

/// The second batch failed: b1 (first batch) serves, b2 is broken, a1 was retired but kept.
fn second_batch_failed(action: FailureAction, settings: Settings) -> Undoing {
    Undoing::new(
        action,
        settings,
        &[("b1", Health::Healthy), ("b2", Health::Unhealthy)],
        &["a1"],
        1,
    )
}

fn observed(id: &str, state: State, health: Health) -> Input {
    Input::Observed(vec![status(id, state, health)])
}

#[test]
fn a_rollback_drains_the_healthy_new_containers_before_removing_them() {
    let mut undoing = Undoing::new(
        FailureAction::Rollback,
        drain_settings(),
        &[("b1", Health::Healthy), ("b2", Health::Starting)],
        &[],
        0,
    );
    undoing.run(vec![
        (0, Input::Begin, "pre-stop b1,b2"),
        (0, Input::PreStopFinished(vec![]), "watch [b1] until 6s"),
        (
            0,
            observed("b1", State::Running, Health::Healthy),
            "watch [b1] until 6s",
        ),
        (
            1,
            observed("b1", State::Running, Health::Unhealthy),
            "watch [] until 3s",
        ),
        (2, Input::Deadline, "rollback keeping a1,a2,a3"),
        (0, Input::Done, "done RolledBack, 0 restored"),
    ]);
    assert!(undoing.fleet.new.is_empty(), "{:?}", undoing.fleet.new);
}

#[test]
fn capacity_first_old_containers_come_back_before_serving_new_ones_go() {
    let settings = Settings {
        verify_proxy: true,
        ..Settings::default()
    };
    let mut undoing = second_batch_failed(FailureAction::Rollback, settings);
    let last = undoing.run(vec![
        (0, Input::Begin, "rollback keeping a1,a2,a3,b1"),
        (0, Input::Done, "restore a1"),
        (0, Input::Done, "watch [a1] until 6s"),
        (
            1,
            observed("a1", State::Running, Health::Healthy),
            "ask proxy [a1] until 31s",
        ),
        (0, proxy(&[("a1", Route::Out)]), "ask proxy [a1] until 31s"),
        (
            0,
            proxy(&[("a1", Route::Serving)]),
            "rollback keeping a1,a2,a3",
        ),
        (0, Input::Done, "done RolledBack, 1 restored"),
    ]);
    assert_eq!(
        last,
        Step::Done {
            after: After::RolledBack,
            restored: 1
        }
    );
    assert!(undoing.fleet.kept.is_empty() && undoing.fleet.new.is_empty());
}

#[test]
fn pause_restores_the_failed_batch_and_discards_earlier_kept_ones() {
    let mut undoing = Undoing::new(
        FailureAction::Pause,
        Settings::default(),
        &[("b1", Health::Healthy), ("b2", Health::Unhealthy)],
        &["a1", "a2"],
        1,
    );
    undoing.run(vec![
        (0, Input::Begin, "rollback keeping a1,a2,a3,b1"),
        (0, Input::Done, "restore a2"),
        (0, Input::Done, "watch [a2] until 6s"),
        (0, observed("a2", State::Running, Health::Healthy), "rm a1"),
        (0, Input::Done, "done Paused, 1 restored"),
    ]);
    assert_eq!(undoing.fleet.new_ids(), ["b1"]);
    assert_eq!(undoing.fleet.removed, ["a1"]);
    assert!(undoing.fleet.kept.is_empty());
}

#[test]
fn an_old_container_that_does_not_come_back_leaves_the_retreat_stuck() {
    type Steps = Vec<(u64, Input, &'static str)>;
    let cases: Vec<(&str, Steps)> = vec![
        (
            "unhealthy",
            vec![(
                1,
                observed("a1", State::Running, Health::Unhealthy),
                "stuck",
            )],
        ),
        ("never healthy", vec![(6, Input::Deadline, "stuck")]),
        (
            "exited",
            vec![(0, observed("a1", State::Exited, Health::None), "stuck")],
        ),
    ];
    for (name, steps) in cases {
        let settings = Settings {
            pre_stop: true,
            ..Settings::default()
        };
        let mut undoing = second_batch_failed(FailureAction::Rollback, settings);
        let mut all = vec![
            // The broken one runs, so it is drained too; it was never healthy: no wait.
            (0, Input::Begin, "pre-stop b2"),
            (
                0,
                Input::PreStopFinished(vec![]),
                "rollback keeping a1,a2,a3,b1",
            ),
            (0, Input::Done, "restore a1"),
            (0, Input::Done, "watch [a1] until 6s"),
        ];
        all.extend(steps);
        let Step::Stuck(how) = undoing.run(all) else {
            unreachable!()
        };
        for words in [
            "Still serving: b1 a2 a3",
            "started but not healthy: a1",
            "--undo-pre-stop-cmd",
        ] {
            assert!(how.contains(words), "{name}: {how}");
        }
    }
}

#[test]
fn a_removal_that_fails_names_what_is_left() {
    let cases = [
        (vec!["b2".to_owned()], "docker rm -f b2"),
        // The engine could not even list them: the step's own ids.
        (Vec::new(), "docker rm -f b1 b2"),
    ];
    for (left, fix) in cases {
        let mut undoing = Undoing::new(
            FailureAction::Rollback,
            Settings::default(),
            &[("b1", Health::Healthy), ("b2", Health::Unhealthy)],
            &[],
            0,
        );
        let last = undoing.run(vec![
            (0, Input::Begin, "rollback keeping a1,a2,a3"),
            (
                0,
                Input::RollbackFailed {
                    left,
                    why: "engine gone".into(),
                },
                "stuck",
            ),
        ]);
        let Step::Stuck(how) = last else {
            unreachable!()
        };
        assert!(how.contains("engine gone") && how.contains(fix), "{how}");
    }
}

#[test]
fn a_cut_drain_removes_at_once_and_stale_inputs_change_nothing() {
    let mut undoing = Undoing::new(
        FailureAction::Rollback,
        drain_settings(),
        &[("b1", Health::Healthy)],
        &[],
        0,
    );
    undoing.run(vec![
        (0, Input::Begin, "pre-stop b1"),
        (0, Input::Deadline, "pre-stop b1"),
        (0, Input::PreStopFinished(vec![]), "watch [b1] until 6s"),
        (0, Input::Verified(vec![]), "watch [b1] until 6s"),
        (
            0,
            Input::Interrupted(Signal::Interrupt),
            "rollback keeping a1,a2,a3",
        ),
    ]);
    assert!(!undoing.retreat.is_draining());
}

#[test]
fn the_restore_waits_as_long_as_the_old_healthcheck_allows() {
    let patience = CHECK.patience().as_secs();
    let mut undoing = Undoing::new(
        FailureAction::Rollback,
        Settings {
            healthcheck_timeout: Some(Duration::from_secs(9)),
            ..Settings::default()
        },
        &[("b1", Health::Unhealthy)],
        &["a1"],
        1,
    );
    undoing.run(vec![
        (0, Input::Begin, "rollback keeping a1,a2,a3"),
        (0, Input::Done, "restore a1"),
        (0, Input::Done, "watch [a1] until 9s"),
    ]);
    assert_ne!(patience, 9, "the explicit timeout must be what is seen");
}

/// A drained new container the proxy still routes to is removed after `--proxy-timeout` anyway,
/// and the warning says whether the proxy said so or could not be asked.
#[test]
fn the_proxy_out_warning_tells_still_routing_from_no_answer() {
    let refused = || Input::Routing(Err("cannot reach the proxy: refused".into()));
    for (last_answer, expected) in [
        (
            proxy(&[("b1", Route::Serving)]),
            "the proxy still routes to new container(s) b1 after 30.00s; removing them anyway",
        ),
        (
            refused(),
            "could not learn within 30.00s whether the proxy still routes to new container(s) b1 \
             (cannot reach the proxy: refused); removing them anyway",
        ),
    ] {
        let settings = Settings {
            verify_proxy: true,
            proxy_timeout: Duration::from_secs(30),
            ..drain_settings()
        };
        let mut undoing = Undoing::new(
            FailureAction::Rollback,
            settings,
            &[("b1", Health::Healthy)],
            &[],
            0,
        );
        undoing.run(vec![
            (0, Input::Begin, "pre-stop b1"),
            (0, Input::PreStopFinished(vec![]), "watch [b1] until 6s"),
            (
                1,
                observed("b1", State::Running, Health::Unhealthy),
                "ask proxy [b1] until 31s",
            ),
            (0, refused(), "ask proxy [b1] until 31s"),
            (0, last_answer, "ask proxy [b1] until 31s"),
            (30, Input::Deadline, "watch [] until 33s"),
        ]);
        let warnings: Vec<&Note> = undoing
            .notes
            .iter()
            .filter(|note| matches!(note, Note::Warning(_)))
            .collect();
        assert_eq!(warnings, [&Note::Warning(expected.to_owned())]);
    }
}

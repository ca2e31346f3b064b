//! The machine's decisions as compact tables: each step feeds an input (after letting the test's
//! clock run) and names the action expected back. The machine takes time as an argument, so the
//! clock is plain: an instant fixed per test thread plus the time the steps let pass.

use std::time::Duration;

use std::cell::Cell;

use tokio::time::Instant;

use super::*;
use crate::model::container::{Container, Health, Healthcheck, State};
use crate::model::routing::{Route, Routing};

pub(super) const CHECK: Healthcheck = Healthcheck {
    interval: Duration::from_secs(1),
    timeout: Duration::from_secs(1),
    start_period: Duration::ZERO,
    retries: 1,
};

thread_local! {
    static START: Instant = Instant::now();
    static PASSED: Cell<Duration> = const { Cell::new(Duration::ZERO) };
}

/// The test's time. It only moves forward, and every expectation is an offset from the start
/// of its own run of steps, so tests that share a thread do not disturb each other.
pub(super) fn now() -> Instant {
    START.with(|start| *start) + PASSED.with(Cell::get)
}

pub(super) fn pass(time: Duration) {
    PASSED.with(|passed| passed.set(passed.get() + time));
}

pub(super) fn container(id: &str, health: Health) -> Container {
    Container {
        id: id.into(),
        name: format!("p-web-{id}"),
        number: 1,
        state: State::Running,
        exit_code: 0,
        health,
        config_hash: "old".into(),
        image: String::new(),
        created: String::new(),
        healthcheck: (health != Health::None).then_some(CHECK),
        last_check_output: None,
        addresses: Vec::new(),
        published: Vec::new(),
    }
}

fn plan(old: &[&str], target: u32) -> Plan {
    batched(old, target, 0, Order::StartFirst)
}

/// A plan in batches of `parallelism`, as the planner splits it.
pub(super) fn batched(old: &[&str], target: u32, parallelism: u32, order: Order) -> Plan {
    let mut snapshot = crate::plan::Snapshot {
        project: "p".into(),
        service: "web".into(),
        config: Default::default(),
        config_hash: "new".into(),
        containers: old
            .iter()
            .enumerate()
            .map(|(index, id)| Container {
                number: index as u32 + 1,
                ..container(id, Health::Healthy)
            })
            .collect(),
        journal: None,
        follow_replicas: true,
        batching: crate::plan::Batching { parallelism, order },
    };
    snapshot.config.replicas = Some(target);
    crate::plan::plan(&snapshot).expect("a valid plan")
}

pub(super) fn drain_settings() -> Settings {
    Settings {
        pre_stop: true,
        wait_until_unhealthy: true,
        wait_after_unhealthy: Duration::from_secs(2),
        ..Settings::default()
    }
}

pub(super) fn created(id: &str, checked: bool) -> Created {
    Created {
        id: id.into(),
        healthcheck: checked.then_some(CHECK),
    }
}

pub(super) fn status(id: &str, state: State, health: Health) -> Status {
    Status {
        id: id.into(),
        state,
        health,
        exit_code: if state == State::Exited { 3 } else { 0 },
    }
}

/// An action in a few words; waits as offsets from the test's start.
pub(super) fn show(action: &Action, start: Instant) -> String {
    match action {
        Action::Remove(ids) => format!("rm {}", ids.join(",")),
        Action::Scale {
            total,
            start_by_id: false,
        } => format!("scale {total}"),
        Action::Scale { total, .. } => format!("create {total} and start"),
        Action::Restore(ids) => format!("restore {}", ids.join(",")),
        Action::Watch { ids, until } => {
            format!(
                "watch [{}] until {}s",
                ids.join(","),
                (*until - start).as_secs_f64()
            )
        }
        Action::PreStop(ids) => format!("pre-stop {}", ids.join(",")),
        Action::AwaitProxy { ids, until } => format!(
            "ask proxy [{}] until {}s",
            ids.join(","),
            (*until - start).as_secs_f64()
        ),
        Action::UndoPreStop(ids) => format!("undo pre-stop {}", ids.join(",")),
        Action::Retire { ids, keep: false } => format!("retire {}", ids.join(",")),
        Action::Retire { ids, keep: true } => format!("stop {}", ids.join(",")),
        Action::Verify => "verify".into(),
        Action::RollBack { keep } => format!("rollback keeping {}", keep.join(",")),
        Action::Finish(outcome) => format!("exit {}", outcome.exit.code()),
        Action::Analyze { command, reset } => format!(
            "analyze{}{}",
            if *command { " +cmd" } else { "" },
            if *reset { " (reset)" } else { "" }
        ),
    }
}

mod canary;

/// Runs the steps: (seconds to let pass first, input, expected action).
fn run(machine: &mut Machine, steps: Vec<(u64, Input, &str)>) -> Action {
    let start = now();
    let mut last = None;
    for (index, (wait, input, expected)) in steps.into_iter().enumerate() {
        pass(Duration::from_secs(wait));
        let action = machine.handle(input, now());
        assert_eq!(show(&action, start), expected, "step {index}");
        assert_reads_well(machine, &action);
        last = Some(action);
    }
    last.expect("at least one step")
}

/// What the user reads has no run of spaces (a line break inside a string literal without its
/// trailing backslash leaves one).
pub(super) fn assert_reads_well(machine: &Machine, action: &Action) {
    let notes = machine.notes.iter().map(|note| match note {
        Note::Info(text) | Note::Warning(text) => text.as_str(),
    });
    let finish = match action {
        Action::Finish(outcome) => Some(outcome.message.as_str()),
        _ => None,
    };
    for text in notes.chain(finish) {
        assert!(!text.contains("  "), "a run of spaces in: {text}");
    }
}

fn healthy(id: &str) -> Input {
    Input::Observed(vec![status(id, State::Running, Health::Healthy)])
}

#[test]
fn a_rollout_with_the_drain_recipe() {
    let mut machine = Machine::new(plan(&["a1"], 1), drain_settings());
    let last = run(
        &mut machine,
        vec![
            (0, Input::Begin, "scale 2"),
            (
                1,
                Input::Scaled(vec![created("b1", true)]),
                "watch [b1] until 7s",
            ),
            (
                0,
                Input::Observed(vec![status("b1", State::Running, Health::Starting)]),
                "watch [b1] until 7s",
            ),
            (1, healthy("b1"), "pre-stop a1"),
            (0, Input::PreStopFinished(vec![]), "watch [a1] until 8s"),
            (
                0,
                Input::Observed(vec![status("a1", State::Running, Health::Healthy)]),
                "watch [a1] until 8s",
            ),
            (
                1,
                Input::Observed(vec![status("a1", State::Running, Health::Unhealthy)]),
                "watch [] until 5s",
            ),
            (2, Input::Deadline, "retire a1"),
            (0, Input::Done, "verify"),
            (
                0,
                Input::Verified(vec![container("b1", Health::Healthy)]),
                "exit 0",
            ),
        ],
    );
    assert!(
        matches!(last, Action::Finish(Outcome { message, .. }) if message.contains("1 new container(s) serve"))
    );
}

#[test]
fn failures_before_the_old_containers_are_touched_roll_back() {
    let observed = |state, health| Input::Observed(vec![status("b1", state, health)]);
    type Steps = Vec<(u64, Input, &'static str)>;
    let cases: Vec<(&str, Steps)> = vec![
        (
            "unhealthy at once, not at the timeout",
            vec![(
                1,
                observed(State::Running, Health::Unhealthy),
                "rollback keeping a1",
            )],
        ),
        (
            "exited",
            vec![(
                1,
                observed(State::Exited, Health::None),
                "rollback keeping a1",
            )],
        ),
        (
            "removed by someone",
            vec![(1, Input::Observed(vec![]), "rollback keeping a1")],
        ),
        (
            "never healthy",
            vec![
                (
                    1,
                    observed(State::Running, Health::Starting),
                    "watch [b1] until 6s",
                ),
                (5, Input::Deadline, "rollback keeping a1"),
            ],
        ),
        (
            "SIGINT",
            vec![(
                1,
                Input::Interrupted(Signal::Interrupt),
                "rollback keeping a1",
            )],
        ),
    ];
    for (name, steps) in cases {
        // No pre-stop: the rollback goes straight to removal (its drain is tested below).
        let mut machine = Machine::new(plan(&["a1"], 1), Settings::default());
        let mut all = vec![
            (0, Input::Begin, "scale 2"),
            (
                0,
                Input::Scaled(vec![created("b1", true)]),
                "watch [b1] until 6s",
            ),
        ];
        all.extend(steps);
        run(&mut machine, all);
        let finish = machine.handle(Input::Done, now());
        let expected = if name == "SIGINT" {
            Exit::Interrupted
        } else {
            Exit::RolledBack
        };
        assert!(
            matches!(&finish, Action::Finish(Outcome { exit, message }) if *exit == expected && message.contains("old container(s) still serve")),
            "{name}: {finish:?}"
        );
    }
}

/// The scale created fewer than asked: rolled back; when removing fails too, the message says what
/// is left, also when the engine could not even list it.
#[test]
fn the_scale_must_create_exactly_what_was_asked() {
    let cases = [
        (vec!["b1".to_owned()], "docker rm: boom"),
        (
            Vec::new(),
            "cannot list the service's containers: engine gone",
        ),
    ];
    for (left, why) in cases {
        let mut machine = Machine::new(plan(&["a1", "a2"], 2), Settings::default());
        let last = run(
            &mut machine,
            vec![
                (0, Input::Begin, "scale 4"),
                (
                    0,
                    Input::Scaled(vec![created("b1", true)]),
                    "rollback keeping a1,a2",
                ),
                (
                    0,
                    Input::RollbackFailed {
                        left,
                        why: why.into(),
                    },
                    "exit 3",
                ),
            ],
        );
        let message = finish_message(&last);
        assert!(
            !message.contains("docker rm -f ;") && !message.ends_with("docker rm -f "),
            "{message}"
        );
        assert!(
            message.contains(why)
                && (message.contains("b1") || message.contains("docker compose ps")),
            "{message}"
        );
    }
}

#[test]
fn without_a_healthcheck_the_new_containers_must_keep_running() {
    let running = || Input::Observed(vec![status("b1", State::Running, Health::None)]);
    let mut machine = Machine::new(plan(&["a1"], 1), Settings::default());
    run(
        &mut machine,
        vec![
            (0, Input::Begin, "scale 2"),
            (
                0,
                Input::Scaled(vec![created("b1", false)]),
                "watch [b1] until 10s",
            ),
            (0, running(), "watch [b1] until 10s"),
            (10, Input::Deadline, "retire a1"),
        ],
    );

    let mut crashing = Machine::new(plan(&["a1"], 1), Settings::default());
    run(
        &mut crashing,
        vec![
            (0, Input::Begin, "scale 2"),
            (
                0,
                Input::Scaled(vec![created("b1", false)]),
                "watch [b1] until 10s",
            ),
            (
                3,
                Input::Observed(vec![status("b1", State::Exited, Health::None)]),
                "rollback keeping a1",
            ),
        ],
    );
}

#[test]
fn past_the_pre_stop_the_rollout_finishes() {
    let mut machine = Machine::new(plan(&["a1"], 1), drain_settings());
    run(
        &mut machine,
        vec![
            (0, Input::Begin, "scale 2"),
            (
                0,
                Input::Scaled(vec![created("b1", true)]),
                "watch [b1] until 6s",
            ),
            (1, healthy("b1"), "pre-stop a1"),
            // A signal now is noted; the drain goes on.
            (0, Input::Interrupted(Signal::Terminate), "pre-stop a1"),
            (0, Input::PreStopFinished(vec![]), "watch [a1] until 7s"),
            // A drain timeout warns and goes on: the new container already serves.
            (5, Input::Deadline, "watch [] until 8s"),
            (2, Input::Deadline, "retire a1"),
            (0, Input::Failed("stop: boom".into()), "exit 3"),
        ],
    );
    let notes = machine.take_notes();
    assert!(
        notes
            .iter()
            .any(|n| matches!(n, Note::Warning(w) if w.contains("finishing that step")))
    );
    assert!(
        notes
            .iter()
            .any(|n| matches!(n, Note::Warning(w) if w.contains("did not turn unhealthy")))
    );
}

/// A host-network service shares the host's ports: starting first only works if it listens on
/// none, so the user hears about it before anything starts, and not on a first deploy.
#[test]
fn a_host_network_service_started_first_is_warned_about() {
    let host_network = |old: &[&str]| {
        let mut plan = plan(old, 1);
        plan.host_network = true;
        Machine::new(plan, Settings::default())
    };
    let mut machine = host_network(&["a1"]);
    run(&mut machine, vec![(0, Input::Begin, "scale 2")]);
    let notes = format!("{:?}", machine.take_notes());
    assert!(
        notes.contains("network_mode host") && notes.contains("--order stop-first"),
        "{notes}"
    );

    let mut first = host_network(&[]);
    run(&mut first, vec![(0, Input::Begin, "scale 1")]);
    assert!(!format!("{:?}", first.take_notes()).contains("network_mode"));
}

#[test]
fn a_failed_pre_stop_is_not_waited_on() {
    let settings = drain_settings();
    let mut machine = Machine::new(plan(&["a1", "a2"], 2), settings);
    run(
        &mut machine,
        vec![
            (0, Input::Begin, "scale 4"),
            (
                0,
                Input::Scaled(vec![created("b1", true), created("b2", true)]),
                "watch [b1,b2] until 6s",
            ),
            (
                1,
                Input::Observed(vec![
                    status("b1", State::Running, Health::Healthy),
                    status("b2", State::Running, Health::Healthy),
                ]),
                "pre-stop a1,a2",
            ),
            (
                0,
                Input::PreStopFinished(vec![("a2".into(), "exit 1".into())]),
                "watch [a1] until 7s",
            ),
            (
                1,
                Input::Observed(vec![status("a1", State::Running, Health::Unhealthy)]),
                "watch [] until 4s",
            ),
        ],
    );
}

#[test]
fn leftovers_go_first_and_a_first_deploy_has_nothing_to_retire() {
    let mut with_leftover = plan(&["a1"], 1);
    with_leftover.leftovers = vec![Container {
        state: State::Exited,
        ..container("x9", Health::None)
    }];
    let mut machine = Machine::new(with_leftover, Settings::default());
    run(
        &mut machine,
        vec![(0, Input::Begin, "rm x9"), (0, Input::Done, "scale 2")],
    );

    let mut first = Machine::new(plan(&[], 1), drain_settings());
    run(
        &mut first,
        vec![
            (0, Input::Begin, "scale 1"),
            (
                0,
                Input::Scaled(vec![created("b1", true)]),
                "watch [b1] until 6s",
            ),
            (1, healthy("b1"), "verify"),
            (
                0,
                Input::Verified(vec![container("b1", Health::Healthy)]),
                "exit 0",
            ),
        ],
    );
}

#[test]
fn verification_names_what_should_not_be_there() {
    let mut machine = Machine::new(plan(&["a1"], 1), Settings::default());
    let last = run(
        &mut machine,
        vec![
            (0, Input::Begin, "scale 2"),
            (
                0,
                Input::Scaled(vec![created("b1", true)]),
                "watch [b1] until 6s",
            ),
            (1, healthy("b1"), "retire a1"),
            (0, Input::Done, "verify"),
            (
                0,
                Input::Verified(vec![
                    container("b1", Health::Healthy),
                    container("a1", Health::Healthy),
                ]),
                "exit 3",
            ),
        ],
    );
    assert!(
        matches!(last, Action::Finish(Outcome { message, .. }) if message.contains("docker rm -f a1"))
    );
}

#[test]
fn an_explicit_health_timeout_wins_over_the_derived_one() {
    let settings = Settings {
        healthcheck_timeout: Some(Duration::from_secs(90)),
        ..Settings::default()
    };
    let mut machine = Machine::new(plan(&["a1"], 1), settings);
    run(
        &mut machine,
        vec![
            (0, Input::Begin, "scale 2"),
            (
                0,
                Input::Scaled(vec![created("b1", true)]),
                "watch [b1] until 90s",
            ),
        ],
    );
}

#[test]
fn a_rollback_drains_new_containers_a_proxy_may_already_use() {
    let mut machine = Machine::new(plan(&["a1"], 1), drain_settings());
    run(
        &mut machine,
        vec![
            (0, Input::Begin, "scale 2"),
            (
                0,
                Input::Scaled(vec![created("b1", true), created("b2", true)]),
                "rollback keeping a1",
            ),
        ],
    );

    let settle = Settings {
        wait_after_healthy: Duration::from_secs(5),
        ..drain_settings()
    };
    let mut machine = Machine::new(plan(&["a1", "a2"], 2), settle);
    run(
        &mut machine,
        vec![
            (0, Input::Begin, "scale 4"),
            (
                0,
                Input::Scaled(vec![created("b1", true), created("b2", true)]),
                "watch [b1,b2] until 6s",
            ),
            (
                1,
                Input::Observed(vec![
                    status("b1", State::Running, Health::Healthy),
                    status("b2", State::Running, Health::Healthy),
                ]),
                "watch [b1,b2] until 6s",
            ),
            // Settling, b2 dies: b1 is healthy and may serve, so it is drained before removal.
            (
                1,
                Input::Observed(vec![status("b1", State::Running, Health::Healthy)]),
                "pre-stop b1",
            ),
            (0, Input::PreStopFinished(vec![]), "watch [b1] until 8s"),
            (
                1,
                Input::Observed(vec![status("b1", State::Running, Health::Unhealthy)]),
                "watch [] until 5s",
            ),
            (2, Input::Deadline, "rollback keeping a1,a2"),
            (0, Input::Done, "exit 1"),
        ],
    );
}

/// b1 scaled next to a1, `to_rollback_drain` leads to the rollback draining b1; then a second
/// signal, and only that, cuts the drain short.
fn a_second_signal_cuts_the_drain(to_rollback_drain: [(u64, Input, &str); 2]) {
    let mut machine = Machine::new(plan(&["a1"], 1), drain_settings());
    let mut steps = vec![
        (0, Input::Begin, "scale 2"),
        (
            0,
            Input::Scaled(vec![created("b1", true)]),
            "watch [b1] until 6s",
        ),
    ];
    steps.extend(to_rollback_drain);
    steps.extend([
        (0, Input::PreStopFinished(vec![]), "watch [] until 3s"),
        (
            0,
            Input::Interrupted(Signal::Interrupt),
            "rollback keeping a1",
        ),
        (0, Input::Done, "exit 130"),
    ]);
    run(&mut machine, steps);
}

#[test]
fn a_second_signal_cuts_the_rollback_drain_short() {
    let starting = Input::Observed(vec![status("b1", State::Running, Health::Starting)]);
    a_second_signal_cuts_the_drain([
        (1, starting, "watch [b1] until 6s"),
        (0, Input::Interrupted(Signal::Interrupt), "pre-stop b1"),
    ]);
}

#[test]
fn one_signal_during_a_failed_releases_drain_lets_the_drain_finish() {
    let unhealthy = Input::Observed(vec![status("b1", State::Running, Health::Unhealthy)]);
    a_second_signal_cuts_the_drain([
        (1, unhealthy, "pre-stop b1"),
        (0, Input::Interrupted(Signal::Interrupt), "pre-stop b1"),
    ]);
}

#[test]
fn a_signal_that_arrives_after_its_failure_ends_the_run_as_interrupted() {
    let mut machine = Machine::new(plan(&["a1"], 1), drain_settings());
    run(
        &mut machine,
        vec![
            (0, Input::Begin, "scale 2"),
            // Ctrl-C killed a docker child of the scale first: its failure comes in, then the signal.
            (
                0,
                Input::Failed("`docker ps` failed: ".into()),
                "rollback keeping a1",
            ),
            (
                0,
                Input::Interrupted(Signal::Interrupt),
                "rollback keeping a1",
            ),
            (0, Input::Done, "exit 130"),
        ],
    );
}

fn all_healthy(ids: &[&str]) -> Input {
    Input::Observed(
        ids.iter()
            .map(|id| status(id, State::Running, Health::Healthy))
            .collect(),
    )
}

fn finish_message(action: &Action) -> &str {
    match action {
        Action::Finish(outcome) => &outcome.message,
        other => panic!("not finished: {other:?}"),
    }
}

fn with(failure_action: FailureAction) -> Settings {
    Settings {
        parallelism: 1,
        failure_action,
        ..Settings::default()
    }
}

#[test]
fn batches_of_one_never_run_more_than_one_extra_container() {
    let mut machine = Machine::new(
        batched(&["a1", "a2", "a3"], 3, 1, Order::StartFirst),
        with(FailureAction::Rollback),
    );
    let last = run(
        &mut machine,
        vec![
            (0, Input::Begin, "scale 4"),
            (
                0,
                Input::Scaled(vec![created("b1", true)]),
                "watch [b1] until 6s",
            ),
            (1, all_healthy(&["b1"]), "stop a1"),
            // a1 is kept stopped: Compose must not start it again, so creation is by id.
            (0, Input::Done, "create 5 and start"),
            (
                0,
                Input::Scaled(vec![created("b2", true)]),
                "watch [b1,b2] until 7s",
            ),
            (1, all_healthy(&["b1", "b2"]), "stop a2"),
            (0, Input::Done, "create 6 and start"),
            (
                0,
                Input::Scaled(vec![created("b3", true)]),
                "watch [b1,b2,b3] until 8s",
            ),
            (1, all_healthy(&["b1", "b2", "b3"]), "retire a3"),
            (0, Input::Done, "rm a1,a2"),
            (0, Input::Done, "verify"),
            (
                0,
                Input::Verified(vec![
                    container("b1", Health::Healthy),
                    container("b2", Health::Healthy),
                    container("b3", Health::Healthy),
                ]),
                "exit 0",
            ),
        ],
    );
    assert!(finish_message(&last).contains("3 old one(s) retired"));
}

#[test]
fn a_failing_second_batch_rolls_back_the_first() {
    let mut machine = Machine::new(
        batched(&["a1", "a2", "a3"], 3, 1, Order::StartFirst),
        with(FailureAction::Rollback),
    );
    let last = run(
        &mut machine,
        vec![
            (0, Input::Begin, "scale 4"),
            (
                0,
                Input::Scaled(vec![created("b1", true)]),
                "watch [b1] until 6s",
            ),
            (1, all_healthy(&["b1"]), "stop a1"),
            (0, Input::Done, "create 5 and start"),
            (
                0,
                Input::Scaled(vec![created("b2", true)]),
                "watch [b1,b2] until 7s",
            ),
            (
                1,
                Input::Observed(vec![
                    status("b1", State::Running, Health::Healthy),
                    status("b2", State::Running, Health::Unhealthy),
                ]),
                "rollback keeping a1,a2,a3,b1",
            ),
            // The old container of the good batch comes back before the good new one goes.
            (0, Input::Done, "restore a1"),
            (0, Input::Done, "watch [a1] until 8s"),
            (1, all_healthy(&["a1"]), "rollback keeping a1,a2,a3"),
            (0, Input::Done, "exit 1"),
        ],
    );
    assert!(
        finish_message(&last).contains("(1 of them restarted)"),
        "{last:?}"
    );
}

#[test]
fn an_old_container_that_does_not_come_back_is_reported_not_hidden() {
    let settings = Settings {
        pre_stop: true,
        ..with(FailureAction::Rollback)
    };
    let mut machine = Machine::new(batched(&["a1", "a2"], 2, 1, Order::StartFirst), settings);
    let last = run(
        &mut machine,
        vec![
            (0, Input::Begin, "scale 3"),
            (
                0,
                Input::Scaled(vec![created("b1", true)]),
                "watch [b1] until 6s",
            ),
            (1, all_healthy(&["b1"]), "pre-stop a1"),
            (0, Input::PreStopFinished(vec![]), "stop a1"),
            (0, Input::Done, "create 4 and start"),
            (
                0,
                Input::Scaled(vec![created("b2", false)]),
                "watch [b1,b2] until 7s",
            ),
            (
                1,
                Input::Observed(vec![
                    status("b1", State::Running, Health::Healthy),
                    status("b2", State::Exited, Health::None),
                ]),
                "rollback keeping a1,a2,b1",
            ),
            (0, Input::Done, "restore a1"),
            (0, Input::Done, "watch [a1] until 8s"),
            (
                1,
                Input::Observed(vec![status("a1", State::Running, Health::Unhealthy)]),
                "exit 3",
            ),
        ],
    );
    let message = finish_message(&last);
    assert!(message.contains("--undo-pre-stop-cmd"), "{message}");
    assert!(message.contains("Still serving: b1 a2"), "{message}");
    assert!(message.contains("started but not healthy: a1"), "{message}");
}

#[test]
fn pause_and_continue_undo_only_the_failed_batch() {
    let failing_second_batch = |settings| {
        let mut machine = Machine::new(
            batched(&["a1", "a2", "a3"], 3, 1, Order::StartFirst),
            settings,
        );
        run(
            &mut machine,
            vec![
                (0, Input::Begin, "scale 4"),
                (
                    0,
                    Input::Scaled(vec![created("b1", true)]),
                    "watch [b1] until 6s",
                ),
                (1, all_healthy(&["b1"]), "retire a1"),
                (0, Input::Done, "scale 4"),
                (
                    0,
                    Input::Scaled(vec![created("b2", true)]),
                    "watch [b1,b2] until 7s",
                ),
                (
                    1,
                    Input::Observed(vec![
                        status("b1", State::Running, Health::Healthy),
                        status("b2", State::Exited, Health::None),
                    ]),
                    "rollback keeping a2,a3,b1",
                ),
            ],
        );
        machine
    };

    let mut paused = failing_second_batch(with(FailureAction::Pause));
    let last = paused.handle(Input::Done, now());
    assert!(matches!(&last, Action::Finish(o) if o.exit == Exit::Partial));
    assert!(
        finish_message(&last).contains("paused after batch 2 of 3: 1 new (b1) and 2 old (a2 a3)"),
        "{last:?}"
    );

    let mut continued = failing_second_batch(with(FailureAction::Continue));
    let last = run(
        &mut continued,
        vec![
            (0, Input::Done, "scale 4"),
            (
                0,
                Input::Scaled(vec![created("b3", true)]),
                "watch [b1,b3] until 6s",
            ),
            (1, all_healthy(&["b1", "b3"]), "retire a3"),
            (0, Input::Done, "verify"),
            (
                0,
                Input::Verified(vec![
                    container("b1", Health::Healthy),
                    container("a2", Health::Healthy),
                    container("b3", Health::Healthy),
                ]),
                "exit 1",
            ),
        ],
    );
    assert!(
        finish_message(&last)
            .contains("1 old one(s) kept serving because their replacements failed (a2)"),
        "{last:?}"
    );
}

#[test]
fn failures_within_max_failure_ratio_are_tolerated() {
    let settings = Settings {
        max_failure_ratio: 0.34,
        ..with(FailureAction::Rollback)
    };
    let mut machine = Machine::new(
        batched(&["a1", "a2", "a3"], 3, 1, Order::StartFirst),
        settings,
    );
    run(
        &mut machine,
        vec![
            (0, Input::Begin, "scale 4"),
            (
                0,
                Input::Scaled(vec![created("b1", true)]),
                "watch [b1] until 6s",
            ),
            (1, all_healthy(&["b1"]), "stop a1"),
            (0, Input::Done, "create 5 and start"),
            (
                0,
                Input::Scaled(vec![created("b2", true)]),
                "watch [b1,b2] until 7s",
            ),
            // One failure in three is within 0.34: only this batch is undone.
            (
                1,
                Input::Observed(vec![
                    status("b1", State::Running, Health::Healthy),
                    status("b2", State::Running, Health::Unhealthy),
                ]),
                "rollback keeping a1,a2,a3,b1",
            ),
            (0, Input::Done, "create 5 and start"),
            (
                0,
                Input::Scaled(vec![created("b3", true)]),
                "watch [b1,b3] until 8s",
            ),
            (1, all_healthy(&["b1", "b3"]), "retire a3"),
            (0, Input::Done, "rm a1"),
            (0, Input::Done, "verify"),
        ],
    );
    assert_eq!(machine.fleet.spared, vec!["a2".to_owned()]);
}

#[test]
fn stop_first_stops_the_old_container_first_and_restarts_it_on_failure() {
    let settings = Settings {
        order: Order::StopFirst,
        ..Settings::default()
    };
    let mut machine = Machine::new(batched(&["a1"], 1, 0, Order::StopFirst), settings.clone());
    run(
        &mut machine,
        vec![
            (0, Input::Begin, "stop a1"),
            (0, Input::Done, "create 2 and start"),
            (
                0,
                Input::Scaled(vec![created("b1", true)]),
                "watch [b1] until 6s",
            ),
            (1, all_healthy(&["b1"]), "rm a1"),
            (0, Input::Done, "verify"),
            (
                0,
                Input::Verified(vec![container("b1", Health::Healthy)]),
                "exit 0",
            ),
        ],
    );
    assert!(
        machine
            .take_notes()
            .iter()
            .any(|n| matches!(n, Note::Warning(w) if w.contains("gap")))
    );

    let mut failing = Machine::new(batched(&["a1"], 1, 0, Order::StopFirst), settings);
    run(
        &mut failing,
        vec![
            (0, Input::Begin, "stop a1"),
            (0, Input::Done, "create 2 and start"),
            (
                0,
                Input::Scaled(vec![created("b1", true)]),
                "watch [b1] until 6s",
            ),
            // The new container goes first: it may hold the host port the old one needs.
            (6, Input::Deadline, "rollback keeping a1"),
            (0, Input::Done, "restore a1"),
            (0, Input::Done, "watch [a1] until 12s"),
            (1, all_healthy(&["a1"]), "exit 1"),
        ],
    );
}

#[test]
fn a_signal_between_batches_rolls_back_everything() {
    let mut machine = Machine::new(
        batched(&["a1", "a2"], 2, 1, Order::StartFirst),
        with(FailureAction::Rollback),
    );
    run(
        &mut machine,
        vec![
            (0, Input::Begin, "scale 3"),
            (
                0,
                Input::Scaled(vec![created("b1", true)]),
                "watch [b1] until 6s",
            ),
            (1, all_healthy(&["b1"]), "stop a1"),
            // Retiring: the step finishes; the next batch does not start.
            (0, Input::Interrupted(Signal::Interrupt), "stop a1"),
            // Nothing is broken, but whatever nobody saw goes first.
            (0, Input::Done, "rollback keeping a1,a2,b1"),
            (0, Input::Done, "restore a1"),
            (0, Input::Done, "watch [a1] until 7s"),
            (0, all_healthy(&["a1"]), "rollback keeping a1,a2"),
            (0, Input::Done, "exit 130"),
        ],
    );
}

#[test]
fn the_delay_between_batches_still_watches_the_new_containers() {
    let settings = Settings {
        delay: Duration::from_secs(5),
        ..with(FailureAction::Rollback)
    };
    let mut machine = Machine::new(batched(&["a1", "a2"], 2, 1, Order::StartFirst), settings);
    run(
        &mut machine,
        vec![
            (0, Input::Begin, "scale 3"),
            (
                0,
                Input::Scaled(vec![created("b1", true)]),
                "watch [b1] until 6s",
            ),
            (1, all_healthy(&["b1"]), "stop a1"),
            (0, Input::Done, "watch [b1] until 6s"),
            // b1 dies during the delay: the rollback brings a1 back before anything else.
            (
                2,
                Input::Observed(vec![status("b1", State::Exited, Health::None)]),
                "rollback keeping a1,a2",
            ),
            (0, Input::Done, "restore a1"),
        ],
    );
}

#[test]
fn a_run_that_ends_short_of_its_target_does_not_exit_0() {
    let mut machine = Machine::new(
        batched(&["a1", "a2"], 3, 1, Order::StartFirst),
        with(FailureAction::Continue),
    );
    let last = run(
        &mut machine,
        vec![
            (0, Input::Begin, "scale 3"),
            (
                0,
                Input::Scaled(vec![created("b1", true)]),
                "watch [b1] until 6s",
            ),
            (1, all_healthy(&["b1"]), "retire a1"),
            (0, Input::Done, "scale 3"),
            (
                0,
                Input::Scaled(vec![created("b2", true)]),
                "watch [b1,b2] until 7s",
            ),
            (1, all_healthy(&["b1", "b2"]), "retire a2"),
            // The third batch only adds a container, and it fails: nothing to keep serving.
            (0, Input::Done, "scale 3"),
            (
                0,
                Input::Scaled(vec![created("b3", true)]),
                "watch [b1,b2,b3] until 8s",
            ),
            (
                1,
                Input::Observed(vec![
                    status("b1", State::Running, Health::Healthy),
                    status("b2", State::Running, Health::Healthy),
                    status("b3", State::Exited, Health::None),
                ]),
                "rollback keeping b1,b2",
            ),
            (0, Input::Done, "verify"),
            (
                0,
                Input::Verified(vec![
                    container("b1", Health::Healthy),
                    container("b2", Health::Healthy),
                ]),
                "exit 1",
            ),
        ],
    );
    assert!(
        finish_message(&last).contains("1 fewer than the 3 wanted"),
        "{last:?}"
    );
}

fn proxy_settings(still_routing: StillRouting) -> Settings {
    Settings {
        pre_stop: true,
        undo_pre_stop: true,
        verify_proxy: true,
        proxy_timeout: Duration::from_secs(30),
        still_routing,
        ..Settings::default()
    }
}

/// What the proxy shows: each id with its route.
pub(super) fn proxy(routes: &[(&str, Route)]) -> Input {
    Input::Routing(Ok(Routing {
        routes: routes
            .iter()
            .map(|(id, route)| (id.to_string(), *route))
            .collect(),
        shown: format!("test proxy: {routes:?}"),
    }))
}

/// The steps up to the new container being healthy, with the proxy asked next.
fn verified_start() -> Vec<(u64, Input, &'static str)> {
    vec![
        (0, Input::Begin, "scale 2"),
        (
            0,
            Input::Scaled(vec![created("b1", true)]),
            "watch [b1] until 6s",
        ),
        (1, healthy("b1"), "ask proxy [b1] until 31s"),
    ]
}

#[test]
fn with_a_proxy_every_transition_waits_for_what_it_routes() {
    use StillRouting::Keep;
    let mut machine = Machine::new(plan(&["a1"], 1), proxy_settings(Keep));
    let mut steps = verified_start();
    steps.extend([
        (0, proxy(&[("b1", Route::Out)]), "ask proxy [b1] until 31s"),
        (
            1,
            Input::Routing(Err("refused".into())),
            "ask proxy [b1] until 31s",
        ),
        (1, proxy(&[("b1", Route::Serving)]), "pre-stop a1"),
        (
            0,
            Input::PreStopFinished(vec![]),
            "ask proxy [a1] until 33s",
        ),
        (
            1,
            proxy(&[("a1", Route::Serving)]),
            "ask proxy [a1] until 33s",
        ),
        (
            1,
            proxy(&[("a1", Route::Finishing { in_flight: 2 })]),
            "ask proxy [a1] until 33s",
        ),
        (
            0,
            Input::Routing(Err("timeout".into())),
            "ask proxy [a1] until 33s",
        ),
        (0, proxy(&[("a1", Route::Out)]), "retire a1"),
        (0, Input::Done, "verify"),
        (
            0,
            Input::Verified(vec![container("b1", Health::Healthy)]),
            "exit 0",
        ),
    ]);
    run(&mut machine, steps);
}

#[test]
fn a_proxy_that_never_routes_to_the_new_containers_rolls_back() {
    use StillRouting::Keep;
    let mut machine = Machine::new(plan(&["a1"], 1), proxy_settings(Keep));
    let mut steps = verified_start();
    steps.extend([
        (1, proxy(&[("b1", Route::Out)]), "ask proxy [b1] until 31s"),
        // Healthy, so possibly in the proxy's rotation after all: drained before removal.
        (29, Input::Deadline, "pre-stop b1"),
        (
            0,
            Input::PreStopFinished(vec![]),
            "ask proxy [b1] until 61s",
        ),
        (1, proxy(&[("b1", Route::Out)]), "rollback keeping a1"),
    ]);
    run(&mut machine, steps);
    let finish = machine.handle(Input::Done, now());
    let message = finish_message(&finish);
    assert!(
        message.contains("the proxy did not route to new container(s) b1 within 30.00s")
            && message.contains("b1 not routed")
            && message.contains("test proxy")
            && message.contains("rolled back"),
        "{message}"
    );
    assert!(matches!(
        finish,
        Action::Finish(Outcome {
            exit: Exit::RolledBack,
            ..
        })
    ));
}

#[test]
fn an_old_container_the_proxy_keeps_routing_to_is_kept_serving_by_default() {
    use StillRouting::Keep;
    let mut machine = Machine::new(plan(&["a1", "a2"], 2), proxy_settings(Keep));
    let steps = vec![
        (0, Input::Begin, "scale 4"),
        (
            0,
            Input::Scaled(vec![created("b1", true), created("b2", true)]),
            "watch [b1,b2] until 6s",
        ),
        (1, all_healthy(&["b1", "b2"]), "ask proxy [b1,b2] until 31s"),
        (
            0,
            proxy(&[("b1", Route::Serving), ("b2", Route::Serving)]),
            "pre-stop a1,a2",
        ),
        (
            0,
            Input::PreStopFinished(vec![]),
            "ask proxy [a1,a2] until 31s",
        ),
        (
            1,
            proxy(&[("a1", Route::Out), ("a2", Route::Serving)]),
            "ask proxy [a1,a2] until 31s",
        ),
        (29, Input::Deadline, "undo pre-stop a2"),
        (0, Input::Done, "retire a1"),
        (0, Input::Done, "verify"),
        (
            0,
            Input::Verified(vec![
                container("b1", Health::Healthy),
                container("b2", Health::Healthy),
                container("a2", Health::Unhealthy),
            ]),
            "exit 1",
        ),
    ];
    let last = run(&mut machine, steps);
    let message = finish_message(&last);
    assert!(
        message.contains("1 old one(s) kept serving because the proxy still routed to them (a2)"),
        "{message}"
    );
    let notes = format!("{:?}", machine.take_notes());
    assert!(
        notes.contains("still routes to old container(s) a2 after 30.00s (a2 routed: test proxy")
            && notes.contains("--proxy-still-routing keep"),
        "{notes}"
    );
    assert!(machine.is_mixed(), "the journal is kept for the next run");
}

#[test]
fn told_to_stop_it_stops_what_the_proxy_still_routes_to() {
    use StillRouting::Stop;
    let mut machine = Machine::new(plan(&["a1"], 1), proxy_settings(Stop));
    let mut steps = verified_start();
    steps.extend([
        (0, proxy(&[("b1", Route::Serving)]), "pre-stop a1"),
        (
            0,
            Input::PreStopFinished(vec![]),
            "ask proxy [a1] until 31s",
        ),
        // An unanswered proxy counts as still routing.
        (
            0,
            Input::Routing(Err("refused".into())),
            "ask proxy [a1] until 31s",
        ),
        (30, Input::Deadline, "retire a1"),
    ]);
    run(&mut machine, steps);
    let notes = format!("{:?}", machine.take_notes());
    assert!(
        notes.contains(
            "the proxy may still route to old container(s) a1 after 30.00s (unknown: refused)"
        ) && notes.contains("stopping them anyway"),
        "{notes}"
    );
}

#[test]
fn a_signal_while_the_proxy_drops_the_old_ones_finishes_that_step() {
    use StillRouting::Keep;
    let interrupted = || {
        let mut steps = verified_start();
        steps.extend([
            (0, proxy(&[("b1", Route::Serving)]), "pre-stop a1"),
            (
                0,
                Input::PreStopFinished(vec![]),
                "ask proxy [a1] until 31s",
            ),
            (
                0,
                Input::Interrupted(Signal::Interrupt),
                "ask proxy [a1] until 31s",
            ),
        ]);
        steps
    };
    let mut patient = Machine::new(plan(&["a1"], 1), proxy_settings(Keep));
    let mut steps = interrupted();
    steps.push((1, proxy(&[("a1", Route::Out)]), "retire a1"));
    run(&mut patient, steps);

    let mut impatient = Machine::new(plan(&["a1"], 1), proxy_settings(Keep));
    let mut steps = interrupted();
    steps.push((0, Input::Interrupted(Signal::Interrupt), "retire a1"));
    run(&mut impatient, steps);
}

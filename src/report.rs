//! What the user sees: a line per step on stderr with the time since the start, readable in a
//! terminal and a CI log; with `--json`, one JSON object per event on stdout for machines. Kept
//! apart from the tracing logs (`-v`), which are for debugging.

use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;

use crate::docker::service::Listed;
use crate::duration::show;
use crate::exit::Exit;
use crate::model::container::Container;
use crate::model::host::{HostRow, HostState};
use crate::model::orphan::Fate;
use crate::model::policy::Order;
use crate::plan::Plan;
use crate::rollout::Phase;
use crate::service_settings::Source;

mod live;

/// Like `eprintln!`, but a closed stderr (the reader went away) must not stop a rollout midway;
/// with the live progress line on screen, the line goes above it.
macro_rules! say {
    ($reporter:expr, $($arg:tt)*) => {{
        let text = format!($($arg)*);
        if !$reporter.live.as_ref().is_some_and(|live| live.println(&text)) {
            let _ = writeln!(std::io::stderr().lock(), "{text}");
        }
    }};
}

pub struct Reporter {
    started: Instant,
    quiet: bool,
    json: bool,
    /// In a stack rollout, the service being rolled: every event names it.
    service: Mutex<Option<String>>,
    /// The progress line, on a terminal only (`live`).
    live: Option<live::Live>,
}

/// How a stack rollout ended, service by service.
#[derive(Debug, Default)]
pub struct StackOutcome {
    pub finished: Vec<String>,
    /// The failed service, rolled back: its old containers serve.
    pub rolled_back: Vec<String>,
    /// The failed service, its cleanup incomplete (exit 3): its own report says what is left.
    pub incomplete: Vec<String>,
    /// The service that failed part of the way (failure_action pause or continue): old and new
    /// containers serve side by side.
    pub partial: Vec<String>,
    pub not_started: Vec<String>,
}

impl Reporter {
    pub fn new(quiet: bool, json: bool) -> Self {
        let started = Instant::now();
        Reporter {
            started,
            quiet,
            json,
            service: Mutex::new(None),
            live: (!quiet && !json && live::wanted()).then(|| live::Live::new(started.into_std())),
        }
    }

    /// Plain lines only, even on a terminal: `-v` writes its logs to the same stderr.
    pub fn without_progress_line(mut self) -> Self {
        self.live = None;
        self
    }

    /// The progress line: the current wait ends at `deadline`.
    pub fn waiting_until(&self, deadline: Instant) {
        if let Some(live) = &self.live {
            live.waiting_until(deadline.into_std());
        }
    }

    /// The progress line: `done` of the `of` watched containers are `what` (e.g. "new healthy").
    pub fn tally(&self, done: usize, of: usize, what: &'static str) {
        if let Some(live) = &self.live {
            live.tally(done, of, what);
        }
    }

    /// Takes the progress line off the screen: the run's plain lines stay.
    fn clear_progress_line(&self) {
        if let Some(live) = &self.live {
            live.clear();
        }
    }

    /// Names `service` in every event from now on (a stack rollout's current service).
    pub fn tag_events_with(&self, service: Option<&str>) {
        *self.service.lock().unwrap_or_else(|e| e.into_inner()) = service.map(str::to_owned);
    }

    fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    fn line(&self, tag: &str, text: &str) {
        if !self.quiet {
            say!(self, "{:>7} {tag:<10} {text}", show(self.elapsed()));
        }
    }

    fn event(&self, kind: &str, mut fields: Value) {
        if !self.json {
            return;
        }
        fields["event"] = json!(kind);
        if let Some(service) = &*self.service.lock().unwrap_or_else(|e| e.into_inner())
            && fields.get("service").is_none()
        {
            fields["service"] = json!(service);
        }
        fields["elapsed_ms"] = json!(self.elapsed().as_millis() as u64);
        // Wall-clock time, comparable with the `timeNano` of `docker events`.
        let unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        fields["time_ms"] = json!(unix.as_millis() as u64);
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{fields}");
        let _ = stdout.flush();
    }

    pub fn info(&self, text: &str) {
        self.line("", text);
        self.event("info", json!({ "message": text }));
    }

    pub fn warning(&self, text: &str) {
        // Warnings show even with -q: they describe a rollout that may not have been clean.
        say!(
            self,
            "{:>7} {:<10} warning: {text}",
            show(self.elapsed()),
            ""
        );
        self.event("warning", json!({ "message": text }));
    }

    pub fn start(&self, service: &str, project: &str, detail: &str) {
        self.line("start", &format!("{service} (project {project}): {detail}"));
        self.event(
            "start",
            json!({ "service": service, "project": project, "message": detail }),
        );
    }

    /// `--dry-run`: what the rollout would do.
    pub fn plan(&self, service: &str, project: &str, plan: &Plan) {
        let list = |containers: &[Container]| {
            containers
                .iter()
                .map(|c| format!("{} ({})", c.name, c.short_id()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut steps = Vec::new();
        if !plan.leftovers.is_empty() {
            steps.push(format!(
                "remove stopped leftover(s): {}",
                list(&plan.leftovers)
            ));
        }
        if !plan.adopted.is_empty() {
            steps.push(format!(
                "keep as new (from an interrupted run): {}",
                list(&plan.adopted)
            ));
        }
        if let [batch] = plan.batches.as_slice() {
            if batch.create > 0 {
                steps.push(format!(
                    "scale {service} to {} containers, creating {} new one(s)",
                    plan.peak, batch.create
                ));
            }
            steps.push(format!(
                "wait until {} new container(s) are healthy",
                plan.target
            ));
            if !plan.retire.is_empty() {
                steps.push(format!("drain and retire: {}", list(&plan.retire)));
            }
        } else {
            let count = plan.batches.len();
            for (index, batch) in plan.batches.iter().enumerate() {
                let retire: Vec<Container> = plan
                    .retire
                    .iter()
                    .filter(|c| batch.retire.contains(&c.id))
                    .cloned()
                    .collect();
                let start = format!(
                    "start {} new container(s) and wait until healthy",
                    batch.create
                );
                let stop = format!("drain and retire {}", list(&retire));
                let (first, then) = match plan.order {
                    Order::StartFirst => (start, stop),
                    Order::StopFirst => (stop, start),
                };
                steps.push(format!(
                    "batch {} of {count}: {first}, then {then}",
                    index + 1
                ));
            }
            steps.push(format!(
                "at most {} containers run at once ({})",
                plan.peak,
                plan.order.name()
            ));
        }
        if let Some(recovery) = &plan.recovery {
            self.info(recovery);
        }
        self.line(
            "dry run",
            &format!("{service} (project {project}), nothing is changed:"),
        );
        for (number, step) in steps.iter().enumerate() {
            self.line("", &format!("{}. {step}", number + 1));
        }
        self.event(
            "plan",
            json!({
                "service": service,
                "project": project,
                "remove": plan.leftovers.iter().map(|c| &c.id).collect::<Vec<_>>(),
                "retire": plan.retire.iter().map(|c| &c.id).collect::<Vec<_>>(),
                "adopt": plan.adopted.iter().map(|c| &c.id).collect::<Vec<_>>(),
                "peak": plan.peak,
                "create": plan.to_create(),
                "order": plan.order,
                "batches": plan.batches.iter().map(|b| json!({ "create": b.create, "retire": b.retire })).collect::<Vec<_>>(),
                "target": plan.target,
            }),
        );
    }

    /// A service a stack rollout leaves alone, and why.
    pub fn skipped(&self, service: &str, why: &str) {
        self.line("skip", &format!("{service}: {why}, skipped"));
        self.event("skip", json!({ "service": service, "reason": why }));
    }

    /// A service a stack rollout will roll, and why.
    pub fn changed(&self, service: &str, why: &str) {
        self.line("changed", &format!("{service}: {why}"));
        self.event("changed", json!({ "service": service, "reason": why }));
    }

    /// The order a stack rollout goes in.
    pub fn order(&self, project: &str, services: &[String]) {
        self.line(
            "stack",
            &format!(
                "project {project}, in depends_on order: {}",
                services.join(", ")
            ),
        );
        self.event("order", json!({ "project": project, "services": services }));
    }

    /// `--dry-run`: the settings a service's rollout would use, and where each came from.
    pub fn settings(&self, service: &str, sources: &[(&str, String, Source)]) {
        self.line("", &format!("settings of {service}:"));
        for (key, value, source) in sources {
            self.line("", &format!("  {key} = {value} ({})", source.name()));
        }
        let settings: Vec<Value> = sources
            .iter()
            .map(|(key, value, source)| json!({ "key": key, "value": value, "source": source }))
            .collect();
        self.event(
            "settings",
            json!({ "service": service, "settings": settings }),
        );
    }

    /// Containers of services the compose file no longer has, a line per service, and their fate.
    pub fn orphans(&self, fate: Fate, containers: &[Listed]) {
        let mut by_service: Vec<(&str, Vec<String>)> = Vec::new();
        for container in containers {
            let shown = format!(
                "{} ({})",
                container.name,
                crate::template::short_id(&container.id)
            );
            match by_service.iter_mut().find(|(s, _)| *s == container.service) {
                Some((_, names)) => names.push(shown),
                None => by_service.push((&container.service, vec![shown])),
            }
        }
        for (service, names) in by_service {
            self.line(
                "orphan",
                &format!(
                    "service '{service}' is no longer in the compose file: {} {}",
                    names.join(", "),
                    fate.describe()
                ),
            );
        }
        let listed: Vec<Value> = containers
            .iter()
            .map(|c| json!({ "id": c.id, "name": c.name, "service": c.service }))
            .collect();
        self.event("orphans", json!({ "fate": fate, "containers": listed }));
    }

    /// The end of a stack rollout: which services finished, rolled back, were not started.
    pub fn stack_finish(&self, exit: Exit, outcome: &StackOutcome) {
        self.clear_progress_line();
        let list = |services: &[String]| {
            if services.is_empty() {
                "none".to_owned()
            } else {
                services.join(", ")
            }
        };
        let optional = |what: &str, services: &[String]| {
            if services.is_empty() {
                String::new()
            } else {
                format!("; {what}: {}", services.join(", "))
            }
        };
        let incomplete = optional("cleanup incomplete", &outcome.incomplete);
        let partial = optional("partly rolled (old and new serve)", &outcome.partial);
        let text = format!(
            "finished: {}; rolled back: {}{partial}{incomplete}; not started: {}",
            list(&outcome.finished),
            list(&outcome.rolled_back),
            list(&outcome.not_started)
        );
        if exit == Exit::Done {
            self.line("stack", &text);
        } else {
            say!(self, "{:>7} {:<10} {text}", show(self.elapsed()), "stack");
        }
        self.event(
            "stack_finish",
            json!({
                "outcome": exit, "exit_code": exit.code(),
                "finished": outcome.finished, "rolled_back": outcome.rolled_back,
                "incomplete": outcome.incomplete, "partial": outcome.partial,
                "not_started": outcome.not_started,
            }),
        );
    }

    /// A rollout over hosts: the order, and how many roll at once after the first.
    pub fn hosts_order(&self, contexts: &[String], group: usize) {
        let how = if group > 1 {
            format!("then in groups of {group}")
        } else {
            "then one at a time".to_owned()
        };
        self.line(
            "hosts",
            &format!(
                "{} host(s): {}; the first alone (a barrier), {how}",
                contexts.len(),
                contexts.join(", ")
            ),
        );
        self.event("hosts", json!({ "hosts": contexts, "group": group }));
    }

    pub fn host_start(&self, context: &str, index: usize, total: usize) {
        self.line(
            "host",
            &format!("{context} ({} of {total}): rolling", index + 1),
        );
        self.event("host_start", json!({ "host": context, "index": index }));
    }

    pub fn host_finish(&self, row: &HostRow) {
        let text = format!(
            "{}: {} in {}{}",
            row.context,
            row.state.describe(),
            show(row.took),
            if row.note.is_empty() {
                String::new()
            } else {
                format!(" ({})", row.note)
            }
        );
        if matches!(row.state, HostState::Done | HostState::Reverted) {
            self.line("host", &text);
        } else {
            say!(self, "{:>7} {:<10} {text}", show(self.elapsed()), "host");
        }
        self.event("host_finish", host_json(row));
    }

    /// One host's event, relayed with the host named.
    pub fn relay(&self, context: &str, mut event: Value) {
        if !self.json {
            return;
        }
        event["host"] = json!(context);
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{event}");
        let _ = stdout.flush();
    }

    /// One host's own output line, as its run printed it (its -q applied there).
    pub fn child_line(&self, context: &str, line: &str) {
        say!(self, "[{context}] {line}");
    }

    /// The end of a rollout over hosts: a row per host.
    pub fn hosts_finish(&self, exit: Exit, rows: &[HostRow]) {
        let width = rows
            .iter()
            .map(|r| r.context.len())
            .max()
            .unwrap_or(4)
            .max(4);
        say!(
            self,
            "{:>7} {:<10} {:<width$}  {:>8}  result",
            show(self.elapsed()),
            "hosts",
            "host",
            "time"
        );
        for row in rows {
            say!(
                self,
                "{:>7} {:<10} {:<width$}  {:>8}  {}{}",
                "",
                "",
                row.context,
                if row.state == HostState::NotStarted {
                    "-".to_owned()
                } else {
                    show(row.took)
                },
                row.state.describe(),
                if row.note.is_empty() {
                    String::new()
                } else {
                    format!(": {}", row.note)
                }
            );
        }
        self.event(
            "hosts_finish",
            json!({
                "outcome": exit, "exit_code": exit.code(),
                "hosts": rows.iter().map(host_json).collect::<Vec<_>>(),
            }),
        );
    }

    /// `--swarm`: one service's update is over, as Swarm reported it.
    pub fn swarm_service(&self, service: &str, exit: Exit, state: &str, message: &str) {
        let state = if state.is_empty() { "unchanged" } else { state };
        self.line("swarm", &format!("{service}: {state} ({message})"));
        self.event(
            "swarm_service",
            json!({ "service": service, "state": state, "message": message, "outcome": exit }),
        );
    }

    pub fn phase_started(&self, phase: Phase, detail: &str) {
        self.line(phase.name(), detail);
        if let Some(live) = &self.live {
            live.phase(phase.name());
        }
        self.event("phase_start", json!({ "phase": phase, "message": detail }));
    }

    pub fn phase_ended(&self, phase: Phase, took: Duration) {
        self.event(
            "phase_end",
            json!({ "phase": phase, "duration_ms": took.as_millis() as u64 }),
        );
    }

    pub fn containers(&self, role: &str, ids: &[String]) {
        self.event("containers", json!({ "role": role, "ids": ids }));
    }

    /// Output of a command run for one container, prefixed by its short id.
    pub fn container_output(&self, short_id: &str, text: &str) {
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            if !self.quiet {
                say!(self, "{:>7} {:<10} [{short_id}] {line}", "", "");
            }
        }
        self.event("output", json!({ "container": short_id, "text": text }));
    }

    pub fn finish(&self, exit: Exit, message: &str, phases: &[(Phase, Duration)]) {
        self.clear_progress_line();
        let summary: Vec<String> = phases
            .iter()
            .map(|(phase, took)| format!("{} {}", phase.name(), show(*took)))
            .collect();
        if exit == Exit::Done {
            self.line("done", message);
        } else {
            say!(
                self,
                "{:>7} {:<10} error: {message}",
                show(self.elapsed()),
                "failed"
            );
        }
        if !summary.is_empty() {
            self.line(
                "",
                &format!("took {}: {}", show(self.elapsed()), summary.join(", ")),
            );
        }
        let phases: Vec<Value> = phases
            .iter()
            .map(|(phase, took)| json!({ "phase": phase, "duration_ms": took.as_millis() as u64 }))
            .collect();
        self.event(
            "finish",
            json!({ "outcome": exit, "exit_code": exit.code(), "message": message, "phases": phases }),
        );
    }

    /// An error that ended the run before the rollout began: one line, printed once.
    pub fn error(&self, exit: Exit, message: &str) {
        self.clear_progress_line();
        say!(self, "docker-reroll: error: {message}");
        self.event(
            "finish",
            json!({ "outcome": exit, "exit_code": exit.code(), "message": message, "phases": [] }),
        );
    }
}

fn host_json(row: &HostRow) -> Value {
    let (state, exit) = match &row.state {
        HostState::Done => ("done", Exit::Done),
        HostState::Failed(exit) => ("failed", *exit),
        HostState::Reverted => ("reverted", Exit::Done),
        HostState::RevertFailed(exit) => ("revert_failed", *exit),
        HostState::NotStarted => ("not_started", Exit::Done),
    };
    json!({
        "host": row.context, "state": state, "exit_code": exit.code(),
        "duration_ms": row.took.as_millis() as u64, "note": row.note,
    })
}

//! The driver's side of a canary: collects what the checks saw for `Action::Analyze` (the probe's
//! counts, the analysis command's result, a promote or abort from another process) and writes
//! where the rollout stands for `docker reroll status`.

use std::collections::BTreeMap;

use tokio::time::Instant;

use super::Driver;
use crate::canary::control::{ControlFiles, Status};
use crate::canary::probe::ProbeRunner;
use crate::model::canary::Probe;
use crate::model::routing::Target;
use crate::proxy::responses::Answered;
use crate::rollout::machine::canary::{ProbeCount, Sample};
use crate::rollout::{Input, Machine};
use crate::template::Template;

/// What a canary rollout's driver needs beyond a plain one.
pub struct CanaryIo {
    pub probe: Option<Probe>,
    pub command: Option<Template>,
    pub control: ControlFiles,
    /// Started at the first window, stopped with the driver.
    pub running: Option<ProbeRunner>,
    /// Count the proxy's answers from the new containers (`--proxy-max-error-rate`).
    pub proxy_check: bool,
    /// The proxy's counters at the last sample, by container and server.
    pub answered: BTreeMap<String, Answered>,
}

impl Driver<'_> {
    pub(super) async fn analyze(&mut self, machine: &Machine, command: bool, reset: bool) -> Input {
        let new = machine.new_ids();
        let answered = match &self.proxy {
            Some(proxy) if self.canary.as_ref().is_some_and(|io| io.proxy_check) => {
                let targets: Vec<Target> = new
                    .iter()
                    .filter_map(|id| self.targets.get(id).cloned())
                    .collect();
                proxy.answered(&targets).await.ok()
            }
            _ => None,
        };
        let Some(io) = self.canary.as_mut() else {
            return Input::Analysis(Sample::default());
        };
        let mut failure = None;
        let probe = match (&io.probe, &io.running) {
            (Some(spec), None) => {
                match ProbeRunner::start(spec) {
                    Ok(runner) => io.running = Some(runner),
                    Err(why) => failure = Some(why),
                }
                ProbeCount::default()
            }
            (_, Some(runner)) if reset => {
                runner.take();
                ProbeCount::default()
            }
            (_, Some(runner)) => runner.take(),
            (None, None) => ProbeCount::default(),
        };
        // A request left from before this window (sent as the last one closed) is not for it.
        let control = io.control.take_request().filter(|_| !reset);
        let template = io.command.clone();
        let command = match (command, template) {
            (true, Some(template)) => {
                let failures = self.run_hook("analysis", Some(&template), &new).await;
                Some(if failures.is_empty() {
                    Ok(())
                } else {
                    Err(failures
                        .iter()
                        .map(|(id, why)| format!("{}: {why}", crate::template::short_id(id)))
                        .collect::<Vec<_>>()
                        .join("; "))
                })
            }
            _ => failure.map(Err),
        };
        if let Some(standing) = machine.standing(Instant::now())
            && let Some(io) = &self.canary
        {
            io.control.write_status(&Status {
                pid: std::process::id(),
                updated_ms: crate::canary::control::now_ms(),
                project: self.project.clone(),
                service: self.service.clone(),
                standing,
            });
        }
        let proxy = match answered {
            Some(now) => io_since(self.canary.as_mut(), now, reset),
            None => ProbeCount::default(),
        };
        Input::Analysis(Sample {
            probe,
            proxy,
            command,
            control,
        })
    }
}

/// What the proxy counted since the last sample (nothing at a window's start, nor for a server
/// first seen now: its counters may hold an earlier container's answers).
fn io_since(io: Option<&mut CanaryIo>, now: BTreeMap<String, Answered>, reset: bool) -> ProbeCount {
    let Some(io) = io else {
        return ProbeCount::default();
    };
    let mut count = ProbeCount::default();
    if !reset {
        for (key, answered) in &now {
            if let Some(before) = io.answered.get(key) {
                count.requests += answered.total.saturating_sub(before.total);
                count.errors += answered.server_errors.saturating_sub(before.server_errors);
            }
        }
    }
    if count.errors > 0 {
        count.first_error = Some("HTTP 5xx counted by the proxy".to_owned());
    }
    io.answered = now;
    count
}

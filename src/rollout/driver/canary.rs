//! The driver's side of a canary: collects what the checks saw for `Action::Analyze` (the probe's
//! counts, the analysis command's result, a promote or abort from another process) and writes
//! where the rollout stands for `docker reroll status`.

use tokio::time::Instant;

use super::Driver;
use crate::canary::control::{ControlFiles, Status};
use crate::canary::probe::ProbeRunner;
use crate::model::canary::Probe;
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
}

impl Driver<'_> {
    pub(super) async fn analyze(&mut self, machine: &Machine, command: bool, reset: bool) -> Input {
        let new = machine.new_ids();
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
        let control = io.control.take_request();
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
                project: self.project.clone(),
                service: self.service.clone(),
                standing,
            });
        }
        Input::Analysis(Sample {
            probe,
            command,
            control,
        })
    }
}

//! The canary's part of the machine: the pause after each step and the bake after the last, each
//! a window in which the new containers are watched and judged by the checks. It owns the window
//! and the counts; the machine asks it what to do when a tick, a sample or the end comes.

use std::time::Duration;

use tokio::time::Instant;

use crate::duration::show;
use crate::model::canary::{Canary, Control, Pause, expected_share};

/// How often a window asks the driver for what the checks saw.
pub const TICK: Duration = Duration::from_millis(500);
/// How often the analysis command runs.
pub const COMMAND_EVERY: Duration = Duration::from_secs(2);
/// Requests a probe must have made before its error rate is judged, before the window ends.
pub const MIN_REQUESTS: u64 = 20;

/// What the probe saw since it was last asked.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProbeCount {
    pub requests: u64,
    /// Connection errors, timeouts and statuses other than 2xx/3xx.
    pub errors: u64,
    /// Answers slower than the latency bound.
    pub slow: u64,
    /// The first error seen, in a few words.
    pub first_error: Option<String>,
}

impl ProbeCount {
    pub fn add(&mut self, other: &ProbeCount) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.slow += other.slow;
        if self.first_error.is_none() {
            self.first_error.clone_from(&other.first_error);
        }
    }

    pub fn failed(&self) -> u64 {
        self.errors + self.slow
    }

    fn rate(&self) -> f64 {
        self.failed() as f64 / self.requests.max(1) as f64
    }
}

/// What the driver brings back for `Action::Analyze`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sample {
    pub probe: ProbeCount,
    /// What the proxy counted for the new containers since last asked.
    pub proxy: ProbeCount,
    /// The analysis command's result, when it was asked to run.
    pub command: Option<Result<(), String>>,
    /// What another process asked for (`docker reroll promote` / `abort`).
    pub control: Option<Control>,
}

/// Where a canary rollout stands, for `docker reroll status` and the report.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Standing {
    /// `step` or `bake`.
    pub stage: String,
    /// 1-based; the bake counts as the step after the last.
    pub step: usize,
    pub steps: usize,
    pub new: u32,
    pub old: u32,
    pub expected_share: f64,
    /// Seconds since the window began.
    pub elapsed: f64,
    /// Seconds left, or none when it waits for `promote`.
    pub remaining: Option<f64>,
    pub probe: ProbeCount,
    pub proxy: ProbeCount,
    pub commands_passed: u32,
}

/// What the machine does next, as the canary decided.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// Watch the new containers until this instant, then tick.
    Watch(Instant),
    /// Ask the driver for a sample; `command`: run the analysis command too; `reset`: the window
    /// just opened, what the checks saw before does not count.
    Analyze { command: bool, reset: bool },
    /// The window is over and passed (what the checks saw, in a few words): go on.
    Passed(String),
    /// A check failed (or `abort` came): roll back, saying why.
    Failed(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// The pause after step `index` (0-based).
    Step(usize),
    Bake,
}

struct Window {
    stage: Stage,
    new: u32,
    started: Instant,
    until: Option<Instant>,
    probe: ProbeCount,
    proxy: ProbeCount,
    next_command: Instant,
    commands_passed: u32,
}

pub struct CanaryRun {
    policy: Canary,
    /// For each pause: the batch it follows, and how many new containers serve then.
    pauses: Vec<(usize, u32)>,
    /// The old containers serving next to the new ones while the steps last.
    old: u32,
    window: Option<Window>,
    baked: bool,
}

impl CanaryRun {
    pub fn new(policy: Canary, pauses: Vec<(usize, u32)>, old: u32) -> Self {
        CanaryRun {
            policy,
            pauses,
            old,
            window: None,
            baked: false,
        }
    }

    /// The step index that pauses after `batch`, if any.
    pub fn pause_after(&self, batch: usize) -> Option<usize> {
        self.pauses.iter().position(|(after, _)| *after == batch)
    }

    /// Whether the bake is still to come (old containers must then be kept stopped).
    pub fn bakes(&self) -> bool {
        self.policy.bake.is_some() && !self.baked
    }

    /// Opens the pause after step `index`; returns what to tell the user and what to do.
    pub fn begin_step(&mut self, index: usize, now: Instant) -> (String, Next) {
        let new = self.pauses[index].1;
        let until = match self.policy.pause {
            Pause::For(duration) => Some(now + duration),
            Pause::Manual => None,
        };
        self.open(Stage::Step(index), new, until, now);
        let share = expected_share(new, self.old);
        let wait = match self.policy.pause {
            Pause::For(duration) => format!("pausing {}", show(duration)),
            Pause::Manual => "paused until docker reroll promote (or abort)".to_owned(),
        };
        let text = format!(
            "step {} of {}: {new} new container(s) next to {} old: expected share {:.0}% \
             ({new}/{}); {wait}{}",
            index + 1,
            self.pauses.len(),
            self.old,
            share * 100.0,
            new + self.old,
            self.checking()
        );
        (text, self.first_sample())
    }

    /// Opens the bake window after the last step, `new` containers serving alone.
    pub fn begin_bake(&mut self, new: u32, now: Instant) -> (String, Next) {
        let bake = self.policy.bake.unwrap_or_default();
        self.baked = true;
        self.open(Stage::Bake, new, Some(now + bake), now);
        let text = format!(
            "baking {}: the old containers are kept stopped, to be started again if a check \
             fails{}",
            show(bake),
            self.checking()
        );
        (text, self.first_sample())
    }

    fn first_sample(&self) -> Next {
        Next::Analyze {
            command: self.policy.analysis.command.is_some(),
            reset: true,
        }
    }

    fn open(&mut self, stage: Stage, new: u32, until: Option<Instant>, now: Instant) {
        self.window = Some(Window {
            stage,
            new,
            started: now,
            until,
            probe: ProbeCount::default(),
            proxy: ProbeCount::default(),
            next_command: now,
            commands_passed: 0,
        });
    }

    fn checking(&self) -> String {
        let analysis = &self.policy.analysis;
        let mut checks = Vec::new();
        if let Some(probe) = &analysis.probe {
            let latency = probe.max_latency.map_or(String::new(), |l| {
                format!(", slower than {} counts", show(l))
            });
            checks.push(format!(
                "probing {} (at most {:.1}% failed{latency})",
                probe.url,
                probe.max_error_rate * 100.0
            ));
        }
        if let Some(command) = &analysis.command {
            checks.push(format!("running `{command}` every {}", show(COMMAND_EVERY)));
        }
        if let Some(max) = analysis.proxy_max_error_rate {
            checks.push(format!(
                "counting the proxy's answers from the new containers (at most {:.1}% 5xx)",
                max * 100.0
            ));
        }
        if checks.is_empty() {
            String::new()
        } else {
            format!("; {}", checks.join(", "))
        }
    }

    /// The deadline of the current wait passed: the window is over, or it is time to analyze.
    pub fn tick(&mut self, now: Instant) -> Next {
        let window = self.window.as_ref().expect("a window is open");
        if window.until.is_some_and(|until| now >= until) {
            return self.close(now);
        }
        Next::Analyze {
            command: self.policy.analysis.command.is_some() && now >= window.next_command,
            reset: false,
        }
    }

    /// The driver's sample: judged, then the next wait.
    pub fn sample(&mut self, sample: Sample, now: Instant) -> Next {
        let window = self.window.as_mut().expect("a window is open");
        window.probe.add(&sample.probe);
        window.proxy.add(&sample.proxy);
        if let Some(result) = &sample.command {
            window.next_command = now + COMMAND_EVERY;
            match result {
                Ok(()) => window.commands_passed += 1,
                Err(why) => {
                    let command = self.policy.analysis.command.as_ref().expect("asked to run");
                    return self.fail(format!("analysis command `{command}` failed: {why}"), now);
                }
            }
        }
        if sample.control == Some(Control::Abort) {
            return self.fail("aborted by docker reroll abort".to_owned(), now);
        }
        if let Some(why) = self.judge_probe(false).or_else(|| self.judge_proxy(false)) {
            return self.fail(why, now);
        }
        if sample.control == Some(Control::Promote) {
            return self.close(now);
        }
        self.next_wait(now)
    }

    fn close(&mut self, now: Instant) -> Next {
        if let Some(why) = self.judge_probe(true).or_else(|| self.judge_proxy(true)) {
            return self.fail(why, now);
        }
        let window = self.window.take().expect("a window is open");
        let what = match window.stage {
            Stage::Step(index) => format!("step {} of {}", index + 1, self.pauses.len()),
            Stage::Bake => "the bake".to_owned(),
        };
        let mut seen = Vec::new();
        if self.policy.analysis.probe.is_some() {
            seen.push(format!(
                "probe {} of {} failed",
                window.probe.failed(),
                window.probe.requests
            ));
        }
        if self.policy.analysis.proxy_max_error_rate.is_some() {
            seen.push(format!(
                "proxy counted {} 5xx of {} answers",
                window.proxy.errors, window.proxy.requests
            ));
        }
        if self.policy.analysis.command.is_some() {
            seen.push(format!(
                "analysis command passed {} time(s)",
                window.commands_passed
            ));
        }
        let seen = if seen.is_empty() {
            String::new()
        } else {
            format!(": {}", seen.join(", "))
        };
        Next::Passed(format!(
            "{what} passed after {}{seen}",
            show(now.saturating_duration_since(window.started))
        ))
    }

    fn fail(&mut self, why: String, now: Instant) -> Next {
        let window = self.window.take().expect("a window is open");
        let during = match window.stage {
            Stage::Step(index) => format!(
                "step {} of {} ({} new next to {} old)",
                index + 1,
                self.pauses.len(),
                window.new,
                self.old
            ),
            Stage::Bake => "the bake".to_owned(),
        };
        Next::Failed(format!(
            "{why}, {} into {during}",
            show(now.saturating_duration_since(window.started))
        ))
    }

    /// The proxy's counts for the new containers, judged as the probe's are.
    fn judge_proxy(&self, at_end: bool) -> Option<String> {
        let max = self.policy.analysis.proxy_max_error_rate?;
        let seen = &self.window.as_ref()?.proxy;
        if !over(seen, max, at_end) {
            return None;
        }
        Some(format!(
            "the proxy's counts for the new containers failed: {} of {} answer(s) were 5xx \
             ({:.1}%, at most {:.1}% allowed)",
            seen.errors,
            seen.requests,
            seen.rate() * 100.0,
            max * 100.0
        ))
    }

    /// The probe's verdict so far; before the window ends, only once it made enough requests.
    fn judge_probe(&self, at_end: bool) -> Option<String> {
        let probe = self.policy.analysis.probe.as_ref()?;
        let seen = &self.window.as_ref()?.probe;
        if !over(seen, probe.max_error_rate, at_end) {
            return None;
        }
        let mut how = Vec::new();
        if seen.errors > 0 {
            how.push(format!(
                "{} error(s), first: {}",
                seen.errors,
                seen.first_error.as_deref().unwrap_or("unknown")
            ));
        }
        if seen.slow > 0 {
            let bound = probe.max_latency.map(show).unwrap_or_default();
            how.push(format!("{} slower than {bound}", seen.slow));
        }
        Some(format!(
            "probe {} failed: {} of {} request(s) failed ({:.1}%, at most {:.1}% allowed: {})",
            probe.url,
            seen.failed(),
            seen.requests,
            seen.rate() * 100.0,
            probe.max_error_rate * 100.0,
            how.join("; ")
        ))
    }

    fn next_wait(&self, now: Instant) -> Next {
        let window = self.window.as_ref().expect("a window is open");
        let tick = now + TICK;
        Next::Watch(window.until.map_or(tick, |until| until.min(tick)))
    }

    /// Where the open window stands.
    pub fn standing(&self, now: Instant) -> Option<Standing> {
        let window = self.window.as_ref()?;
        let (stage, step, old) = match window.stage {
            Stage::Step(index) => ("step", index + 1, self.old),
            Stage::Bake => ("bake", self.pauses.len() + 1, 0),
        };
        Some(Standing {
            stage: stage.to_owned(),
            step,
            steps: self.pauses.len(),
            new: window.new,
            old,
            expected_share: expected_share(window.new, old),
            elapsed: now.saturating_duration_since(window.started).as_secs_f64(),
            remaining: window
                .until
                .map(|until| until.saturating_duration_since(now).as_secs_f64()),
            probe: window.probe.clone(),
            proxy: window.proxy.clone(),
            commands_passed: window.commands_passed,
        })
    }
}

/// Whether `seen` fails more than `max`: at the window's end on any count, before it only once
/// enough requests were made to judge.
fn over(seen: &ProbeCount, max: f64, at_end: bool) -> bool {
    let enough = seen.requests > 0 && (at_end || seen.requests >= MIN_REQUESTS);
    enough && seen.rate() > max
}

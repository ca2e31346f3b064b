//! Progressive delivery as the user asked for it: the steps (counted in new containers), the pause
//! at each, the checks that judge the new version meanwhile, and the bake window after the last.

use std::time::Duration;

use crate::template::Template;

/// One step of `--steps`: a number of new containers, or a share of the target count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Count(u32),
    Percent(u32),
}

impl Step {
    /// How many new containers serve at this step, out of `target` (at least one).
    pub fn count(self, target: u32) -> u32 {
        match self {
            Step::Count(count) => count.min(target),
            Step::Percent(percent) => (target * percent).div_ceil(100).clamp(1, target),
        }
    }
}

/// `--steps 1,50%,100%`: parsed once; errors say what to write instead.
pub fn parse_steps(text: &str) -> Result<Vec<Step>, String> {
    let bad =
        |why: &str| format!("'{text}' is not a list of steps ({why}): write it like 1,50%,100%");
    let mut steps = Vec::new();
    for word in text.split(',').map(str::trim) {
        let step = match word.strip_suffix('%') {
            Some(percent) => match percent.trim().parse::<u32>() {
                Ok(p) if (1..=100).contains(&p) => Step::Percent(p),
                _ => return Err(bad(&format!("{word}: a share is 1% to 100%"))),
            },
            None => match word.parse::<u32>() {
                Ok(count) if count >= 1 => Step::Count(count),
                _ => return Err(bad(&format!("{word}: a count is a whole number from 1"))),
            },
        };
        steps.push(step);
    }
    Ok(steps)
}

/// The new-container counts the steps come to for `target` containers, rising, duplicates (50% of
/// 2 is 1) dropped. The last step, `target` (all new next to all old), is kept only when asked
/// for: after the last pause the old containers are retired anyway.
pub fn step_counts(steps: &[Step], target: u32) -> Vec<u32> {
    let mut counts: Vec<u32> = Vec::new();
    for step in steps {
        let count = step.count(target);
        if counts.last().is_none_or(|last| count > *last) {
            counts.push(count);
        }
    }
    counts
}

/// Whether `steps` rise strictly (as written, before they are counted).
pub fn rising(steps: &[Step]) -> bool {
    steps.windows(2).all(|pair| match (pair[0], pair[1]) {
        (Step::Count(a), Step::Count(b)) | (Step::Percent(a), Step::Percent(b)) => a < b,
        _ => true,
    })
}

/// The share of requests a round-robin proxy sends to `new` containers next to `old` ones.
pub fn expected_share(new: u32, old: u32) -> f64 {
    f64::from(new) / f64::from((new + old).max(1))
}

/// How long each step lasts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pause {
    For(Duration),
    /// Until `docker reroll promote` (or `abort`) comes from another process.
    Manual,
}

pub fn parse_pause(text: &str) -> Result<Pause, String> {
    if text.trim() == "manual" {
        return Ok(Pause::Manual);
    }
    crate::duration::parse(text)
        .map(Pause::For)
        .map_err(|e| format!("{e}, or manual (wait for docker reroll promote)"))
}

/// An HTTP probe of the service: its requests' error rate and latency over each step.
#[derive(Clone, Debug, PartialEq)]
pub struct Probe {
    pub url: String,
    /// The share of failed requests tolerated over a step (0 to 1).
    pub max_error_rate: f64,
    /// A request slower than this counts as failed.
    pub max_latency: Option<Duration>,
}

/// The checks run during each step and the bake.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Analysis {
    pub probe: Option<Probe>,
    /// Run over and over; a non-zero exit fails the step.
    pub command: Option<Template>,
    /// The share of 5xx answers tolerated among those the proxy counted for the new containers
    /// (HAProxy's `show stat`).
    pub proxy_max_error_rate: Option<f64>,
}

/// A canary rollout's policy.
#[derive(Clone, Debug, PartialEq)]
pub struct Canary {
    pub steps: Vec<Step>,
    pub pause: Pause,
    pub analysis: Analysis,
    /// After the last step: the old containers are kept stopped this long, the checks go on.
    pub bake: Option<Duration>,
}

/// What another process asks of a paused rollout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Control {
    /// End the current pause (or the bake) now and go on.
    Promote,
    /// Roll back through the zero-downtime path.
    Abort,
}

impl Control {
    pub fn name(self) -> &'static str {
        match self {
            Control::Promote => "promote",
            Control::Abort => "abort",
        }
    }

    pub fn parse(text: &str) -> Option<Control> {
        match text.trim() {
            "promote" => Some(Control::Promote),
            "abort" => Some(Control::Abort),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_count_new_containers() {
        let cases = [
            ("1,50%,100%", 4, vec![1, 2, 4]),
            ("1,50%,100%", 2, vec![1, 2]),
            ("1,50%", 10, vec![1, 5]),
            ("25%", 3, vec![1]),
            ("5", 3, vec![3]),
            ("1,2", 1, vec![1]),
        ];
        for (text, target, expected) in cases {
            let steps = parse_steps(text).unwrap();
            assert_eq!(step_counts(&steps, target), expected, "{text} of {target}");
        }
    }

    #[test]
    fn bad_steps_are_refused_with_the_fix() {
        for (text, expected) in [
            ("0", "a count is a whole number from 1"),
            ("1,,2", "a count is a whole number from 1"),
            ("150%", "a share is 1% to 100%"),
            ("half", "write it like 1,50%,100%"),
        ] {
            let error = parse_steps(text).unwrap_err();
            assert!(error.contains(expected), "{text}: {error}");
        }
        assert!(!rising(&parse_steps("2,1").unwrap()));
        assert!(rising(&parse_steps("1,50%,2").unwrap()));
    }

    #[test]
    fn shares_and_pauses() {
        assert!((expected_share(1, 2) - 1.0 / 3.0).abs() < 1e-9);
        assert_eq!(expected_share(2, 2), 0.5);
        assert_eq!(parse_pause("manual"), Ok(Pause::Manual));
        assert_eq!(parse_pause("30s"), Ok(Pause::For(Duration::from_secs(30))));
        assert!(parse_pause("soon").unwrap_err().contains("or manual"));
    }
}

//! The canary's settings: flags over `x-reroll:` keys of the same names, and the combinations
//! refused before anything changes (each refusal names the setting and the fix).

use std::time::Duration;

use serde_json::Value;

use crate::model::canary::{
    Analysis, Canary, Pause, Probe, Step, parse_pause, parse_steps, rising,
};
use crate::model::policy::{FailureAction, Order};
use crate::model::project::ServiceConfig;
use crate::proxy::ProxyKind;
use crate::rollout::Settings;
use crate::template::Template;

/// Until which a step waits when `--step-pause` is not given.
pub const DEFAULT_PAUSE: Duration = Duration::from_secs(30);
/// The share of failed probe requests tolerated when `--probe-max-error-rate` is not given.
pub const DEFAULT_MAX_ERROR_RATE: f64 = 0.01;

#[derive(Clone, Debug, PartialEq, Eq, clap::Subcommand)]
pub enum Command {
    /// End the current canary pause (or bake) of SERVICE's running rollout and go on.
    Promote {
        #[arg(value_name = "SERVICE")]
        service: String,
    },
    /// Roll SERVICE's running canary back through the zero-downtime path (it exits 1).
    Abort {
        #[arg(value_name = "SERVICE")]
        service: String,
    },
    /// Where SERVICE's rollout stands: its step, the expected share, the checks so far.
    Status {
        #[arg(value_name = "SERVICE")]
        service: String,
    },
    /// Roll SERVICE back to the version before its last successful rollout, through the same
    /// zero-downtime path (the options before `rollback` apply, e.g. --proxy).
    Rollback {
        #[arg(value_name = "SERVICE")]
        service: String,
    },
}

impl Command {
    pub fn service(&self) -> &str {
        match self {
            Command::Promote { service }
            | Command::Abort { service }
            | Command::Status { service }
            | Command::Rollback { service } => service,
        }
    }
}

/// `--steps`, parsed: a newtype so that clap takes the list as one value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Steps(pub Vec<Step>);

#[derive(Clone, Debug, Default, clap::Args)]
pub struct CanaryArgs {
    /// Canary steps, counted in new containers: each adds new containers next to all the old
    /// ones and pauses; after the last, the old ones are retired. E.g. 1,50%,100%.
    #[arg(long, value_name = "STEPS", value_parser = steps, help_heading = "Canary")]
    pub steps: Option<Steps>,
    /// How long each step pauses, or `manual`: until `docker reroll promote SERVICE` (or
    /// `abort`) [default: 30s].
    #[arg(long, value_name = "DURATION", value_parser = parse_pause, help_heading = "Canary")]
    pub step_pause: Option<Pause>,
    /// GET this URL over and over during each step and the bake (e.g. through the proxy); too
    /// many failed requests roll back.
    #[arg(long, value_name = "URL", help_heading = "Canary")]
    pub probe: Option<String>,
    /// The share of failed probe requests tolerated over a step, from 0 to 1 [default: 0.01].
    #[arg(long, value_name = "RATIO", value_parser = ratio, help_heading = "Canary")]
    pub probe_max_error_rate: Option<f64>,
    /// A probe answer slower than this counts as failed.
    #[arg(long, value_name = "DURATION", value_parser = duration, help_heading = "Canary")]
    pub probe_max_latency: Option<Duration>,
    /// Command run every 2s per new container during each step and the bake; a non-zero exit
    /// rolls back. No shell. Placeholders: {id} {short_id} {name} {addr} {service} {project}.
    #[arg(long, value_name = "TEMPLATE", value_parser = Template::parse, help_heading = "Canary")]
    pub analysis_cmd: Option<Template>,
    /// With --proxy haproxy: the share of 5xx answers HAProxy may count for the new containers
    /// over a step (show stat, per server), from 0 to 1.
    #[arg(long, value_name = "RATIO", value_parser = ratio, help_heading = "Canary")]
    pub proxy_max_error_rate: Option<f64>,
    /// After the last step, keep the old containers stopped this long while the checks go on;
    /// a failure starts them again and removes the new ones.
    #[arg(long, value_name = "DURATION", value_parser = duration, help_heading = "Canary")]
    pub bake: Option<Duration>,
}

fn steps(text: &str) -> Result<Steps, String> {
    let steps = parse_steps(text)?;
    if !rising(&steps) {
        return Err(format!("'{text}': steps must rise, e.g. 1,50%,100%"));
    }
    Ok(Steps(steps))
}

use crate::duration::parse as duration;
use crate::model::policy::parse_ratio as ratio;

impl CanaryArgs {
    /// Whether any canary flag was given.
    pub fn any(&self) -> bool {
        self.steps.is_some()
            || self.step_pause.is_some()
            || self.probe.is_some()
            || self.probe_max_error_rate.is_some()
            || self.probe_max_latency.is_some()
            || self.analysis_cmd.is_some()
            || self.proxy_max_error_rate.is_some()
            || self.bake.is_some()
    }
}

/// The `x-reroll:` keys this module reads (`service_settings` lets them through).
pub const X_REROLL_KEYS: [&str; 8] = [
    "steps",
    "step-pause",
    "probe",
    "probe-max-error-rate",
    "probe-max-latency",
    "analysis-cmd",
    "proxy-max-error-rate",
    "bake",
];

/// A stack rollout rolls each changed service plainly: the canary keys a service's `x-reroll:`
/// sets are ignored there, and this says so.
pub fn ignored_in_a_stack(service: &str, config: &ServiceConfig) -> Option<String> {
    let map = config.x_reroll.as_ref()?.as_object()?;
    let keys: Vec<&str> = X_REROLL_KEYS
        .into_iter()
        .filter(|key| map.contains_key(*key))
        .collect();
    (!keys.is_empty()).then(|| {
        format!(
            "service '{service}': x-reroll {} ignored in a stack rollout (rolled plainly): for its \
             canary, roll it alone with docker reroll {service}",
            keys.join(", ")
        )
    })
}

/// The `x-reroll:` canary keys of a service, as flags would give them.
fn x_reroll_layer(service: &str, x_reroll: Option<&Value>) -> Result<CanaryArgs, String> {
    let mut layer = CanaryArgs::default();
    let Some(map) = x_reroll.and_then(Value::as_object) else {
        return Ok(layer);
    };
    for key in X_REROLL_KEYS {
        let Some(value) = map.get(key) else {
            continue;
        };
        let text = match value {
            Value::String(text) => text.clone(),
            Value::Number(number) => number.to_string(),
            _ => String::new(),
        };
        let bad = |why: String| {
            format!("service '{service}': x-reroll {key}: {why}: fix the compose file")
        };
        match key {
            "steps" => layer.steps = Some(steps(&text).map_err(bad)?),
            "step-pause" => layer.step_pause = Some(parse_pause(&text).map_err(bad)?),
            "probe" if !text.is_empty() => layer.probe = Some(text),
            "probe" => return Err(bad("expected a URL".into())),
            "probe-max-error-rate" => layer.probe_max_error_rate = Some(ratio(&text).map_err(bad)?),
            "probe-max-latency" => layer.probe_max_latency = Some(duration(&text).map_err(bad)?),
            "analysis-cmd" => layer.analysis_cmd = Some(Template::parse(&text).map_err(bad)?),
            "proxy-max-error-rate" => layer.proxy_max_error_rate = Some(ratio(&text).map_err(bad)?),
            _ => layer.bake = Some(duration(&text).map_err(bad)?),
        }
    }
    Ok(layer)
}

/// The canary policy of one service (flags over `x-reroll:`), or none for a plain rollout.
/// Refuses what cannot work together, naming the setting and the fix.
pub fn resolve(
    service: &str,
    flags: &CanaryArgs,
    x_reroll: Option<&Value>,
    settings: &Settings,
    proxy: Option<ProxyKind>,
) -> Result<Option<Canary>, String> {
    let file = x_reroll_layer(service, x_reroll)?;
    let steps = flags.steps.clone().or(file.steps).map(|s| s.0);
    let pause = flags.step_pause.or(file.step_pause);
    let url = flags.probe.clone().or(file.probe);
    let max_error_rate = flags.probe_max_error_rate.or(file.probe_max_error_rate);
    let max_latency = flags.probe_max_latency.or(file.probe_max_latency);
    let command = flags.analysis_cmd.clone().or(file.analysis_cmd);
    let bake = flags.bake.or(file.bake);
    let proxy_max_error_rate = flags.proxy_max_error_rate.or(file.proxy_max_error_rate);
    let refuse = |why: &str| Err(format!("service '{service}': {why}"));
    if steps.is_none() && bake.is_none() {
        if pause.is_some() {
            return refuse(
                "--step-pause needs --steps (or x-reroll steps): give the steps, e.g. --steps 1,50%",
            );
        }
        if url.is_some() || command.is_some() || proxy_max_error_rate.is_some() {
            return refuse(
                "the checks (--probe, --analysis-cmd) run during canary steps or a bake: give --steps or --bake too",
            );
        }
        if max_error_rate.is_some() || max_latency.is_some() {
            return refuse("--probe-max-error-rate and --probe-max-latency need --probe URL");
        }
        return Ok(None);
    }
    if url.is_none() && (max_error_rate.is_some() || max_latency.is_some()) {
        return refuse("--probe-max-error-rate and --probe-max-latency need --probe URL");
    }
    if steps.is_some() && settings.parallelism > 0 {
        return refuse(
            "--steps replaces batches: drop --parallelism (or deploy.update_config.parallelism), or drop --steps",
        );
    }
    if settings.order == Order::StopFirst {
        return refuse(
            "a canary runs the new version next to the old one: order stop-first cannot; use start-first",
        );
    }
    if settings.failure_action != FailureAction::Rollback {
        return refuse(
            "a failed canary check rolls back: failure_action must be rollback (drop --failure-action, or deploy.update_config.failure_action)",
        );
    }
    if proxy_max_error_rate.is_some() && proxy != Some(ProxyKind::Haproxy) {
        return refuse(
            "--proxy-max-error-rate counts HAProxy's answers per server: it needs --proxy haproxy (or x-reroll proxy: haproxy)",
        );
    }
    if let Some(url) = &url {
        crate::canary::probe::target(url).map_err(|e| format!("service '{service}': {e}"))?;
    }
    Ok(Some(Canary {
        steps: steps.unwrap_or_default(),
        pause: pause.unwrap_or(Pause::For(DEFAULT_PAUSE)),
        analysis: Analysis {
            probe: url.map(|url| Probe {
                url,
                max_error_rate: max_error_rate.unwrap_or(DEFAULT_MAX_ERROR_RATE),
                max_latency,
            }),
            command,
            proxy_max_error_rate,
        },
        bake,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        canary: CanaryArgs,
    }

    fn flags(line: &str) -> Result<CanaryArgs, String> {
        Cli::try_parse_from(std::iter::once("x").chain(line.split_whitespace()))
            .map(|cli| cli.canary)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn flags_over_x_reroll() {
        let file: Value = serde_json::json!({"steps": "1", "step-pause": "manual", "probe": "http://h/", "bake": 60});
        let canary = resolve(
            "web",
            &flags("--steps 1,50%").unwrap(),
            Some(&file),
            &Settings::default(),
            Some(ProxyKind::Haproxy),
        )
        .unwrap()
        .unwrap();
        assert_eq!(canary.steps, parse_steps("1,50%").unwrap());
        assert_eq!(canary.pause, Pause::Manual);
        assert_eq!(canary.bake, Some(Duration::from_secs(60)));
        let probe = canary.analysis.probe.unwrap();
        assert_eq!(
            (probe.url.as_str(), probe.max_error_rate),
            ("http://h/", DEFAULT_MAX_ERROR_RATE)
        );
        assert_eq!(
            resolve(
                "web",
                &CanaryArgs::default(),
                None,
                &Settings::default(),
                None
            ),
            Ok(None)
        );
    }

    #[test]
    fn what_makes_no_sense_is_refused_with_the_fix() {
        let batches = Settings {
            parallelism: 1,
            ..Settings::default()
        };
        let stop_first = Settings {
            order: Order::StopFirst,
            ..Settings::default()
        };
        let pause = Settings {
            failure_action: FailureAction::Pause,
            ..Settings::default()
        };
        let plain = Settings::default();
        let cases = [
            ("--steps 1", &batches, "drop --parallelism"),
            ("--steps 1", &stop_first, "use start-first"),
            ("--bake 1m", &pause, "failure_action must be rollback"),
            ("--step-pause 5s", &plain, "needs --steps"),
            ("--probe http://h/", &plain, "give --steps or --bake too"),
            (
                "--steps 1 --probe-max-latency 1s",
                &plain,
                "need --probe URL",
            ),
            (
                "--steps 1 --probe https://h/",
                &plain,
                "--probe: 'https://h/' is not an http:// URL",
            ),
        ];
        for (line, settings, expected) in cases {
            let error = resolve("web", &flags(line).unwrap(), None, settings, None).unwrap_err();
            assert!(error.contains(expected), "{line}: {error}");
            assert!(error.starts_with("service 'web': "), "{error}");
        }
        for (line, expected) in [
            ("--steps 2,1", "steps must rise"),
            ("--steps 0", "a whole number from 1"),
            ("--step-pause soon", "or manual"),
            ("--probe-max-error-rate 2", "from 0 to 1"),
        ] {
            let error = flags(line).unwrap_err();
            assert!(error.contains(expected), "{line}: {error}");
        }
        let file: Value = serde_json::json!({"steps": "half"});
        let error = resolve("web", &CanaryArgs::default(), Some(&file), &plain, None).unwrap_err();
        assert!(
            error.contains("x-reroll steps") && error.contains("fix the compose file"),
            "{error}"
        );
    }
}

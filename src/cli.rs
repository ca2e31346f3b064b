//! The command line: this tool's options, Compose's project flags, and the Docker global flags a
//! CLI plugin receives before its own name.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::PossibleValue;
use clap::{ArgAction, Parser, ValueEnum};

use crate::docker::command::Globals;
use crate::model::policy::{FailureAction, Order, StillRouting};
use crate::proxy::ProxyKind;
use crate::service_settings::Layer;
use crate::template::Template;

/// Roll a Docker Compose service to a new version with zero failed requests: scale out, wait
/// until the new containers are healthy, drain the old ones, retire them.
#[derive(Debug, Parser)]
#[command(name = "docker-reroll", version, after_help = crate::exit::Exit::help_text())]
#[command(disable_help_subcommand = true)]
pub struct Cli {
    /// promote, abort, status, rollback (`crate::canary::args::Command`). A service named like one
    /// of them is rolled with `docker reroll -- status`.
    #[command(subcommand)]
    pub command: Option<crate::canary::args::Command>,

    /// The Compose services to roll. One named service is always rolled; with none (every
    /// service of the project) or several, only those whose config or image changed, in
    /// depends_on order.
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
    /// Stack rollouts: roll the named (or all) services even when unchanged.
    #[arg(long, help_heading = "Rollout")]
    pub force_recreate: bool,

    /// How long the new containers may take to turn healthy (e.g. 90s, 2m, or seconds).
    /// Default: derived from their healthcheck (start period + (retries + 1) × (interval + timeout)).
    #[arg(long, value_name = "DURATION", value_parser = duration, help_heading = "Rollout")]
    pub healthcheck_timeout: Option<Duration>,
    /// Without a healthcheck: how long the new containers must keep running [default: 10s].
    #[arg(long, value_name = "DURATION", value_parser = duration, help_heading = "Rollout")]
    pub wait: Option<Duration>,
    /// Extra time after the new containers are healthy, before the old ones are touched (time
    /// for the proxy to start routing to them) [default: 0s].
    #[arg(long, value_name = "DURATION", value_parser = duration, help_heading = "Rollout")]
    pub wait_after_healthy: Option<Duration>,
    /// Command run once per old container, in parallel, before it is stopped; no shell.
    /// Placeholders: {id} {short_id} {name} {service} {project}.
    #[arg(long, value_name = "TEMPLATE", value_parser = template, help_heading = "Drain")]
    pub pre_stop_cmd: Option<Template>,
    /// After the pre-stop command, wait until the old containers report unhealthy (needs a
    /// pre-stop command, from --pre-stop-cmd or x-reroll).
    #[arg(long, help_heading = "Drain")]
    pub pre_stop_wait_until_unhealthy: bool,
    /// Command that undoes --pre-stop-cmd on an old container a rollback restarts, e.g.
    /// 'docker exec {id} rm -f /.dead'.
    #[arg(long, value_name = "TEMPLATE", value_parser = template, help_heading = "Drain")]
    pub undo_pre_stop_cmd: Option<Template>,
    /// How long the old containers may take to turn unhealthy (default: from their healthcheck).
    #[arg(long, value_name = "DURATION", value_parser = duration, help_heading = "Drain")]
    pub drain_timeout: Option<Duration>,
    /// Extra time after the old containers are unhealthy, before they are stopped (time for the
    /// proxy to drop them; Traefik applies changes at most every 2s) [default: 0s].
    #[arg(long, value_name = "DURATION", value_parser = duration, help_heading = "Drain")]
    pub wait_after_unhealthy: Option<Duration>,

    /// Ask this proxy what it routes to: the new containers must be in its rotation before the
    /// old ones are touched, and an old one out of it before it is stopped (needs a pre-stop
    /// command that fails the old containers' health check).
    #[arg(long, value_name = "KIND", value_enum, help_heading = "Proxy")]
    pub proxy: Option<ProxyKind>,
    /// Where the proxy's API is: Traefik's base URL (e.g. http://127.0.0.1:8080), or HAProxy's
    /// runtime API (tcp://127.0.0.1:9999 or unix:///run/haproxy.sock).
    #[arg(long, value_name = "URL", help_heading = "Proxy")]
    pub proxy_url: Option<String>,
    /// The proxy's name for the service: a Traefik service (default: from the service's
    /// traefik.http.services labels, @docker), a HAProxy backend (default: the service name).
    #[arg(long, value_name = "NAME", help_heading = "Proxy")]
    pub proxy_service: Option<String>,
    /// --proxy command: a command that exits 0 while the proxy routes to a container; no shell.
    /// Placeholders: {addr} {id} {short_id} {name} {service} {project}.
    #[arg(long, value_name = "TEMPLATE", value_parser = template, help_heading = "Proxy")]
    pub proxy_cmd: Option<Template>,
    /// How long to wait for the proxy to route to the new containers, and to stop routing to an
    /// old one [default: 30s].
    #[arg(long, value_name = "DURATION", value_parser = duration, help_heading = "Proxy")]
    pub proxy_timeout: Option<Duration>,
    /// An old container the proxy still routes to after the timeout: keep it serving (exit 1,
    /// nothing cut), or stop it anyway [default: keep].
    #[arg(long, value_name = "WHAT", value_enum, help_heading = "Proxy")]
    pub proxy_still_routing: Option<StillRouting>,

    /// Containers replaced per batch, 0 for all at once (overrides deploy.update_config)
    /// [default: 0].
    #[arg(long, value_name = "N", help_heading = "Batches")]
    pub parallelism: Option<u32>,
    /// Pause between batches (overrides deploy.update_config) [default: 0s].
    #[arg(long, value_name = "DURATION", value_parser = duration, help_heading = "Batches")]
    pub delay: Option<Duration>,
    /// Start the new containers before stopping the old ones, or the other way round (overrides
    /// deploy.update_config) [default: start-first].
    #[arg(long, value_name = "ORDER", value_enum, help_heading = "Batches")]
    pub order: Option<Order>,
    /// What a failed batch leads to: roll every batch back, stop, or go on with the next one
    /// (overrides deploy.update_config) [default: rollback].
    #[arg(long, value_name = "ACTION", value_enum, help_heading = "Batches")]
    pub failure_action: Option<FailureAction>,
    /// The share of new containers that may fail before the failure action applies, from 0 to 1
    /// (overrides deploy.update_config) [default: 0].
    #[arg(long, value_name = "RATIO", value_parser = ratio, help_heading = "Batches")]
    pub max_failure_ratio: Option<f64>,

    /// Stop and remove the project's containers whose service is no longer in the compose file,
    /// once the rollouts succeeded. Compose's own `COMPOSE_REMOVE_ORPHANS` asks for this too
    /// (Compose itself would remove them during the scale, before anything is known to work).
    #[arg(
        long,
        env = "COMPOSE_REMOVE_ORPHANS",
        value_parser = compose_bool,
        help_heading = "Rollout"
    )]
    pub remove_orphans: bool,

    /// Progressive delivery (`crate::canary`): --steps, --step-pause, --probe, --bake, ….
    #[command(flatten)]
    pub canary: crate::canary::args::CanaryArgs,

    /// When another run holds the project's lock on the engine, wait up to this long for it
    /// instead of refusing (exit 2).
    #[arg(long, value_name = "DURATION", value_parser = duration, help_heading = "Rollout")]
    pub lock_wait: Option<Duration>,

    /// The project runs as a Swarm stack: deploy it with docker stack deploy, start-first,
    /// failure action rollback and a monitor from the healthcheck, and wait until Swarm is done.
    #[arg(long, help_heading = "Rollout")]
    pub swarm: bool,

    /// Several hosts (`crate::hosts`): --hosts-parallel, --pre-host-cmd, --post-host-cmd,
    /// --rollback-hosts.
    #[command(flatten)]
    pub hosts: crate::hosts::args::HostsArgs,

    /// Podman support (`crate::engine`): --engine, --health-runner.
    #[command(flatten)]
    pub engine: crate::engine::EngineArgs,

    /// Print what would be done (per service: changed or not and why, containers to remove, add
    /// and retire, the settings and where each came from) and change nothing.
    #[arg(long, help_heading = "Rollout")]
    pub dry_run: bool,

    /// Compose file (repeatable, as with docker compose; default: Compose's own lookup).
    #[arg(
        short = 'f',
        long = "file",
        value_name = "FILE",
        help_heading = "Compose"
    )]
    pub files: Vec<PathBuf>,
    /// Compose project name (default: Compose's own, e.g. COMPOSE_PROJECT_NAME or the directory).
    #[arg(short = 'p', long, value_name = "NAME", help_heading = "Compose")]
    pub project_name: Option<String>,
    /// Compose project directory.
    #[arg(long, value_name = "DIR", help_heading = "Compose")]
    pub project_directory: Option<PathBuf>,
    /// Environment file (repeatable).
    #[arg(long = "env-file", value_name = "FILE", help_heading = "Compose")]
    pub env_files: Vec<PathBuf>,
    /// Compose profile to enable (repeatable).
    #[arg(long = "profile", value_name = "NAME", help_heading = "Compose")]
    pub profiles: Vec<String>,

    /// Write one JSON object per event on stdout.
    #[arg(long, help_heading = "Output")]
    pub json: bool,
    /// Show every docker command and how long it took (-vv: more).
    #[arg(short, long, action = ArgAction::Count, help_heading = "Output")]
    pub verbose: u8,
    /// Print only errors.
    #[arg(short, long, help_heading = "Output", conflicts_with = "verbose")]
    pub quiet: bool,
    /// Print shell completions (complete-bash, complete-zsh, complete-fish) or the man page (man)
    /// on stdout, and exit; install.sh installs them.
    #[arg(long, value_name = "WHAT", value_enum, help_heading = "Output")]
    pub generate: Option<Generate>,

    /// Docker's global flags.
    #[command(flatten)]
    pub docker: crate::docker::globals::DockerGlobals,
}

/// What `--generate` prints (made in src/generate.rs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Generate {
    CompleteBash,
    CompleteZsh,
    CompleteFish,
    Man,
}

fn duration(text: &str) -> Result<Duration, String> {
    crate::duration::parse(text)
}

fn template(text: &str) -> Result<Template, String> {
    Template::parse(text)
}

fn ratio(text: &str) -> Result<f64, String> {
    crate::model::policy::parse_ratio(text)
}

/// A boolean in Compose's environment, read the way Compose reads it: `1`, `t` or `true` (any
/// case) is true, anything else false, so a value Compose accepts never stops this tool.
fn compose_bool(text: &str) -> Result<bool, String> {
    Ok(matches!(
        text.to_ascii_lowercase().as_str(),
        "1" | "t" | "true"
    ))
}

impl ValueEnum for Order {
    fn value_variants<'a>() -> &'a [Self] {
        &[Order::StartFirst, Order::StopFirst]
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(self.name()))
    }
}

impl ValueEnum for FailureAction {
    fn value_variants<'a>() -> &'a [Self] {
        &[
            FailureAction::Rollback,
            FailureAction::Pause,
            FailureAction::Continue,
        ]
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(self.name()))
    }
}

impl ValueEnum for ProxyKind {
    fn value_variants<'a>() -> &'a [Self] {
        &ProxyKind::ALL
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(self.name()))
    }
}

impl ValueEnum for StillRouting {
    fn value_variants<'a>() -> &'a [Self] {
        &[StillRouting::Keep, StillRouting::Stop]
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(self.name()))
    }
}

impl Cli {
    /// The rollout settings given on the command line; they override a service's `x-reroll:`
    /// and `deploy.update_config`.
    pub fn flag_settings(&self) -> Layer {
        Layer {
            pre_stop_cmd: self.pre_stop_cmd.clone(),
            undo_pre_stop_cmd: self.undo_pre_stop_cmd.clone(),
            pre_stop_wait_until_unhealthy: self.pre_stop_wait_until_unhealthy.then_some(true),
            healthcheck_timeout: self.healthcheck_timeout,
            wait: self.wait,
            wait_after_healthy: self.wait_after_healthy,
            drain_timeout: self.drain_timeout,
            wait_after_unhealthy: self.wait_after_unhealthy,
            parallelism: self.parallelism,
            delay: self.delay,
            order: self.order,
            failure_action: self.failure_action,
            max_failure_ratio: self.max_failure_ratio,
            proxy: self.proxy,
            proxy_url: self.proxy_url.clone(),
            proxy_service: self.proxy_service.clone(),
            proxy_cmd: self.proxy_cmd.clone(),
            proxy_timeout: self.proxy_timeout,
            proxy_still_routing: self.proxy_still_routing,
        }
    }

    /// Docker's global flags and the endpoint they resolve to, in this process's environment.
    pub fn globals(&self) -> Globals {
        Globals::resolve(self.docker.clone())
    }

    /// Compose's project flags, in Compose's spelling.
    pub fn project_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        for file in &self.files {
            args.push("--file".into());
            args.push(file.display().to_string());
        }
        for file in &self.env_files {
            args.push("--env-file".into());
            args.push(file.display().to_string());
        }
        if let Some(name) = &self.project_name {
            args.push("--project-name".into());
            args.push(name.clone());
        }
        if let Some(dir) = &self.project_directory {
            args.push("--project-directory".into());
            args.push(dir.display().to_string());
        }
        for profile in &self.profiles {
            args.push("--profile".into());
            args.push(profile.clone());
        }
        args
    }
}

/// Run as `docker reroll …`, Docker calls `docker-reroll [GLOBALS] reroll [ARGS]`: drop the
/// plugin's name so the globals and the arguments parse as one command line.
pub fn plugin_args(args: Vec<OsString>, invoked_as_plugin: bool) -> Vec<OsString> {
    if !invoked_as_plugin {
        return args;
    }
    let globals = crate::docker::globals::DockerGlobals::spellings();
    let mut index = 1;
    while index < args.len() {
        let word = args[index].to_string_lossy();
        // Whether the word is a global flag whose value is the next word.
        let value_next = globals.iter().find_map(|global| {
            global.short.iter().chain([&global.long]).find_map(|name| {
                let rest = word.strip_prefix(name.as_str())?;
                // `--host=H`, `-H=H`, `-HH`, `--tls=true`: the value in the same word.
                let attached = rest.starts_with('=')
                    || (global.takes_value && !name.starts_with("--") && !rest.is_empty());
                if rest.is_empty() {
                    Some(global.takes_value)
                } else {
                    attached.then_some(false)
                }
            })
        });
        match value_next {
            Some(true) => index += 2,
            Some(false) => index += 1,
            None => break,
        }
    }
    let mut args = args;
    if args.get(index).is_some_and(|word| word == "reroll") {
        args.remove(index);
    }
    args
}

pub fn metadata() -> String {
    format!(
        r#"{{"SchemaVersion":"0.1.0","Vendor":"docker-reroll","Version":"{}","ShortDescription":"Roll a Compose service to a new version with zero downtime","URL":"https://github.com/docker-reroll/docker-reroll"}}"#,
        env!("CARGO_PKG_VERSION")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<OsString> {
        text.split_whitespace().map(OsString::from).collect()
    }

    /// clap's own checks of the definition (conflicting names, bad references, …), which it
    /// otherwise runs only in debug builds when a command line is parsed.
    #[test]
    fn the_command_line_definition_is_valid() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn drops_the_plugin_name_after_docker_globals() {
        let cases = [
            ("docker-reroll reroll web", "docker-reroll web"),
            (
                "docker-reroll --context prod -D reroll -f c.yml web",
                "docker-reroll --context prod -D -f c.yml web",
            ),
            (
                "docker-reroll -H=tcp://h:2375 --tlsverify reroll web",
                "docker-reroll -H=tcp://h:2375 --tlsverify web",
            ),
            (
                "docker-reroll -l info reroll reroll",
                "docker-reroll -l info reroll",
            ),
            (
                "docker-reroll -Hunix:///s --tls=true --tlscert c.pem --config=/d reroll web",
                "docker-reroll -Hunix:///s --tls=true --tlscert c.pem --config=/d web",
            ),
            (
                "docker-reroll --tlsverify --log-level debug -c prod reroll web",
                "docker-reroll --tlsverify --log-level debug -c prod web",
            ),
        ];
        for (given, expected) in cases {
            assert_eq!(plugin_args(words(given), true), words(expected), "{given}");
        }
        assert_eq!(
            plugin_args(words("docker-reroll reroll"), false),
            words("docker-reroll reroll")
        );
    }

    #[test]
    fn globals_parse_and_reach_the_builder() {
        let cli = Cli::try_parse_from(words("docker-reroll --context prod -D web")).unwrap();
        assert_eq!(cli.services, ["web"]);
        assert_eq!(cli.globals().flags(), ["--context=prod", "--debug"]);
        let cli = Cli::try_parse_from(words("docker-reroll -H unix:///s web")).unwrap();
        assert_eq!(cli.globals().flags(), ["--host=unix:///s"]);
        let both = Cli::try_parse_from(words("docker-reroll -c prod -H unix:///s web"));
        assert!(both.is_err(), "Docker's CLI refuses both too");
    }

    #[test]
    fn metadata_takes_its_version_from_cargo() {
        let metadata: serde_json::Value = serde_json::from_str(&metadata()).unwrap();
        assert_eq!(metadata["Version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(metadata["SchemaVersion"], "0.1.0");
    }

    #[test]
    fn batch_flags_reach_the_settings_layer() {
        let cli = Cli::try_parse_from(words(
            "docker-reroll --parallelism 2 --delay 1m30s --order stop-first \
             --failure-action pause --max-failure-ratio 0.25 --remove-orphans web",
        ))
        .unwrap();
        let flags = cli.flag_settings();
        assert_eq!(flags.parallelism, Some(2));
        assert_eq!(flags.delay, Some(Duration::from_secs(90)));
        assert_eq!(flags.order, Some(Order::StopFirst));
        assert_eq!(flags.failure_action, Some(FailureAction::Pause));
        assert_eq!(flags.max_failure_ratio, Some(0.25));
        assert!(cli.remove_orphans);
        let none = Cli::try_parse_from(words("docker-reroll web")).unwrap();
        let flags = none.flag_settings();
        assert_eq!((flags.parallelism, flags.order), (None, None));
        assert!(!none.remove_orphans);
    }

    #[test]
    fn compose_remove_orphans_in_the_environment_reads_as_compose_reads_it() {
        for (value, expected) in [
            ("1", true),
            ("True", true),
            ("t", true),
            ("0", false),
            ("no", false),
            ("", false),
            ("yes", false),
        ] {
            assert_eq!(compose_bool(value), Ok(expected), "{value:?}");
        }
    }

    #[test]
    fn bad_batch_flags_are_refused_by_name() {
        let cases = [
            ("--parallelism=-1", "--parallelism"),
            ("--parallelism many", "--parallelism"),
            ("--delay soon", "is not a duration"),
            ("--order sideways", "start-first, stop-first"),
            ("--failure-action retry", "rollback, pause, continue"),
            ("--max-failure-ratio 1.5", "give a number from 0 to 1"),
            ("--max-failure-ratio NaN", "give a number from 0 to 1"),
            ("--undo-pre-stop-cmd {nope}", "unknown placeholder"),
        ];
        for (flags, expected) in cases {
            let error = Cli::try_parse_from(words(&format!("docker-reroll {flags} web")))
                .unwrap_err()
                .to_string();
            assert!(error.contains(expected), "{flags}: {error}");
        }
    }

    #[test]
    fn compose_flags_keep_their_order_and_spelling() {
        let cli = Cli::try_parse_from(words(
            "docker-reroll -f a.yml -f b.yml --env-file .env -p shop --profile web web",
        ))
        .unwrap();
        assert_eq!(
            cli.project_args(),
            [
                "--file",
                "a.yml",
                "--file",
                "b.yml",
                "--env-file",
                ".env",
                "--project-name",
                "shop",
                "--profile",
                "web"
            ]
        );
    }
}

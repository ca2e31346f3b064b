//! docker-reroll: zero-downtime rollouts of Docker Compose services.
//!
//! The layout is the architecture, and imports only point down it: `cli` reads the command line;
//! `app` picks one service or the `stack`, both of which roll each service through `service`
//! (read → `plan` → `rollout`: a sans-IO `machine` and its async `driver`). `model` is the data
//! they decide on, owned by no adapter; `docker` and `proxy` are the adapters that talk to the
//! engine and to reverse proxies; `report` is what the user sees. `canary` adds steps, checks and
//! the `promote`, `abort`, `status` and `rollback` commands (its decisions: `rollout::machine`).

pub mod app;
pub mod canary;
pub mod cli;
pub mod compose_v1;
pub mod docker;
pub mod duration;
pub mod engine;
pub mod engine_lock;
pub mod exit;
pub mod generate;
pub mod hosts;
pub mod interrupt;
pub mod journal;
pub mod lock;
pub mod model;
pub mod orphans;
pub mod plan;
pub mod proxy;
pub mod report;
pub mod rollout;
pub mod service;
pub mod service_settings;
pub mod stack;
pub mod swarm;
pub mod template;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;

use crate::exit::Exit;
use crate::report::Reporter;

pub fn main() -> ExitCode {
    let args: Vec<_> = std::env::args_os().collect();
    // Docker runs this on every `docker --help`: answer before anything else starts.
    if args
        .get(1)
        .is_some_and(|a| a == "docker-cli-plugin-metadata")
    {
        let _ = writeln!(std::io::stdout(), "{}", cli::metadata());
        return ExitCode::SUCCESS;
    }
    let invoked_as_plugin = std::env::var_os("DOCKER_CLI_PLUGIN_ORIGINAL_CLI_COMMAND").is_some();
    let cli = match cli::Cli::try_parse_from(cli::plugin_args(args, invoked_as_plugin)) {
        Ok(cli) => cli,
        Err(error)
            if matches!(
                error.kind(),
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
            ) =>
        {
            let _ = error.print();
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            // One line: clap's message up to its usage block, and where to look for the fix.
            let rendered = error.render().to_string();
            let first = rendered
                .lines()
                .take_while(|line| !line.starts_with("Usage:"))
                .map(str::trim)
                .filter(|line| !line.is_empty() && !line.starts_with("For more information"))
                .collect::<Vec<_>>()
                .join(" ");
            let first = first.trim_start_matches("error: ");
            let _ = writeln!(
                std::io::stderr(),
                "docker-reroll: error: {first}{} (see docker-reroll --help)",
                from_the_environment(&error)
            );
            return ExitCode::from(Exit::Usage.code());
        }
    };
    if let Some(what) = cli.generate {
        return match generate::write(what, &mut std::io::stdout().lock()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                let _ = writeln!(
                    std::io::stderr(),
                    "docker-reroll: error: --generate: {error}"
                );
                ExitCode::from(Exit::Usage.code())
            }
        };
    }
    init_tracing(cli.verbose);
    let mut reporter = Reporter::new(cli.quiet, cli.json);
    if cli.verbose > 0 {
        reporter = reporter.without_progress_line();
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            reporter.error(
                Exit::Usage,
                &format!("cannot start the async runtime: {error}"),
            );
            return ExitCode::from(Exit::Usage.code());
        }
    };
    let exit = match runtime.block_on(app::run(cli, &reporter)) {
        Ok(exit) => exit,
        Err(failure) => {
            reporter.error(failure.exit, &failure.message);
            failure.exit
        }
    };
    // Don't wait for helper tasks (the event stream) to wind down.
    runtime.shutdown_background();
    ExitCode::from(exit.code())
}

/// A bad value that came from an environment variable, not the command line, names the variable:
/// otherwise the message points at a flag the user never typed.
fn from_the_environment(error: &clap::Error) -> String {
    use clap::CommandFactory;
    use clap::error::{ContextKind, ContextValue};
    let Some(ContextValue::String(arg)) = error.get(ContextKind::InvalidArg) else {
        return String::new();
    };
    let long = arg
        .split(' ')
        .next()
        .unwrap_or_default()
        .trim_start_matches("--");
    let command = cli::Cli::command();
    let Some(name) = command
        .get_arguments()
        .find(|a| a.get_long() == Some(long))
        .and_then(|a| a.get_env())
    else {
        return String::new();
    };
    let given = std::env::args_os().any(|a| {
        a.to_str()
            .is_some_and(|a| a == format!("--{long}") || a.starts_with(&format!("--{long}=")))
    });
    if given || std::env::var_os(name).is_none() {
        return String::new();
    }
    format!(
        "; it comes from the environment variable {}: fix or unset it",
        name.to_string_lossy()
    )
}

fn init_tracing(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let filter = match verbose {
        0 => EnvFilter::try_from_env("DOCKER_REROLL_LOG").unwrap_or_else(|_| EnvFilter::new("off")),
        1 => EnvFilter::new("docker=debug"),
        _ => EnvFilter::new("debug"),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .init();
}

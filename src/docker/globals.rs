//! Docker's global flags, written once: the CLI parses them with this struct (flattened into
//! `Cli`), a plugin's argv is read with the lists derived from it, and every `docker` call gets
//! them back from it.

use clap::{ArgAction, Args};

/// The global flags Docker's CLI gives a plugin before its name (`docker --context prod reroll`),
/// also accepted after it, as given on the command line.
#[derive(Args, Clone, Debug, Default, PartialEq, Eq)]
#[command(next_help_heading = "Docker")]
pub struct DockerGlobals {
    /// Docker context (also a Docker global flag given before `reroll`); not with --host, as
    /// for Docker's CLI. Repeated, one host after another (see --hosts-parallel).
    #[arg(short = 'c', long, value_name = "NAME", conflicts_with = "host", action = ArgAction::Append)]
    pub context: Vec<String>,
    /// Docker daemon socket.
    #[arg(short = 'H', long, value_name = "HOST")]
    pub host: Option<String>,
    /// Docker client config directory.
    #[arg(long, value_name = "DIR")]
    pub config: Option<String>,
    /// Use TLS to reach the daemon.
    #[arg(long)]
    pub tls: bool,
    /// Use TLS and verify the daemon's certificate.
    #[arg(long)]
    pub tlsverify: bool,
    /// Trust certificates signed by this CA.
    #[arg(long, value_name = "FILE")]
    pub tlscacert: Option<String>,
    /// TLS certificate file.
    #[arg(long, value_name = "FILE")]
    pub tlscert: Option<String>,
    /// TLS key file.
    #[arg(long, value_name = "FILE")]
    pub tlskey: Option<String>,
    /// Docker's debug mode.
    #[arg(short = 'D', long)]
    pub debug: bool,
    /// Docker's log level.
    #[arg(short = 'l', long, value_name = "LEVEL")]
    pub log_level: Option<String>,
}

/// One global flag's spellings, and whether it takes a value.
pub struct GlobalFlag {
    /// `-H`, if it has a short form.
    pub short: Option<String>,
    /// `--host`
    pub long: String,
    pub takes_value: bool,
}

impl DockerGlobals {
    /// A clap command of the global flags alone.
    fn command() -> clap::Command {
        Self::augment_args(clap::Command::new("docker-globals"))
    }

    /// Every global flag, from the clap definition above.
    pub fn spellings() -> Vec<GlobalFlag> {
        Self::command()
            .get_arguments()
            .map(|arg| GlobalFlag {
                short: arg.get_short().map(|c| format!("-{c}")),
                long: format!(
                    "--{}",
                    arg.get_long().expect("a global flag has a long form")
                ),
                takes_value: !matches!(arg.get_action(), ArgAction::SetTrue),
            })
            .collect()
    }

    /// The flags as arguments of a `docker` call, `--flag=value` each (so no value can be taken
    /// for a subcommand).
    pub fn flags(&self) -> Vec<String> {
        let mut flags = Vec::new();
        let mut with_value = |flag: &str, value: &Option<String>| {
            if let Some(value) = value {
                flags.push(format!("{flag}={value}"));
            }
        };
        with_value("--config", &self.config);
        for context in &self.context {
            with_value("--context", &Some(context.clone()));
        }
        with_value("--host", &self.host);
        with_value("--log-level", &self.log_level);
        with_value("--tlscacert", &self.tlscacert);
        with_value("--tlscert", &self.tlscert);
        with_value("--tlskey", &self.tlskey);
        if self.tls {
            flags.push("--tls".into());
        }
        if self.tlsverify {
            flags.push("--tlsverify".into());
        }
        if self.debug {
            flags.push("--debug".into());
        }
        flags
    }

    /// Whether the environment can say all that the flags say: no TLS files, debug mode or log
    /// level.
    pub(super) fn fit_environment(&self) -> bool {
        !self.tls
            && !self.tlsverify
            && self.tlscacert.is_none()
            && self.tlscert.is_none()
            && self.tlskey.is_none()
            && !self.debug
            && self.log_level.is_none()
    }
}

#[cfg(test)]
mod tests {
    use clap::FromArgMatches;

    use super::*;

    /// A flag added to the struct but not to `flags()` would reach no `docker` call.
    #[test]
    fn every_global_flag_parsed_reaches_the_docker_arguments() {
        for flag in DockerGlobals::spellings() {
            let given = if flag.takes_value {
                format!("{}=value", flag.long)
            } else {
                flag.long.clone()
            };
            let matches = DockerGlobals::command()
                .try_get_matches_from(["docker-globals", &given])
                .unwrap();
            let globals = DockerGlobals::from_arg_matches(&matches).unwrap();
            assert_eq!(globals.flags(), [given.as_str()], "{given}");
            assert_eq!(
                globals.fit_environment(),
                ["--context", "--host", "--config"].contains(&flag.long.as_str()),
                "{given}: only the endpoint and the config directory have variables"
            );
        }
    }

    #[test]
    fn the_spellings_are_dockers_own() {
        let spellings = DockerGlobals::spellings();
        let with_value: Vec<&str> = spellings
            .iter()
            .filter(|f| f.takes_value)
            .flat_map(|f| f.short.iter().map(String::as_str).chain([f.long.as_str()]))
            .collect();
        assert_eq!(
            with_value,
            [
                "-c",
                "--context",
                "-H",
                "--host",
                "--config",
                "--tlscacert",
                "--tlscert",
                "--tlskey",
                "-l",
                "--log-level"
            ]
        );
        let switches: Vec<&str> = spellings
            .iter()
            .filter(|f| !f.takes_value)
            .flat_map(|f| f.short.iter().map(String::as_str).chain([f.long.as_str()]))
            .collect();
        assert_eq!(switches, ["--tls", "--tlsverify", "-D", "--debug"]);
    }
}

//! The one command builder. It owns Docker's global flags (`--context`, `-H`, TLS, `--config`)
//! and puts them on every `docker` and `docker compose` call, so no call can reach another
//! daemon than the rest; `--` goes before operands.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Instant;

use tokio::process::Command;

/// The global flags Docker's CLI gives a plugin before its name, and their environment
/// equivalents for programs that take no flags (standalone `docker-compose`, pre-stop commands).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Globals {
    pub context: Option<String>,
    pub host: Option<String>,
    pub config: Option<String>,
    pub tls: bool,
    pub tlsverify: bool,
    pub tlscacert: Option<String>,
    pub tlscert: Option<String>,
    pub tlskey: Option<String>,
    pub debug: bool,
    pub log_level: Option<String>,
}

impl Globals {
    pub fn flags(&self) -> Vec<String> {
        let mut flags = Vec::new();
        let mut with_value = |flag: &str, value: &Option<String>| {
            if let Some(value) = value {
                flags.push(format!("{flag}={value}"));
            }
        };
        with_value("--config", &self.config);
        with_value("--context", &self.context);
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

    /// The same choices as environment variables, for child programs that are not `docker`.
    /// Whether `env()` says all that the flags say: no TLS files, debug mode or log level.
    fn fit_environment(&self) -> bool {
        !self.tls
            && !self.tlsverify
            && self.tlscacert.is_none()
            && self.tlscert.is_none()
            && self.tlskey.is_none()
            && !self.debug
            && self.log_level.is_none()
    }

    pub fn env(&self) -> Vec<(&'static str, String)> {
        let mut env = Vec::new();
        if let Some(host) = &self.host {
            env.push(("DOCKER_HOST", host.clone()));
        }
        if let Some(context) = &self.context {
            env.push(("DOCKER_CONTEXT", context.clone()));
        }
        if let Some(config) = &self.config {
            env.push(("DOCKER_CONFIG", config.clone()));
        }
        if self.tlsverify {
            env.push(("DOCKER_TLS_VERIFY", "1".into()));
        }
        if let Some(cert) = self.tlscert.as_deref().or(self.tlscacert.as_deref())
            && let Some(dir) = std::path::Path::new(cert).parent()
        {
            env.push(("DOCKER_CERT_PATH", dir.display().to_string()));
        }
        env
    }

    /// Which engine these flags reach, as a key for the per-service lock.
    pub fn endpoint(&self) -> String {
        self.host
            .clone()
            .or_else(|| self.context.clone().map(|c| format!("context-{c}")))
            .or_else(|| std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty()))
            .or_else(|| {
                std::env::var("DOCKER_CONTEXT")
                    .ok()
                    .filter(|c| !c.is_empty())
                    .map(|c| format!("context-{c}"))
            })
            .unwrap_or_else(|| "default".into())
    }
}

/// How Compose is invoked: the v2 plugin through `docker compose`, the same plugin binary run
/// directly, or a standalone `docker-compose` from PATH.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ComposeCli {
    Plugin,
    /// The plugin's own binary: half the cost of `docker compose`, whose CLI first starts up and
    /// dispatches to it (~85 ms a call here).
    PluginBinary(PathBuf),
    Standalone,
    /// A standalone Compose v1 (`docker-compose` 1.x): its `config` prints YAML
    /// (`crate::compose_v1`).
    StandaloneV1,
    /// `podman-compose`, with the `podman` CLI for the rest (`crate::engine`): YAML config too,
    /// no `config --hash`, no `oneoff` label.
    PodmanCompose,
}

#[derive(Clone, Debug)]
pub struct Docker {
    program: String,
    globals: Globals,
    compose: ComposeCli,
    /// Project selection (`-f`, `-p`, `--env-file`, `--profile`, `--project-directory`).
    project_args: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    #[error("could not run `{program}`: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("`{command}` failed: {stderr}")]
    Failed {
        command: String,
        stdout: String,
        stderr: String,
        code: Option<i32>,
    },
}

impl DockerError {
    pub fn stderr(&self) -> &str {
        match self {
            DockerError::Failed { stderr, .. } => stderr,
            DockerError::Spawn { .. } => "",
        }
    }

    /// The last line of stderr, where Docker and Compose put the reason.
    pub fn last_stderr_line(&self) -> String {
        self.stderr().lines().last().unwrap_or("").trim().to_owned()
    }

    /// Docker's CLI says this in several ways, depending on the transport and version.
    pub fn is_daemon_unreachable(&self) -> bool {
        let text = self.stderr();
        [
            "Cannot connect to the Docker daemon",
            "error during connect",
            "Is the docker daemon running",
            "connection refused",
            "no such host",
            "context not found",
            "dial unix",
        ]
        .iter()
        .any(|needle| text.contains(needle))
    }
}

pub struct Output {
    pub stdout: String,
    pub stderr: String,
}

impl Docker {
    pub fn new(globals: Globals, project_args: Vec<String>) -> Self {
        // A test (or a user with an unusual install) may point at another docker binary.
        let custom = std::env::var("DOCKER_REROLL_DOCKER").ok();
        // A custom docker program brings its own Compose, and flags that the environment cannot
        // carry need the CLI: then `docker compose` it is.
        let compose = match custom {
            None if globals.fit_environment() => {
                compose_plugin_binary(&globals).map_or(ComposeCli::Plugin, ComposeCli::PluginBinary)
            }
            _ => ComposeCli::Plugin,
        };
        Docker {
            program: custom.unwrap_or_else(|| "docker".into()),
            globals,
            compose,
            project_args,
        }
    }

    pub fn globals(&self) -> &Globals {
        &self.globals
    }

    pub fn use_compose(&mut self, compose: ComposeCli) {
        self.compose = compose;
    }

    /// Runs another CLI than `docker` (Podman's: `crate::engine`).
    pub fn use_program(&mut self, program: &str) {
        self.program = program.to_owned();
    }

    pub fn compose_cli(&self) -> &ComposeCli {
        &self.compose
    }

    /// The project selection every Compose call carries (`--file`, `--project-name`, …).
    pub fn project_args(&self) -> &[String] {
        &self.project_args
    }

    /// `docker GLOBALS ARGS…`
    pub fn docker<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut command = detached(&self.program);
        command.args(self.globals.flags());
        command.args(args.into_iter().map(Into::into));
        command
    }

    /// `docker GLOBALS compose PROJECT ARGS…`, or `docker-compose PROJECT ARGS…` with the
    /// globals as environment variables.
    pub fn compose<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut command = match self.compose {
            ComposeCli::Plugin => {
                let mut command = self.docker(["compose"]);
                command.args(&self.project_args);
                command
            }
            ComposeCli::PluginBinary(ref path) => {
                let mut command = detached(path);
                command.envs(self.globals.env());
                command.args(&self.project_args);
                command
            }
            ComposeCli::Standalone | ComposeCli::StandaloneV1 => {
                let mut command = detached("docker-compose");
                command.envs(self.globals.env());
                command.args(&self.project_args);
                command
            }
            ComposeCli::PodmanCompose => {
                let mut command = detached("podman-compose");
                command.args(&self.project_args);
                command
            }
        };
        command.args(args.into_iter().map(Into::into));
        command
    }

    /// `docker-compose` without project flags, for detecting it.
    pub fn standalone_compose_version(&self) -> Command {
        let mut command = Command::new("docker-compose");
        command.envs(self.globals.env());
        command.args(["version", "--short"]);
        command
    }

    /// Runs a command to its end and returns what it printed; a non-zero exit is an error that
    /// carries its stderr.
    pub async fn run(&self, mut command: Command) -> Result<Output, DockerError> {
        let shown = show(&command);
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let started = Instant::now();
        let output = command
            .output()
            .await
            .map_err(|source| DockerError::Spawn {
                program: command
                    .as_std()
                    .get_program()
                    .to_string_lossy()
                    .into_owned(),
                source,
            })?;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        tracing::debug!(
            target: "docker",
            "{shown} ({} ms, exit {})",
            started.elapsed().as_millis(),
            output.status.code().map_or("signal".into(), |c| c.to_string())
        );
        if output.status.success() {
            Ok(Output { stdout, stderr })
        } else {
            Err(DockerError::Failed {
                command: shown,
                stdout,
                stderr,
                code: output.status.code(),
            })
        }
    }
}

/// Where Docker's CLI looks for the `compose` plugin, in its order.
fn compose_plugin_binary(globals: &Globals) -> Option<PathBuf> {
    let config = globals
        .config
        .clone()
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("DOCKER_CONFIG").map(PathBuf::from))
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".docker")))?;
    [
        config.join("cli-plugins"),
        "/usr/local/lib/docker/cli-plugins".into(),
        "/usr/local/libexec/docker/cli-plugins".into(),
        "/usr/lib/docker/cli-plugins".into(),
        "/usr/libexec/docker/cli-plugins".into(),
    ]
    .into_iter()
    .map(|dir| dir.join("docker-compose"))
    .find(|path| is_executable(path))
}

fn is_executable(path: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A child in its own process group: Ctrl-C in a terminal signals the whole foreground group,
/// and a `docker stop` killed that way would break a rollout this tool has promised to finish.
/// This process decides what a signal means and tells its children.
///
/// Run as a plugin, this process got the CLI's plugin variables; a child that inherited them would
/// believe it is a plugin too (Compose's binary then rejects standalone arguments).
pub fn detached(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut command = Command::new(program);
    command
        .process_group(0)
        .env_remove("DOCKER_CLI_PLUGIN_ORIGINAL_CLI_COMMAND")
        .env_remove("DOCKER_CLI_PLUGIN_SOCKET");
    command
}

/// A user's command (a pre-stop hook, a proxy check), rendered from its template: no shell, no
/// input, killed if the run gives up on it, and pointed at the same engine as every docker call.
pub fn user_command(argv: &[String], env: Vec<(&'static str, String)>) -> Command {
    let mut command = detached(&argv[0]);
    command
        .args(&argv[1..])
        .envs(env)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    command
}

/// A command as a user could paste it into a shell.
pub fn show(command: &Command) -> String {
    let std = command.as_std();
    std::iter::once(std.get_program())
        .chain(std.get_args())
        .map(|word| shell_words::quote(&word.to_string_lossy()).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(command: &Command) -> Vec<String> {
        command
            .as_std()
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn every_call_carries_the_globals_and_compose_carries_the_project() {
        let globals = Globals {
            context: Some("prod".into()),
            tlsverify: true,
            ..Globals::default()
        };
        let docker = Docker::new(globals, vec!["-p".into(), "shop".into()]);
        assert_eq!(
            args(&docker.docker(["stop", "--", "abc"])),
            ["--context=prod", "--tlsverify", "stop", "--", "abc"]
        );
        assert_eq!(
            args(&docker.compose(["ps"])),
            [
                "--context=prod",
                "--tlsverify",
                "compose",
                "-p",
                "shop",
                "ps"
            ]
        );
    }

    #[test]
    fn finds_the_compose_plugin_where_the_cli_looks_first() {
        use std::os::unix::fs::PermissionsExt;
        let config = tempfile::tempdir().unwrap();
        let plugins = config.path().join("cli-plugins");
        std::fs::create_dir(&plugins).unwrap();
        let binary = plugins.join("docker-compose");
        std::fs::write(&binary, "#!/bin/sh\n").unwrap();
        let globals = Globals {
            config: Some(config.path().display().to_string()),
            ..Globals::default()
        };
        std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_ne!(
            compose_plugin_binary(&globals),
            Some(binary.clone()),
            "not executable"
        );
        std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(compose_plugin_binary(&globals), Some(binary));

        let with_tls_files = Globals {
            tlscert: Some("/certs/client.pem".into()),
            ..globals
        };
        assert!(
            !with_tls_files.fit_environment(),
            "TLS files need the CLI's own flags"
        );
    }

    #[test]
    fn children_do_not_inherit_the_plugin_handshake() {
        let command = detached("docker-compose");
        let removed: Vec<String> = command
            .as_std()
            .get_envs()
            .filter(|(_, value)| value.is_none())
            .map(|(key, _)| key.to_string_lossy().into_owned())
            .collect();
        assert!(removed.contains(&"DOCKER_CLI_PLUGIN_ORIGINAL_CLI_COMMAND".to_owned()));
        assert!(removed.contains(&"DOCKER_CLI_PLUGIN_SOCKET".to_owned()));
    }

    #[test]
    fn standalone_compose_gets_the_globals_as_environment() {
        let globals = Globals {
            host: Some("tcp://10.0.0.5:2376".into()),
            tlscert: Some("/certs/cert.pem".into()),
            ..Globals::default()
        };
        let mut docker = Docker::new(globals, vec![]);
        docker.use_compose(ComposeCli::Standalone);
        let command = docker.compose(["config"]);
        let env: Vec<_> = command
            .as_std()
            .get_envs()
            .filter_map(|(k, v)| {
                Some((
                    k.to_string_lossy().into_owned(),
                    v?.to_string_lossy().into_owned(),
                ))
            })
            .collect();
        assert!(env.contains(&("DOCKER_HOST".into(), "tcp://10.0.0.5:2376".into())));
        assert!(env.contains(&("DOCKER_CERT_PATH".into(), "/certs".into())));
        assert_eq!(args(&command), ["config"]);
    }
}

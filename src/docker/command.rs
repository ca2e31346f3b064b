//! The one command builder. It owns Docker's global flags (`--context`, `-H`, TLS, `--config`)
//! and puts them on every `docker` and `docker compose` call, so no call can reach another
//! daemon than the rest; `--` goes before operands.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Instant;

use tokio::process::Command;

use super::globals::DockerGlobals;

/// The engine every child reaches, resolved once with the Docker CLI's precedence: `-H` (or
/// `--context`: the CLI refuses both), then `DOCKER_HOST`, then `DOCKER_CONTEXT`, then the CLI's
/// current context.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// A daemon address: `-H`, or `DOCKER_HOST`.
    Host(String),
    /// A named context: `--context`, or `DOCKER_CONTEXT`.
    Context(String),
    /// Neither: the current context of the CLI's config (else the default socket).
    Current,
}

impl Endpoint {
    /// `env` reads a variable of this process's environment; an empty one counts as unset, as
    /// for Docker's CLI.
    pub fn resolve(flags: &DockerGlobals, env: impl Fn(&str) -> Option<String>) -> Endpoint {
        let env = |name: &str| env(name).filter(|value| !value.is_empty());
        if let Some(host) = &flags.host {
            return Endpoint::Host(host.clone());
        }
        // Several contexts are rolled one by one, each by a run with one.
        match flags.context.first() {
            // The CLI's context `default` is the one `DOCKER_HOST` configures.
            Some(context) if context == "default" => env("DOCKER_HOST")
                .map_or_else(|| Endpoint::Context(context.clone()), Endpoint::Host),
            Some(context) => Endpoint::Context(context.clone()),
            None => env("DOCKER_HOST")
                .map(Endpoint::Host)
                .or_else(|| env("DOCKER_CONTEXT").map(Endpoint::Context))
                .unwrap_or(Endpoint::Current),
        }
    }
}

/// What a child's environment says about the engine: variables set, and inherited ones removed,
/// so that nothing inherited contradicts the endpoint.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChildEnv {
    pub set: Vec<(&'static str, String)>,
    pub removed: Vec<&'static str>,
}

impl ChildEnv {
    pub fn apply(&self, command: &mut Command) {
        for name in &self.removed {
            command.env_remove(name);
        }
        command.envs(self.set.iter().map(|(name, value)| (name, value)));
    }
}

/// Docker's global flags and the endpoint they resolve to, in this process's environment. Every
/// `docker` and `docker compose` call, and every hook, gets both: the flags where the program
/// takes them, the environment always.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Globals {
    pub flags: DockerGlobals,
    pub endpoint: Endpoint,
}

impl Globals {
    /// Resolves the endpoint from the flags and this process's environment.
    pub fn resolve(flags: DockerGlobals) -> Globals {
        let endpoint = Endpoint::resolve(&flags, |name| std::env::var(name).ok());
        Globals { flags, endpoint }
    }

    pub fn flags(&self) -> Vec<String> {
        self.flags.flags()
    }

    /// The environment of every child: for programs that take no flags (the Compose binary, a
    /// hook) the only way to reach the engine, for `docker` the same as its flags.
    pub fn env(&self) -> ChildEnv {
        let (set, removed) = match &self.endpoint {
            Endpoint::Host(host) => (vec![("DOCKER_HOST", host.clone())], vec!["DOCKER_CONTEXT"]),
            Endpoint::Context(context) => (
                vec![("DOCKER_CONTEXT", context.clone())],
                vec!["DOCKER_HOST"],
            ),
            Endpoint::Current => (vec![], vec!["DOCKER_HOST", "DOCKER_CONTEXT"]),
        };
        let mut env = ChildEnv { set, removed };
        // `compose up --scale` would remove the project's orphans at once; the tool does it
        // itself, after the rollouts succeeded (`--remove-orphans`, which this variable sets).
        env.removed.push("COMPOSE_REMOVE_ORPHANS");
        let flags = &self.flags;
        if let Some(config) = &flags.config {
            env.set.push(("DOCKER_CONFIG", config.clone()));
        }
        if flags.tlsverify {
            env.set.push(("DOCKER_TLS_VERIFY", "1".into()));
        }
        if let Some(cert) = flags.tlscert.as_deref().or(flags.tlscacert.as_deref())
            && let Some(dir) = std::path::Path::new(cert).parent()
        {
            env.set
                .push(("DOCKER_CERT_PATH", dir.display().to_string()));
        }
        env
    }

    /// Which engine these flags reach, as a key for the per-service lock.
    pub fn endpoint(&self) -> String {
        match &self.endpoint {
            Endpoint::Host(host) => host.clone(),
            Endpoint::Context(context) => format!("context-{context}"),
            Endpoint::Current => "default".into(),
        }
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
    /// `podman-compose`, with the `podman` CLI for the rest (the engine module): YAML config too,
    /// no `config --hash`, no `oneoff` label.
    PodmanCompose,
}

#[derive(Clone, Debug)]
pub struct Docker {
    program: String,
    globals: Globals,
    /// `globals.env()`, the environment of every child.
    env: ChildEnv,
    compose: ComposeCli,
    /// Project selection (`-f`, `-p`, `--env-file`, `--profile`, `--project-directory`).
    project_args: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    #[error("could not run `{program}`: {}", why_not(source))]
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

/// Why a program did not start, with the fix when it is simply missing.
fn why_not(error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::NotFound => "it is not on PATH: install it, or fix PATH".to_owned(),
        _ => error.to_string(),
    }
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
            None if globals.flags.fit_environment() => {
                compose_plugin_binary(&globals).map_or(ComposeCli::Plugin, ComposeCli::PluginBinary)
            }
            _ => ComposeCli::Plugin,
        };
        Docker {
            program: custom.unwrap_or_else(|| "docker".into()),
            env: globals.env(),
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

    /// A child pointed at the endpoint: see [`Globals::env`].
    fn child(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = detached(program);
        self.env.apply(&mut command);
        command
    }

    /// Runs another CLI than `docker` (Podman's: the engine module).
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
        let mut command = self.child(&self.program);
        command.args(self.globals.flags());
        command.args(args.into_iter().map(Into::into));
        command
    }

    /// `docker GLOBALS compose PROJECT ARGS…`, or `docker-compose PROJECT ARGS…` with the
    /// globals as environment variables (which every child gets).
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
                let mut command = self.child(path);
                command.args(&self.project_args);
                command
            }
            ComposeCli::Standalone | ComposeCli::StandaloneV1 => {
                let mut command = self.child("docker-compose");
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
        let mut command = self.child("docker-compose");
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
        .flags
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
pub fn user_command(argv: &[String], env: &ChildEnv) -> Command {
    let mut command = detached(&argv[0]);
    command
        .args(&argv[1..])
        .stdin(Stdio::null())
        .kill_on_drop(true);
    env.apply(&mut command);
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
    use std::collections::BTreeMap;

    use super::*;

    fn args(command: &Command) -> Vec<String> {
        command
            .as_std()
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    /// The variables a command sets, and those it removes.
    fn env(command: &Command) -> (BTreeMap<String, String>, Vec<String>) {
        let mut set = BTreeMap::new();
        let mut removed = Vec::new();
        for (name, value) in command.as_std().get_envs() {
            let name = name.to_string_lossy().into_owned();
            match value {
                Some(value) => {
                    set.insert(name, value.to_string_lossy().into_owned());
                }
                None => removed.push(name),
            }
        }
        (set, removed)
    }

    fn globals(flags: DockerGlobals, endpoint: Endpoint) -> Globals {
        Globals { flags, endpoint }
    }

    #[test]
    fn the_endpoint_follows_the_docker_clis_precedence() {
        let host = |h: &str| Endpoint::Host(h.into());
        let context = |c: &str| Endpoint::Context(c.into());
        // (-H, --context, DOCKER_HOST, DOCKER_CONTEXT) → the endpoint
        let cases = [
            ((None, None, None, None), Endpoint::Current),
            ((None, None, Some(""), Some("")), Endpoint::Current),
            ((None, None, None, Some("ctx")), context("ctx")),
            (
                (None, None, Some("unix:///e"), Some("ctx")),
                host("unix:///e"),
            ),
            ((None, Some("x"), Some("unix:///bogus"), None), context("x")),
            ((None, Some("x"), None, Some("bogus")), context("x")),
            (
                (Some("unix:///h"), None, None, Some("bogus")),
                host("unix:///h"),
            ),
            (
                (Some("unix:///h"), None, Some("unix:///e"), None),
                host("unix:///h"),
            ),
            // The CLI's `default` context is the one DOCKER_HOST configures.
            (
                (None, Some("default"), Some("unix:///e"), None),
                host("unix:///e"),
            ),
            (
                (None, Some("default"), None, Some("ctx")),
                context("default"),
            ),
        ];
        for ((flag_host, flag_context, env_host, env_context), expected) in cases {
            let flags = DockerGlobals {
                host: flag_host.map(String::from),
                context: flag_context.into_iter().map(String::from).collect(),
                ..DockerGlobals::default()
            };
            let env = |name: &str| match name {
                "DOCKER_HOST" => env_host.map(String::from),
                "DOCKER_CONTEXT" => env_context.map(String::from),
                _ => None,
            };
            assert_eq!(
                Endpoint::resolve(&flags, env),
                expected,
                "-H {flag_host:?} --context {flag_context:?} \
                 DOCKER_HOST={env_host:?} DOCKER_CONTEXT={env_context:?}"
            );
        }
    }

    /// Every way a child is made: `docker`, Compose as a plugin, its binary run directly, a
    /// standalone `docker-compose`, and the version probe of the latter.
    fn every_child(globals: Globals) -> Vec<(String, Command)> {
        let mut docker = Docker::new(globals, vec!["-p".into(), "shop".into()]);
        let mut children = vec![("docker".to_owned(), docker.docker(["ps"]))];
        for compose in [
            ComposeCli::Plugin,
            ComposeCli::PluginBinary("/plugins/docker-compose".into()),
            ComposeCli::Standalone,
        ] {
            docker.use_compose(compose.clone());
            children.push((format!("{compose:?}"), docker.compose(["ps"])));
        }
        children.push((
            "docker-compose version".into(),
            docker.standalone_compose_version(),
        ));
        children
    }

    /// What each of [`every_child`] is given as arguments, with these global flags.
    #[track_caller]
    fn assert_args(what: &str, command: &Command, flags: &[&str]) {
        let expected = match what {
            "docker" => [flags, &["ps"]].concat(),
            "Plugin" => [flags, &["compose", "-p", "shop", "ps"]].concat(),
            "docker-compose version" => vec!["version", "--short"],
            _ => vec!["-p", "shop", "ps"],
        };
        assert_eq!(args(command), expected, "{what}");
    }

    #[test]
    fn no_flags_leave_the_current_context_and_clear_empty_variables() {
        let globals = globals(DockerGlobals::default(), Endpoint::Current);
        for (what, command) in every_child(globals) {
            let (set, removed) = env(&command);
            assert!(set.is_empty(), "{what}: {set:?}");
            for name in ["DOCKER_HOST", "DOCKER_CONTEXT"] {
                assert!(removed.contains(&name.to_owned()), "{what}: {removed:?}");
            }
            assert_args(&what, &command, &[]);
        }
    }

    #[test]
    fn a_context_reaches_every_child_and_an_inherited_docker_host_does_not() {
        let flags = DockerGlobals {
            context: vec!["prod".into()],
            ..DockerGlobals::default()
        };
        for (what, command) in every_child(globals(flags, Endpoint::Context("prod".into()))) {
            let (set, removed) = env(&command);
            assert_eq!(
                set.get("DOCKER_CONTEXT").map(String::as_str),
                Some("prod"),
                "{what}"
            );
            assert!(
                removed.contains(&"DOCKER_HOST".to_owned()),
                "{what}: {removed:?}"
            );
            assert!(!set.contains_key("DOCKER_HOST"), "{what}");
        }
    }

    #[test]
    fn every_flag_reaches_docker_and_a_host_every_child() {
        let flags = DockerGlobals {
            context: vec![],
            host: Some("tcp://10.0.0.5:2376".into()),
            config: Some("/cfg".into()),
            tls: true,
            tlsverify: true,
            tlscacert: Some("/certs/ca.pem".into()),
            tlscert: Some("/certs/cert.pem".into()),
            tlskey: Some("/certs/key.pem".into()),
            debug: true,
            log_level: Some("debug".into()),
        };
        let globals = globals(flags, Endpoint::Host("tcp://10.0.0.5:2376".into()));
        let all = [
            "--config=/cfg",
            "--host=tcp://10.0.0.5:2376",
            "--log-level=debug",
            "--tlscacert=/certs/ca.pem",
            "--tlscert=/certs/cert.pem",
            "--tlskey=/certs/key.pem",
            "--tls",
            "--tlsverify",
            "--debug",
        ];
        for (what, command) in every_child(globals) {
            let (set, removed) = env(&command);
            let expected: BTreeMap<String, String> = [
                ("DOCKER_HOST", "tcp://10.0.0.5:2376"),
                ("DOCKER_CONFIG", "/cfg"),
                ("DOCKER_TLS_VERIFY", "1"),
                ("DOCKER_CERT_PATH", "/certs"),
            ]
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
            assert_eq!(set, expected, "{what}");
            assert!(removed.contains(&"DOCKER_CONTEXT".to_owned()), "{what}");
            assert_args(&what, &command, &all);
        }
    }

    #[test]
    fn finds_the_compose_plugin_where_the_cli_looks_first() {
        use std::os::unix::fs::PermissionsExt;
        let config = tempfile::tempdir().unwrap();
        let plugins = config.path().join("cli-plugins");
        std::fs::create_dir(&plugins).unwrap();
        let binary = plugins.join("docker-compose");
        std::fs::write(&binary, "#!/bin/sh\n").unwrap();
        let flags = DockerGlobals {
            config: Some(config.path().display().to_string()),
            ..DockerGlobals::default()
        };
        let globals = globals(flags.clone(), Endpoint::Current);
        std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_ne!(
            compose_plugin_binary(&globals),
            Some(binary.clone()),
            "not executable"
        );
        std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(compose_plugin_binary(&globals), Some(binary));

        let with_tls_files = DockerGlobals {
            tlscert: Some("/certs/client.pem".into()),
            ..flags
        };
        assert!(
            !with_tls_files.fit_environment(),
            "TLS files need the CLI's own flags"
        );
    }

    #[test]
    fn children_do_not_inherit_the_plugin_handshake() {
        let (_, removed) = env(&detached("docker-compose"));
        assert!(removed.contains(&"DOCKER_CLI_PLUGIN_ORIGINAL_CLI_COMMAND".to_owned()));
        assert!(removed.contains(&"DOCKER_CLI_PLUGIN_SOCKET".to_owned()));
    }

    #[test]
    fn a_missing_program_is_said_to_be_missing_from_path() {
        let missing = DockerError::Spawn {
            program: "docker".into(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        assert_eq!(
            missing.to_string(),
            "could not run `docker`: it is not on PATH: install it, or fix PATH"
        );
        let denied = DockerError::Spawn {
            program: "docker".into(),
            source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        };
        assert_eq!(
            denied.to_string(),
            "could not run `docker`: permission denied"
        );
    }
}

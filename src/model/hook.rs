//! Compose's lifecycle hooks (`pre_stop:` of a service, Compose 2.30+): commands run inside a
//! container. Compose runs a service's `pre_stop` hooks only when it stops the container itself;
//! a rollout retires old containers with `docker stop`, so it runs them.

/// One hook as `docker compose config --format json` resolves it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExecHook {
    /// The command and its arguments, run without a shell unless the command is one.
    pub command: Vec<String>,
    pub user: Option<String>,
    pub privileged: bool,
    pub working_dir: Option<String>,
    /// `NAME=value`, or a bare `NAME` that takes its value from the tool's own environment (as
    /// `docker exec --env NAME` does, and as Compose treats a name without a value).
    pub environment: Vec<String>,
}

impl ExecHook {
    /// The command as a person reads it.
    pub fn shown(&self) -> String {
        shell_words::join(&self.command)
    }
}

//! The exit-code table (documented in the README) and the error that carries one.

use std::fmt;

/// How a run ended, as the shell sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Exit {
    /// The rollout finished: N new containers serve.
    Done,
    /// The rollout failed and was rolled back: the old containers still serve.
    RolledBack,
    /// The rollout failed part of the way (`failure_action: pause` or `continue`): old and new
    /// containers serve side by side; a next run finishes it.
    Partial,
    /// Bad usage or an unmet precondition: nothing was changed.
    Usage,
    /// The rollout failed and cleanup is incomplete: the output says what is left.
    Incomplete,
    /// Interrupted by SIGINT, after rolling back.
    Interrupted,
    /// Interrupted by SIGTERM, after rolling back.
    Terminated,
}

impl Exit {
    pub fn code(self) -> u8 {
        match self {
            Exit::Done => 0,
            Exit::RolledBack | Exit::Partial => 1,
            Exit::Usage => 2,
            Exit::Incomplete => 3,
            Exit::Interrupted => 130,
            Exit::Terminated => 143,
        }
    }
}

/// An error that ends the run with a given exit code. Its message is printed once, by `main`.
#[derive(Debug)]
pub struct Failure {
    pub exit: Exit,
    pub message: String,
}

impl Failure {
    /// A usage or precondition error: exit 2, and the caller guarantees nothing was changed.
    pub fn usage(message: impl Into<String>) -> Self {
        Failure {
            exit: Exit::Usage,
            message: message.into(),
        }
    }

    pub fn new(exit: Exit, message: impl Into<String>) -> Self {
        Failure {
            exit,
            message: message.into(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

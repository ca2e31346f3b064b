//! One host's part in a rollout over several hosts (Docker contexts), for the result table and
//! the JSON events.

use std::time::Duration;

use crate::exit::Exit;

/// What happened on one host.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HostState {
    /// Rolled: the new version serves there.
    Done,
    /// Its run failed; `Exit` says how (rolled back, partial, nothing changed, incomplete…).
    Failed(Exit),
    /// Rolled, then rolled back to its previous images after a later host failed.
    Reverted,
    /// Rolled, but rolling it back failed: its run's output says what serves.
    RevertFailed(Exit),
    /// Never touched: an earlier host failed, or the run was stopped.
    NotStarted,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostRow {
    pub context: String,
    pub state: HostState,
    /// Wall time of its run (pre-host and post-host commands included); zero if not started.
    pub took: Duration,
    /// Why it failed, in a line (its run's last error, or the hook that failed).
    pub note: String,
}

impl HostState {
    /// Words for the table.
    pub fn describe(&self) -> String {
        match self {
            HostState::Done => "done: the new version serves".into(),
            HostState::Failed(exit) => format!("failed (exit {}): {}", exit.code(), exit.meaning()),
            HostState::Reverted => "rolled back to its previous images".into(),
            HostState::RevertFailed(exit) => {
                format!("rolling it back failed (exit {})", exit.code())
            }
            HostState::NotStarted => "not touched".into(),
        }
    }
}

/// The exit a child run's code stands for (codes 1 are told apart by its last JSON event).
pub fn exit_of(code: Option<i32>, outcome: Option<&str>) -> Exit {
    match (code, outcome) {
        (Some(0), _) => Exit::Done,
        (Some(1), Some("partial")) => Exit::Partial,
        (Some(1), _) => Exit::RolledBack,
        (Some(2), _) => Exit::Usage,
        (Some(130), _) => Exit::Interrupted,
        (Some(143), _) => Exit::Terminated,
        _ => Exit::Incomplete,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_code_maps_back_to_its_exit() {
        assert_eq!(exit_of(Some(0), None), Exit::Done);
        assert_eq!(exit_of(Some(1), Some("partial")), Exit::Partial);
        assert_eq!(exit_of(Some(1), Some("rolled_back")), Exit::RolledBack);
        assert_eq!(exit_of(Some(2), None), Exit::Usage);
        assert_eq!(exit_of(Some(3), None), Exit::Incomplete);
        // Killed by a signal: nobody said what is left.
        assert_eq!(exit_of(None, None), Exit::Incomplete);
    }
}

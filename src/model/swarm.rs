//! A Swarm service's rollout as the engine reports it (`.UpdateStatus`), and what it means for
//! this tool's exit codes.

use serde::Deserialize;

use crate::exit::Exit;

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct UpdateStatus {
    #[serde(rename = "State", default)]
    pub state: String,
    #[serde(rename = "StartedAt", default)]
    pub started_at: String,
    #[serde(rename = "Message", default)]
    pub message: String,
}

/// Where one service's update stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Still rolling (forward or back).
    Rolling,
    /// Over, with this exit.
    Over(Exit),
    /// No update started since the deploy: unchanged, or new (judged by its replicas).
    NotStarted,
}

impl UpdateStatus {
    /// `before` is the status from before the deploy: the same start time means no new update.
    pub fn progress(&self, before: Option<&UpdateStatus>) -> Progress {
        if self.started_at.is_empty() || before.is_some_and(|b| b.started_at == self.started_at) {
            return Progress::NotStarted;
        }
        match self.state.as_str() {
            "completed" => Progress::Over(Exit::Done),
            "rollback_completed" => Progress::Over(Exit::RolledBack),
            // Swarm stopped part of the way: old and new tasks side by side.
            "paused" => Progress::Over(Exit::Partial),
            "rollback_paused" => Progress::Over(Exit::Incomplete),
            _ => Progress::Rolling,
        }
    }
}

/// `2/2`, `1/2 (max 1 per node)`: whether every wanted replica runs.
pub fn replicas_converged(text: &str) -> bool {
    let counts = text.split_whitespace().next().unwrap_or_default();
    matches!(counts.split_once('/'), Some((running, wanted)) if running == wanted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(state: &str, started: &str) -> UpdateStatus {
        UpdateStatus {
            state: state.into(),
            started_at: started.into(),
            message: String::new(),
        }
    }

    #[test]
    fn a_new_update_is_judged_by_its_state_an_old_one_not_at_all() {
        let before = status("completed", "t1");
        assert_eq!(
            status("completed", "t1").progress(Some(&before)),
            Progress::NotStarted
        );
        assert_eq!(
            status("updating", "t2").progress(Some(&before)),
            Progress::Rolling
        );
        assert_eq!(
            status("completed", "t2").progress(Some(&before)),
            Progress::Over(Exit::Done)
        );
        assert_eq!(
            status("rollback_completed", "t2").progress(None),
            Progress::Over(Exit::RolledBack)
        );
        assert_eq!(
            status("paused", "t2").progress(None),
            Progress::Over(Exit::Partial)
        );
        assert_eq!(UpdateStatus::default().progress(None), Progress::NotStarted);
    }

    #[test]
    fn replicas_converge_when_all_wanted_run() {
        assert!(replicas_converged("2/2"));
        assert!(replicas_converged("1/1 (max 1 per node)"));
        assert!(!replicas_converged("1/2"));
        assert!(!replicas_converged(""));
    }
}

//! How `promote` and `abort` reach a paused rollout in another process, and how `status` learns
//! where it stands: two small files beside the service's lock and journal. A request is written
//! whole and renamed into place; the running rollout reads it at its next tick (every 500 ms),
//! removes it, and acts. The status file is rewritten at each tick. Files, not signals: they work
//! from another shell, a later CI job or another user, and need no pid to be right.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::lock::StateDir;
use crate::model::canary::Control;
use crate::rollout::machine::canary::Standing;

/// Where a canary run stands, as the run wrote it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub pid: u32,
    /// When the run last wrote it (ms since the epoch): a window rewrites it every tick.
    pub updated_ms: u64,
    pub project: String,
    pub service: String,
    #[serde(flatten)]
    pub standing: Standing,
}

/// A status older than this is from a window that closed.
const FRESH_MS: u64 = 5_000;

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

pub struct ControlFiles {
    request: PathBuf,
    status: PathBuf,
}

impl ControlFiles {
    pub fn new(state: &StateDir) -> Self {
        ControlFiles {
            request: state.file("control"),
            status: state.file("canary.json"),
        }
    }

    /// Asks the running rollout for `control`.
    pub fn request(&self, control: Control) -> std::io::Result<()> {
        let temporary = self.request.with_extension("control.tmp");
        std::fs::write(&temporary, control.name())?;
        std::fs::rename(temporary, &self.request)
    }

    /// Whether a request is still waiting to be read.
    pub fn pending(&self) -> bool {
        self.request.exists()
    }

    /// The request waiting, if any; reading it consumes it.
    pub fn take_request(&self) -> Option<Control> {
        let text = std::fs::read_to_string(&self.request).ok()?;
        let _ = std::fs::remove_file(&self.request);
        Control::parse(&text)
    }

    /// Forgets what an earlier run left: a request nobody read, a status nobody updates.
    pub fn clear(&self) {
        let _ = std::fs::remove_file(&self.request);
        let _ = std::fs::remove_file(&self.status);
    }

    pub fn write_status(&self, status: &Status) {
        let temporary = self.status.with_extension("json.tmp");
        if let Ok(text) = serde_json::to_vec(status)
            && std::fs::write(&temporary, text).is_ok()
        {
            let _ = std::fs::rename(temporary, &self.status);
        }
    }

    /// Where the run stands, if it is in a pause or the bake now (the file was rewritten lately:
    /// between windows the run goes on alone, and a request then would reach the next window).
    pub fn read_status(&self) -> Option<Status> {
        let status: Status =
            serde_json::from_str(&std::fs::read_to_string(&self.status).ok()?).ok()?;
        (now_ms().saturating_sub(status.updated_ms) <= FRESH_MS).then_some(status)
    }

    pub fn remove_status(&self) {
        let _ = std::fs::remove_file(&self.status);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_read_once() {
        let dir = tempfile::tempdir().unwrap();
        let files = ControlFiles {
            request: dir.path().join("k.control"),
            status: dir.path().join("k.canary.json"),
        };
        assert_eq!(files.take_request(), None);
        files.request(Control::Promote).unwrap();
        assert!(files.pending());
        assert_eq!(files.take_request(), Some(Control::Promote));
        assert!(!files.pending());
        assert_eq!(files.take_request(), None);
        files.request(Control::Abort).unwrap();
        files.clear();
        assert_eq!(files.take_request(), None);
    }

    #[test]
    fn a_status_no_window_rewrote_lately_is_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let files = ControlFiles {
            request: dir.path().join("k.control"),
            status: dir.path().join("k.canary.json"),
        };
        let status = |updated_ms| Status {
            pid: 1,
            updated_ms,
            project: "p".into(),
            service: "web".into(),
            standing: Standing {
                stage: "step".into(),
                step: 1,
                steps: 2,
                new: 1,
                old: 2,
                expected_share: 1.0 / 3.0,
                elapsed: 3.0,
                remaining: None,
                probe: Default::default(),
                proxy: Default::default(),
                commands_passed: 0,
            },
        };
        files.write_status(&status(now_ms()));
        assert_eq!(files.read_status().map(|s| s.standing.step), Some(1));
        files.write_status(&status(now_ms() - 60_000));
        assert_eq!(files.read_status(), None, "a closed window's status");
    }
}

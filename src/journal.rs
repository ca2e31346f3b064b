//! What a rollout in progress has to remember if it is killed: which containers were the old,
//! serving set and how many new ones it was after. The next run reads it to converge instead of
//! doubling the service again. It sits beside the lock, keyed the same way.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journal {
    pub old: Vec<String>,
    pub target: u32,
    pub pid: u32,
}

pub struct JournalFile {
    path: PathBuf,
}

impl JournalFile {
    pub fn new(path: PathBuf) -> Self {
        JournalFile { path }
    }

    pub fn load(&self) -> Option<Journal> {
        let text = std::fs::read_to_string(&self.path).ok()?;
        serde_json::from_str(&text).ok()
    }

    pub fn save(&self, journal: &Journal) -> std::io::Result<()> {
        // Written whole to a temporary file, then renamed: a kill mid-write leaves the old journal.
        let temporary = self.path.with_extension("json.tmp");
        std::fs::write(&temporary, serde_json::to_vec(journal)?)?;
        std::fs::rename(temporary, &self.path)
    }

    pub fn remove(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survives_a_round_trip_and_removal() {
        let dir = tempfile::tempdir().unwrap();
        let file = JournalFile::new(dir.path().join("j.json"));
        assert_eq!(file.load(), None);
        let journal = Journal {
            old: vec!["a1".into()],
            target: 1,
            pid: 7,
        };
        file.save(&journal).unwrap();
        assert_eq!(file.load(), Some(journal));
        file.remove();
        assert_eq!(file.load(), None);
    }
}

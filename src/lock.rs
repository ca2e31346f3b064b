//! One rollout per project and service at a time. A second run would see the first one's new
//! containers and double the service again, so it is refused. The lock is an OS file lock: it
//! goes away with the process, even on kill -9.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::PathBuf;

use crate::journal::JournalFile;

pub struct StateDir {
    dir: PathBuf,
    key: String,
}

pub struct Lock {
    _file: File,
}

impl StateDir {
    /// `$DOCKER_REROLL_STATE_DIR`, else `$XDG_STATE_HOME/docker-reroll`, else
    /// `~/.local/state/docker-reroll`, else the temporary directory.
    pub fn new(endpoint: &str, project: &str, service: &str) -> Self {
        let env = |name| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let dir = env("DOCKER_REROLL_STATE_DIR")
            .or_else(|| env("XDG_STATE_HOME").map(|d| d.join("docker-reroll")))
            .or_else(|| env("HOME").map(|d| d.join(".local/state/docker-reroll")))
            .unwrap_or_else(|| std::env::temp_dir().join("docker-reroll"));
        let key = [endpoint, project, service]
            .iter()
            .map(|part| {
                part.chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || c == '-' {
                            c
                        } else {
                            '_'
                        }
                    })
                    .collect::<String>()
            })
            .collect::<Vec<_>>()
            .join("--");
        StateDir { dir, key }
    }

    /// Another file of this service's state, beside the journal (`canary.json`, `control`).
    pub fn file(&self, extension: &str) -> PathBuf {
        self.dir.join(format!("{}.{extension}", self.key))
    }

    pub fn journal(&self) -> JournalFile {
        JournalFile::new(self.dir.join(format!("{}.json", self.key)))
    }

    /// Takes the lock, or says which process holds it.
    pub fn lock(&self) -> Result<Lock, String> {
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| format!("cannot create {}: {e}", self.dir.display()))?;
        let path = self.dir.join(format!("{}.lock", self.key));
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {
                file.set_len(0).ok();
                write!(file, "{}", std::process::id()).ok();
                Ok(Lock { _file: file })
            }
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                file.rewind().ok();
                file.read_to_string(&mut holder).ok();
                Err(format!("pid {}", holder.trim()))
            }
            Err(TryLockError::Error(e)) => Err(format!("cannot lock {}: {e}", path.display())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir {
            dir: dir.path().to_owned(),
            key: StateDir::new("unix:///x", "p", "web").key,
        };
        let first = state.lock().unwrap();
        let refusal = state.lock().err().unwrap();
        assert_eq!(refusal, format!("pid {}", std::process::id()));
        drop(first);
        assert!(state.lock().is_ok());
    }
}

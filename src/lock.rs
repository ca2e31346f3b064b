//! One rollout per project and service at a time. A second run would see the first one's new
//! containers and double the service again, so it is refused. The lock is an OS file lock: it
//! goes away with the process, even on kill -9.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::journal::JournalFile;

pub struct StateDir {
    dir: PathBuf,
    key: String,
}

pub struct Lock {
    _file: File,
}

/// Why the lock was not taken.
#[derive(Debug, PartialEq, Eq)]
pub enum LockError {
    /// Another process holds it: `pid N`.
    Held(String),
    /// The state directory cannot be used (not creatable, not writable).
    Unusable(String),
}

impl LockError {
    /// The one-line error: a held lock names its holder, an unusable directory the way out.
    pub fn explain(&self, project: &str, service: &str) -> String {
        match self {
            LockError::Held(holder) => format!(
                "another docker-reroll ({holder}) is rolling service '{service}' of project \
                 '{project}': wait for it to finish, then run again"
            ),
            LockError::Unusable(why) => format!(
                "cannot keep this run's lock and journal: {why}: set DOCKER_REROLL_STATE_DIR \
                 (or XDG_STATE_HOME) to a writable directory"
            ),
        }
    }
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

    fn lock_file(&self) -> Result<(File, PathBuf), LockError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| {
            LockError::Unusable(format!("cannot create {}: {e}", self.dir.display()))
        })?;
        let path = self.dir.join(format!("{}.lock", self.key));
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| LockError::Unusable(format!("cannot open {}: {e}", path.display())))?;
        Ok((file, path))
    }

    /// Takes the lock, or says which process holds it. A holder that lets go within
    /// [`LOOKERS_HOLD_AT_MOST`] is waited for: `status`, `promote` and `abort` take it for an
    /// instant to look ([`StateDir::holder`]), and a rollout started meanwhile must not be refused.
    pub fn lock(&self) -> Result<Lock, LockError> {
        let (mut file, path) = self.lock_file()?;
        let patience = Instant::now() + LOOKERS_HOLD_AT_MOST;
        loop {
            match file.try_lock() {
                Ok(()) => {
                    file.set_len(0).ok();
                    write!(file, "{}", std::process::id()).ok();
                    return Ok(Lock { _file: file });
                }
                Err(TryLockError::WouldBlock) if Instant::now() < patience => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(TryLockError::WouldBlock) => return Err(LockError::Held(holder_of(&mut file))),
                Err(TryLockError::Error(e)) => return Err(cannot_lock(&path, e)),
            }
        }
    }

    /// Which process holds the lock, if any, without writing to it and while holding it only for
    /// an instant (shared, so that lookers do not block one another).
    pub fn holder(&self) -> Result<Option<String>, LockError> {
        let (mut file, path) = self.lock_file()?;
        match file.try_lock_shared() {
            Ok(()) => Ok(None),
            Err(TryLockError::WouldBlock) => Ok(Some(holder_of(&mut file))),
            Err(TryLockError::Error(e)) => Err(cannot_lock(&path, e)),
        }
    }
}

/// How long a look at the lock holds it, at most (a rollout waits that long before refusing).
const LOOKERS_HOLD_AT_MOST: Duration = Duration::from_secs(2);

fn cannot_lock(path: &std::path::Path, error: std::io::Error) -> LockError {
    LockError::Unusable(format!("cannot lock {}: {error}", path.display()))
}

fn holder_of(file: &mut File) -> String {
    let mut holder = String::new();
    file.rewind().ok();
    file.read_to_string(&mut holder).ok();
    format!("pid {}", holder.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state_in(dir: &tempfile::TempDir) -> StateDir {
        StateDir {
            dir: dir.path().to_owned(),
            key: StateDir::new("unix:///x", "p", "web").key,
        }
    }

    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let state = state_in(&dir);
        let first = state.lock().unwrap();
        let refusal = state.lock().err().unwrap();
        assert_eq!(
            refusal,
            LockError::Held(format!("pid {}", std::process::id()))
        );
        assert_eq!(
            state.holder(),
            Ok(Some(format!("pid {}", std::process::id())))
        );
        drop(first);
        assert_eq!(state.holder(), Ok(None));
        assert!(state.lock().is_ok());
    }

    #[test]
    fn a_look_at_the_lock_neither_takes_it_nor_keeps_a_rollout_out() {
        let dir = tempfile::tempdir().unwrap();
        let state = state_in(&dir);
        let (look, _) = state.lock_file().unwrap();
        look.try_lock_shared().unwrap();
        let started = Instant::now();
        let rollout = std::thread::scope(|scope| {
            let rollout = scope.spawn(|| state.lock());
            std::thread::sleep(Duration::from_millis(200));
            drop(look);
            rollout.join().unwrap()
        });
        assert!(rollout.is_ok(), "{:?}", rollout.err());
        assert!(started.elapsed() < LOOKERS_HOLD_AT_MOST);
    }

    #[test]
    fn a_state_directory_that_cannot_be_made_is_not_taken_for_a_holder() {
        let file = tempfile::NamedTempFile::new().unwrap();
        let state = StateDir {
            // A directory under a regular file can never be created.
            dir: file.path().join("docker-reroll"),
            key: "k".into(),
        };
        let refusal = state.lock().err().unwrap();
        assert!(matches!(refusal, LockError::Unusable(_)), "{refusal:?}");
        let line = refusal.explain("shop", "web");
        assert!(
            line.contains("cannot create") && line.contains("DOCKER_REROLL_STATE_DIR"),
            "{line}"
        );
        assert!(matches!(state.holder(), Err(LockError::Unusable(_))));
    }
}

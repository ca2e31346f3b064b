//! The project's lock on the engine itself, so that runs from two machines (two CI runners, a
//! laptop and a runner) against one engine are kept apart; the file lock (`crate::lock`) only
//! sees runs on this machine.
//!
//! The lock is a container named `reroll-lock-<project>`, created and never started: the engine
//! creates a name at most once, so of two runs exactly one gets it. Its labels name the holder
//! (host, pid, start time, run id, lease). The holder refreshes the lease by copying a timestamp
//! into it every third of the lease; a lock whose holder is gone (its pid dead on this host, or
//! its lease run out) is removed by id and taken, and the output says which it was. The lock is
//! removed when the run ends, on every path: a signal ends the run through the rollout's own
//! handling, and the lock goes with it (`Drop`). Only a kill -9 leaves it, for the lease to expire.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::task::JoinHandle;

use crate::docker::{Docker, DockerError, unreachable_or};
use crate::exit::Failure;
use crate::interrupt::Interrupts;
use crate::model::lock_holder::{Holder, Verdict};
use crate::report::Reporter;

/// How long a lock holds without a refresh. The holder refreshes every third of it, so two
/// missed refreshes (a busy engine) do not lose it.
pub const LEASE: Duration = Duration::from_secs(30);
/// How often a waiting run tries again.
const POLL: Duration = Duration::from_millis(500);
/// `DOCKER_REROLL_ENGINE_LOCK=0` turns the engine lock off (for an engine that cannot import an
/// image, or the fake docker of the CLI tests); the file lock stays.
pub const OFF_VAR: &str = "DOCKER_REROLL_ENGINE_LOCK";

/// The lock, held until dropped.
pub struct EngineLock {
    docker: Docker,
    id: String,
    refresher: JoinHandle<()>,
}

pub fn lock_name(project: &str) -> String {
    format!("reroll-lock-{project}")
}

/// Takes the project's lock on the engine; with `wait`, waits up to that long for its holder to
/// let go. `None` when turned off.
pub async fn acquire(
    docker: &Docker,
    project: &str,
    wait: Option<Duration>,
    reporter: &Reporter,
    interrupts: &mut Interrupts,
) -> Result<Option<EngineLock>, Failure> {
    if std::env::var(OFF_VAR).is_ok_and(|v| v == "0" || v == "off") {
        return Ok(None);
    }
    let me = this_run();
    let mut imported = false;
    let name = lock_name(project);
    let deadline = wait.map(|wait| tokio::time::Instant::now() + wait);
    let mut announced = false;
    loop {
        match docker
            .run(docker.lock_create(&name, &me.labels(project)))
            .await
        {
            Ok(output) => {
                let id = output.stdout.trim().to_owned();
                if announced {
                    reporter.info(&format!("took the lock {name} on the engine"));
                }
                return Ok(Some(EngineLock {
                    refresher: refresh(docker.clone(), id.clone()),
                    docker: docker.clone(),
                    id,
                }));
            }
            Err(error) if is_name_taken(&error) => {}
            // The first lock on this engine: the image is made once, then the create again.
            Err(error) if !imported && is_image_missing(&error) => {
                import_image(docker).await?;
                imported = true;
                continue;
            }
            Err(error) => return Err(unreachable_or("creating the lock container")(error)),
        }
        let Some((id, holder)) = current_holder(docker, &name).await? else {
            continue; // let go between our attempt and our look: try again
        };
        let refreshed = read_lease(docker, &id).await;
        match holder.verdict(&local_host(), pid_alive, refreshed, unix_now()) {
            Verdict::Stale(why) => {
                reporter.warning(&format!(
                    "the lock {name} on the engine is stale: {why}; removing it and taking it"
                ));
                // By id: a lock someone else took meanwhile has another id and stays.
                let _ = docker.run(docker.remove(&[id], true)).await;
                continue;
            }
            Verdict::Held => {}
        }
        let Some(deadline) = deadline else {
            return Err(Failure::usage(format!(
                "project '{project}' is locked on the engine by another docker-reroll ({}; \
                 container {name}): wait for it to finish, or run with --lock-wait DURATION",
                holder.describe()
            )));
        };
        if tokio::time::Instant::now() >= deadline {
            return Err(Failure::usage(format!(
                "project '{project}' is still locked on the engine by another docker-reroll ({}; \
                 container {name}) after --lock-wait {}: nothing was changed; run again later",
                holder.describe(),
                crate::duration::show(wait.unwrap_or_default())
            )));
        }
        if !announced {
            reporter.info(&format!(
                "project '{project}' is locked on the engine by {}: waiting up to {} for it",
                holder.describe(),
                crate::duration::show(wait.unwrap_or_default())
            ));
            announced = true;
        }
        tokio::time::sleep(POLL).await;
        if let Some(signal) = interrupts.pending() {
            return Err(Failure::new(
                signal.exit(),
                format!("stopped while waiting for the lock {name}: nothing was changed"),
            ));
        }
    }
}

fn is_name_taken(error: &DockerError) -> bool {
    let text = error.stderr();
    text.contains("is already in use") || text.contains("Conflict")
}

fn is_image_missing(error: &DockerError) -> bool {
    let text = error.stderr();
    text.contains("No such image")
        || text.contains("no such image")
        || text.contains("image not known")
}

/// The lock image: zero bytes, imported once per engine from an empty tar.
async fn import_image(docker: &Docker) -> Result<(), Failure> {
    let dir = std::env::temp_dir().join(format!("docker-reroll-{}", std::process::id()));
    std::fs::create_dir_all(&dir)
        .map_err(|e| Failure::usage(format!("cannot create {}: {e}", dir.display())))?;
    let tar = dir.join("empty.tar");
    // An empty tar archive is its end marker: two zero blocks.
    std::fs::write(&tar, [0u8; 1024])
        .map_err(|e| Failure::usage(format!("cannot write {}: {e}", tar.display())))?;
    let imported = docker.run(docker.lock_image_import(&tar)).await;
    let _ = std::fs::remove_dir_all(&dir);
    imported
        .map(drop)
        .map_err(unreachable_or("importing the lock image"))
}

/// The lock container's id and holder; `None` when it is gone.
async fn current_holder(docker: &Docker, name: &str) -> Result<Option<(String, Holder)>, Failure> {
    let output = match docker.run(docker.lock_inspect(name)).await {
        Ok(output) => output,
        Err(error) if error.stderr().contains("No such") => return Ok(None),
        Err(error) => return Err(unreachable_or("inspecting the lock container")(error)),
    };
    let (id, labels) = output.stdout.trim().split_once(' ').unwrap_or_default();
    let holder = serde_json::from_str(labels)
        .ok()
        .and_then(|labels| Holder::from_labels(&labels))
        .ok_or_else(|| {
            Failure::usage(format!(
                "a container named {name} exists on the engine but is not a docker-reroll lock: \
                 rename or remove it"
            ))
        })?;
    Ok(Some((id.to_owned(), holder)))
}

/// The lease's last refresh (unix seconds) from the tar stream `docker cp ID:/lease -` prints: one
/// 512-byte header, then the file's text.
async fn read_lease(docker: &Docker, id: &str) -> Option<u64> {
    let output = docker.run(docker.lock_read_lease(id)).await.ok()?;
    lease_from_tar(&output.stdout)
}

fn lease_from_tar(tar: &str) -> Option<u64> {
    tar.get(512..)?
        .trim_matches(char::from(0))
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Rewrites the lease every third of it, until aborted.
fn refresh(docker: Docker, id: String) -> JoinHandle<()> {
    tokio::spawn(async move {
        let file = std::env::temp_dir().join(format!("docker-reroll-lease-{id}"));
        loop {
            if std::fs::write(&file, unix_now().to_string()).is_ok() {
                let _ = docker.run(docker.lock_write_lease(&id, &file)).await;
            }
            tokio::time::sleep(LEASE / 3).await;
        }
    })
}

impl Drop for EngineLock {
    fn drop(&mut self) {
        self.refresher.abort();
        let _ = std::fs::remove_file(
            std::env::temp_dir().join(format!("docker-reroll-lease-{}", self.id)),
        );
        // Drop cannot wait on the runtime: the same command, run by the standard library.
        let remove = self.docker.remove(std::slice::from_ref(&self.id), true);
        let remove = remove.as_std();
        let mut command = std::process::Command::new(remove.get_program());
        command.args(remove.get_args());
        for (name, value) in remove.get_envs() {
            match value {
                Some(value) => command.env(name, value),
                None => command.env_remove(name),
            };
        }
        let _ = command
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

fn this_run() -> Holder {
    let pid = std::process::id();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    Holder {
        host: local_host(),
        pid,
        pid_start: pid_start(pid).unwrap_or(0),
        started: unix_now(),
        run_id: format!("{:x}", (nanos as u64) ^ (u64::from(pid) << 40)),
        lease: LEASE,
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

pub fn local_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// Field 22 of `/proc/PID/stat`: when the process started, in clock ticks since boot.
fn pid_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19)?.parse().ok()
}

fn pid_alive(pid: u32, started: u64) -> bool {
    match pid_start(pid) {
        None => false,
        Some(now) => started == 0 || now == started,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_lease_from_the_tar_stream() {
        let mut tar = "lease".to_owned();
        tar.push_str(&"\0".repeat(507));
        tar.push_str("1700000000");
        tar.push_str(&"\0".repeat(1000));
        assert_eq!(lease_from_tar(&tar), Some(1_700_000_000));
        assert_eq!(lease_from_tar("short"), None);
    }

    #[test]
    fn this_process_is_alive_and_a_reused_pid_is_not() {
        let me = std::process::id();
        let started = pid_start(me).unwrap();
        assert!(pid_alive(me, started));
        assert!(pid_alive(me, 0));
        assert!(!pid_alive(me, started + 1));
        assert!(!pid_alive(u32::MAX - 1, 0));
    }
}

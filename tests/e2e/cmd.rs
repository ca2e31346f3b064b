//! Running external commands with a time limit and captured output.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::Command;

/// What a finished command left behind.
#[derive(Debug)]
pub struct Finished {
    /// `None` when it was killed by a signal.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Finished {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// Everything it printed, for assertion messages.
    pub fn transcript(&self) -> String {
        format!(
            "exit code {:?} after {:.1}s\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code,
            self.elapsed.as_secs_f64(),
            self.stdout.trim_end(),
            self.stderr.trim_end()
        )
    }
}

/// A command to be run in `dir` with extra environment variables.
pub fn command<I, S>(program: &str, args: I, dir: &Path, envs: &[(&str, &str)]) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new(program);
    cmd.args(args)
        .current_dir(dir)
        .envs(super::engine::env())
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // A command that outlives its time limit (or a failed test) must not linger.
        .kill_on_drop(true);
    cmd
}

/// Runs `cmd` to completion; panics if it cannot start or takes longer than `limit`.
pub async fn run(mut cmd: Command, limit: Duration) -> Finished {
    let started = Instant::now();
    let description = format!("{:?}", cmd.as_std());
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {description}: {e}"));
    wait(child, started, limit, &description).await
}

/// Waits for a spawned child (started with piped stdout/stderr) and collects its output; kills it
/// and panics after `limit`.
pub async fn wait(
    child: tokio::process::Child,
    started: Instant,
    limit: Duration,
    description: &str,
) -> Finished {
    match tokio::time::timeout(limit, child.wait_with_output()).await {
        Ok(Ok(output)) => Finished {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            elapsed: started.elapsed(),
        },
        Ok(Err(e)) => panic!("waiting for {description} failed: {e}"),
        // Dropping the future dropped the child, which kill_on_drop has killed.
        Err(_) => panic!("{description} did not finish within {limit:?}"),
    }
}

/// Runs a `docker` CLI command and panics unless it succeeds.
pub async fn docker_ok(args: &[&str], dir: &Path) -> String {
    let finished = run(command("docker", args, dir, &[]), Duration::from_secs(120)).await;
    assert!(
        finished.success(),
        "docker {} failed: {}",
        args.join(" "),
        finished.transcript()
    );
    finished.stdout
}

/// Sends a signal to one process, like `kill -SIG PID`. A negative pid names a process group.
pub fn send_signal(pid: i32, signal: &str) {
    let status = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg("--")
        .arg(pid.to_string())
        .status()
        .expect("cannot run kill");
    assert!(status.success(), "kill -{signal} {pid} failed");
}

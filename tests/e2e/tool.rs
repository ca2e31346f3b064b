//! Running the `docker-reroll` binary built by Cargo: to completion, or in the background to be
//! interrupted.

use std::path::Path;
use std::time::{Duration, Instant};

use super::cmd::{self, Finished, command};

pub const BINARY: &str = env!("CARGO_BIN_EXE_docker-reroll");

/// Runs the tool in `dir` and waits for it (panics after `limit`).
pub async fn run(dir: &Path, args: &[&str], envs: &[(&str, &str)], limit: Duration) -> Finished {
    spawn(dir, args, envs).finish(limit).await
}

/// A tool run in progress.
pub struct Running {
    child: tokio::process::Child,
    pub pid: i32,
    started: Instant,
}

/// Starts the tool in `dir`, in its own process group, as a terminal would start a foreground
/// job: so a "Ctrl-C" reaches it and every `docker` it runs, as in real life.
pub fn spawn(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Running {
    let mut cmd = command(BINARY, args, dir, envs);
    cmd.process_group(0);
    let child = cmd.spawn().expect("cannot start docker-reroll");
    let pid = child.id().expect("no pid") as i32;
    Running {
        child,
        pid,
        started: Instant::now(),
    }
}

impl Running {
    /// A signal to the tool's whole process group, as a terminal sends it: `INT` for Ctrl-C, `HUP`
    /// when it hangs up.
    pub fn signal_group(&self, signal: &str) {
        cmd::send_signal(-self.pid, signal);
    }

    /// A crash: SIGKILL to the tool alone; whatever it started is left running.
    pub fn kill_hard(&self) {
        cmd::send_signal(self.pid, "KILL");
    }

    /// Whether the tool has already exited, and how.
    #[allow(dead_code)] // tests/canary.rs
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// For a failing test's message: ends the tool (if it still runs) and returns what it printed.
    #[allow(dead_code)] // tests/canary.rs
    pub async fn end_and_tell(&mut self) -> String {
        use tokio::io::AsyncReadExt;
        let _ = self.child.start_kill();
        let status = self.child.wait().await;
        let mut stderr = String::new();
        if let Some(mut pipe) = self.child.stderr.take() {
            let _ = pipe.read_to_string(&mut stderr).await;
        }
        format!("docker-reroll ended with {status:?}; its stderr:\n{stderr}")
    }

    pub async fn finish(self, limit: Duration) -> Finished {
        cmd::wait(self.child, self.started, limit, "docker-reroll").await
    }
}

/// After [`Running::kill_hard`]: ends what the dead tool left running in its process group (a
/// `docker events` it was reading, say), so that the test leaves no processes behind.
pub fn kill_process_group(pid: i32) {
    let _ = std::process::Command::new("kill")
        .args(["-KILL", "--", &(-pid).to_string()])
        .stderr(std::process::Stdio::null())
        .status();
}

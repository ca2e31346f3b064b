//! One example deployment under test: a copy of `examples/<name>` in a temporary directory, its own
//! Compose project and loopback port, always torn down when dropped, pass or fail.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::Path;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::cmd::{Finished, command, run};
use super::containers::{self, Container};
use super::http;
use super::preflight::{project_name, repo_root};
use super::report;

/// The service every example rolls.
pub const APP: &str = "app";

pub struct Scenario {
    pub project: String,
    pub port: u16,
    port_text: String,
    /// Dropped after `Drop::drop` has taken the project down.
    dir: TempDir,
}

impl Scenario {
    /// Copies `examples/<example>` and gives it a project name and a free port (in `.env`, so
    /// that plain `docker compose` in the directory finds them too). Starts nothing.
    pub fn new(example: &str, name: &str) -> Scenario {
        let dir = tempfile::Builder::new()
            .prefix(&format!("reroll-e2e-{name}-"))
            .tempdir()
            .expect("cannot create a temporary directory");
        copy_dir(&repo_root().join("examples").join(example), dir.path());
        let project = project_name(name);
        let port = free_port();
        std::fs::write(
            dir.path().join(".env"),
            format!("COMPOSE_PROJECT_NAME={project}\nPORT={port}\n"),
        )
        .expect("cannot write .env");
        Scenario {
            project,
            port,
            port_text: port.to_string(),
            dir,
        }
    }

    /// Starts the example with `replicas` containers of the app (version a) and waits until the
    /// proxy serves them.
    pub async fn start(example: &str, name: &str, replicas: usize) -> Scenario {
        let scenario = Scenario::new(example, name);
        scenario.up(replicas).await;
        scenario
    }

    /// Starts the deployment as the directory has it now (an override included) with `replicas`
    /// containers of the app (version a), and waits until the proxy serves them.
    pub async fn up(&self, replicas: usize) {
        let scale = format!("{APP}={replicas}");
        self.compose_ok(&["up", "--detach", "--wait", "--scale", &scale], &[])
            .await;
        self.wait_until_served().await;
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Where the proxy listens.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// The environment the tool runs with: the Compose variables a user would have set.
    pub fn env(&self) -> Vec<(&str, &str)> {
        vec![
            ("COMPOSE_PROJECT_NAME", self.project.as_str()),
            ("PORT", self.port_text.as_str()),
        ]
    }

    /// `docker compose -p PROJECT ARGS…` in the scenario's directory.
    pub async fn compose(&self, args: &[&str], envs: &[(&str, &str)]) -> Finished {
        let mut all = vec!["compose", "--project-name", &self.project];
        all.extend(args);
        let mut env = self.env();
        env.extend(envs);
        run(
            command("docker", &all, self.dir(), &env),
            Duration::from_secs(180),
        )
        .await
    }

    pub async fn compose_ok(&self, args: &[&str], envs: &[(&str, &str)]) -> Finished {
        let finished = self.compose(args, envs).await;
        assert!(
            finished.success(),
            "docker compose {} failed: {}",
            args.join(" "),
            finished.transcript()
        );
        finished
    }

    /// Every container of the app service, all states.
    pub async fn app_containers(&self) -> Vec<Container> {
        containers::list(&self.project, APP).await
    }

    /// The last lines the proxy logged (the HAProxy example logs failed requests), to explain
    /// failures.
    pub async fn proxy_logs(&self) -> String {
        let logs = self
            .compose(&["logs", "--no-color", "--timestamps", "--tail", "40"], &[])
            .await;
        format!("{}{}", logs.stdout, logs.stderr)
    }

    /// Adds `compose.override.yaml`, which Compose merges into `compose.yaml`: how a test makes a
    /// broken release without touching the example.
    pub fn write_override(&self, yaml: &str) {
        std::fs::write(self.dir().join("compose.override.yaml"), yaml)
            .expect("cannot write compose.override.yaml");
    }

    /// Waits until the proxy has answered 200 to 10 requests in a row.
    pub async fn wait_until_served(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut in_a_row = 0;
        let mut last = String::new();
        while in_a_row < 10 {
            assert!(
                Instant::now() < deadline,
                "the proxy of {} does not serve: {last}",
                self.project
            );
            let attempt =
                tokio::time::timeout(Duration::from_secs(1), http::get_once(self.addr())).await;
            match attempt {
                Ok(Ok(response)) if response.status == 200 => in_a_row += 1,
                other => {
                    in_a_row = 0;
                    last = match other {
                        Ok(Ok(response)) => format!("status {}", response.status),
                        Ok(Err(e)) => e.to_string(),
                        Err(_) => "timeout".into(),
                    };
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }
}

impl Drop for Scenario {
    fn drop(&mut self) {
        // Synchronous on purpose: it must run even while a failed test unwinds.
        let status = std::process::Command::new("timeout")
            .args(["120", "docker", "compose", "--project-name", &self.project])
            .args(["down", "--volumes", "--remove-orphans", "--timeout", "1"])
            .current_dir(self.dir())
            .envs(super::engine::env())
            .envs(self.env())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
        if !matches!(status, Ok(s) if s.success()) {
            report(&format!(
                "WARNING: tearing down {} failed: {status:?}",
                self.project
            ));
        }
        // The tag a second rollout pins for `docker reroll rollback` (only the tag goes: the
        // image keeps its own).
        let _ = std::process::Command::new("docker")
            .args(["image", "rm", "--no-prune"])
            .arg(format!("docker-reroll-pin/{}-{APP}:previous", self.project))
            .envs(super::engine::env())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
        // Compose v2 leaves the networks podman-compose made.
        if super::engine::is_podman() {
            let _ = std::process::Command::new("timeout")
                .args(["60", "podman", "network", "rm", "--force"])
                .arg(format!("{}_default", self.project))
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("cannot bind a free port");
    listener.local_addr().expect("no local address").port()
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap_or_else(|e| panic!("{}: {e}", from.display())) {
        let entry = entry.expect("cannot read directory entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("no file type").is_dir() {
            std::fs::create_dir_all(&target).expect("cannot create directory");
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("cannot copy file");
        }
    }
}

//! Docker's own record of what happened to a service's containers: one `docker events` stream
//! per scenario, kept with the engine's timestamps (`timeNano`, on the same Unix clock as the
//! tool's `time_ms` and the load's answers).

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub const HEALTHY: &str = "health_status: healthy";
pub const UNHEALTHY: &str = "health_status: unhealthy";

#[derive(Clone, Debug)]
pub struct EngineEvent {
    pub id: String,
    /// Docker's action: `create`, `start`, `health_status: healthy`, `exec_start: touch /.dead`…
    pub action: String,
    pub at_ms: f64,
}

pub struct Events {
    seen: Arc<Mutex<Vec<EngineEvent>>>,
    _stream: Child,
}

impl Events {
    /// Subscribes to the events of `service` in `project`. Health checks' own execs are left out,
    /// other execs (the pre-stop command) are kept.
    pub async fn watch(project: &str, service: &str) -> Events {
        let mut stream = Command::new("docker")
            .args([
                "events",
                "--format",
                "{{json .}}",
                "--filter",
                "type=container",
            ])
            .arg("--filter")
            .arg(format!("label=com.docker.compose.project={project}"))
            .arg("--filter")
            .arg(format!("label=com.docker.compose.service={service}"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("cannot start docker events");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut lines = BufReader::new(stream.stdout.take().expect("piped")).lines();
        let sink = seen.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(event) = parse(&line) {
                    sink.lock().expect("poisoned").push(event);
                }
            }
        });
        // The daemon subscribes asynchronously: give it a moment before anything is measured.
        tokio::time::sleep(Duration::from_millis(500)).await;
        Events {
            seen,
            _stream: stream,
        }
    }

    pub fn since(&self, from_ms: f64) -> Vec<EngineEvent> {
        let seen = self.seen.lock().expect("poisoned");
        seen.iter()
            .filter(|e| e.at_ms >= from_ms)
            .cloned()
            .collect()
    }

    /// The time of the first `action` of each of `ids` since `from_ms`, once every one of them
    /// has had it; `None` after `limit`.
    pub async fn first_of_each(
        &self,
        ids: &[String],
        action: &str,
        from_ms: f64,
        limit: Duration,
    ) -> Option<Vec<f64>> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(times) = first_of_each(&self.since(from_ms), ids, action) {
                return Some(times);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The first `action` of each of `ids` in `events`, if all of them have one.
pub fn first_of_each(events: &[EngineEvent], ids: &[String], action: &str) -> Option<Vec<f64>> {
    ids.iter()
        .map(|id| {
            events
                .iter()
                .find(|e| &e.id == id && e.action == action)
                .map(|e| e.at_ms)
        })
        .collect()
}

fn parse(line: &str) -> Option<EngineEvent> {
    let value: Value = serde_json::from_str(line).ok()?;
    let action = value["Action"]
        .as_str()
        .or(value["status"].as_str())?
        .to_owned();
    if action.starts_with("exec_") && action.contains("/cgi-bin/health") || action == "exec_die" {
        return None;
    }
    Some(EngineEvent {
        id: value["id"]
            .as_str()
            .or(value["Actor"]["ID"].as_str())?
            .to_owned(),
        action,
        at_ms: value["timeNano"].as_i64()? as f64 / 1e6,
    })
}

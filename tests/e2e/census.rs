//! How many containers of one service run, and exist, at the same moment during a rollout:
//! followed through Docker's own events (`create`, `start`, `die`, `destroy`), so that an overlap
//! too short for any poll is still counted.

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Child;
use tokio::task::JoinHandle;

use super::cmd::command;
use super::containers;

/// The lifecycle events counted; health checks' execs and the rest are filtered out by the engine.
const ACTIONS: [&str; 4] = ["create", "start", "die", "destroy"];

/// A census in progress: a `docker events` stream and the task that counts what it prints.
pub struct Census {
    stream: Child,
    counter: JoinHandle<Headcount>,
}

/// What a census saw.
#[derive(Debug, Default)]
pub struct Headcount {
    /// The most containers running at once (between `start` and `die`), the seed included.
    pub max_running: usize,
    /// The most containers existing at once (between `create` and `destroy`), in any state.
    pub max_existing: usize,
    /// How many ran and existed when the census started.
    seed: (usize, usize),
    /// Every counted event, in the engine's order.
    pub events: Vec<Event>,
    running: BTreeSet<String>,
    existing: BTreeSet<String>,
}

/// One lifecycle event and the counts right after it.
#[derive(Debug)]
pub struct Event {
    pub action: String,
    pub id: String,
    pub running: usize,
    pub existing: usize,
}

impl Census {
    /// Starts counting the containers of `service` in `project`: seeded with those there are now,
    /// then following their events. Start it while nothing changes (before the rollout): the
    /// stream replays the events since just before the seed, so none is lost while it subscribes,
    /// and counting containers as sets of ids makes that replay harmless.
    pub async fn start(project: &str, service: &str) -> Census {
        let since = unix_now();
        let mut headcount = Headcount::default();
        for container in containers::list(project, service).await {
            if container.state == "running" {
                headcount.running.insert(container.id.clone());
            }
            headcount.existing.insert(container.id);
        }
        headcount.seed = (headcount.running.len(), headcount.existing.len());
        headcount.note_maxima();

        let mut args = vec![
            "events".to_owned(),
            "--format".into(),
            "{{json .}}".into(),
            "--since".into(),
            since,
            "--filter".into(),
            "type=container".into(),
            "--filter".into(),
            format!("label=com.docker.compose.project={project}"),
            "--filter".into(),
            format!("label=com.docker.compose.service={service}"),
        ];
        for action in ACTIONS {
            args.extend(["--filter".into(), format!("event={action}")]);
        }
        let mut stream = command("docker", &args, Path::new("/"), &[])
            .spawn()
            .expect("cannot start docker events");
        let stdout = stream.stdout.take().expect("docker events: no stdout pipe");
        let counter = tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Some(line) = lines.next_line().await.expect("reading docker events") {
                headcount.record(&line);
            }
            headcount
        });
        Census { stream, counter }
    }

    /// Ends the stream and returns the counts. Call it once the rollout has settled: the engine
    /// reports an event within milliseconds.
    pub async fn stop(mut self) -> Headcount {
        if let Ok(Some(status)) = self.stream.try_wait() {
            let mut stderr = String::new();
            if let Some(mut pipe) = self.stream.stderr.take() {
                let _ = pipe.read_to_string(&mut stderr).await;
            }
            panic!(
                "docker events ended by itself ({status}), so the census is incomplete: {stderr}"
            );
        }
        let _ = self.stream.start_kill();
        let _ = self.stream.wait().await;
        // The stream's end closes the pipe: the counter reads what is left in it, then returns.
        self.counter.await.expect("the census panicked")
    }
}

impl Headcount {
    /// The containers that had `action` during the census.
    pub fn ids(&self, action: &str) -> BTreeSet<&str> {
        self.events
            .iter()
            .filter(|e| e.action == action)
            .map(|e| e.id.as_str())
            .collect()
    }

    /// One line per event with the counts after it, short ids: for assertion messages.
    pub fn timeline(&self) -> String {
        let (running, existing) = self.seed;
        let mut lines = vec![format!(
            "  at the start: {running} running, {existing} existing"
        )];
        lines.extend(self.events.iter().map(|e| {
            format!(
                "  {:<7} {:.12} -> {} running, {} existing",
                e.action, e.id, e.running, e.existing
            )
        }));
        lines.join("\n")
    }

    /// Asserts that never more than `n` containers ran at once, for the reason `why`.
    pub fn assert_at_most_running(&self, n: usize, why: &str) {
        assert!(
            self.max_running <= n,
            "{why}: at most {n} containers may run at once, {} did\n{}",
            self.max_running,
            self.timeline()
        );
    }

    fn record(&mut self, line: &str) {
        let event: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("docker events printed {line:?}, not JSON: {e}"));
        let (Some(action), Some(id)) = (event["Action"].as_str(), event["Actor"]["ID"].as_str())
        else {
            panic!("docker events printed an event without Action or Actor.ID: {line}");
        };
        let id = id.to_owned();
        match action {
            "create" => {
                self.existing.insert(id.clone());
            }
            "start" => {
                self.existing.insert(id.clone());
                self.running.insert(id.clone());
            }
            "die" => {
                self.running.remove(&id);
            }
            "destroy" => {
                self.running.remove(&id);
                self.existing.remove(&id);
            }
            other => panic!("docker events printed {other:?}, which the census did not ask for"),
        }
        self.note_maxima();
        self.events.push(Event {
            action: action.to_owned(),
            id,
            running: self.running.len(),
            existing: self.existing.len(),
        });
    }

    fn note_maxima(&mut self) {
        self.max_running = self.max_running.max(self.running.len());
        self.max_existing = self.max_existing.max(self.existing.len());
    }
}

impl fmt::Display for Headcount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "at most {} running and {} existing at once; {} created, {} started, {} died, {} removed",
            self.max_running,
            self.max_existing,
            self.ids("create").len(),
            self.ids("start").len(),
            self.ids("die").len(),
            self.ids("destroy").len()
        )
    }
}

/// Now, as `docker events --since` takes it: Unix seconds with nanoseconds.
fn unix_now() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is before 1970");
    format!("{}.{:09}", now.as_secs(), now.subsec_nanos())
}

//! The benchmark's steady load, with the wall-clock time of every answer.
//!
//! The e2e harness's load (`tests/e2e/load.rs`) only counts; the benchmark also needs *when* each
//! version answered (the last answer of the old version, the first of the new one), on the same
//! clock as the tool's `time_ms` and Docker's `timeNano`. This drives the harness's own HTTP client
//! (`tests/e2e/http.rs`) and hands its counts back as the harness's `Tally`, so failures are
//! counted and shown the way the e2e tests do.

use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{MissedTickBehavior, interval, timeout};

use crate::harness::http::{self, Connection};
use crate::harness::load::Tally;
use crate::unix_ms;

/// Workers that keep their connection, and workers that open one per request.
const KEEP_ALIVE_WORKERS: usize = 4;
const FRESH_WORKERS: usize = 4;
/// 8 workers × 25 requests per second = 200 requests per second.
pub const RATE_PER_WORKER: u32 = 25;
pub const WORKERS: usize = KEEP_ALIVE_WORKERS + FRESH_WORKERS;
/// Slower than this is a failed request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(1);
/// How many failures a `Tally` describes.
const DESCRIBED: usize = 10;

/// One answer (or failure) and when it came, in Unix milliseconds.
pub struct Answer {
    pub at_ms: f64,
    pub keep_alive: bool,
    /// The body (the version that answered), or what went wrong.
    pub result: Result<String, String>,
}

pub struct Timeline {
    stop: watch::Sender<bool>,
    workers: Vec<JoinHandle<Vec<Answer>>>,
    started: Instant,
    started_ms: f64,
}

/// Everything the load saw, in time order.
pub struct Recording {
    pub answers: Vec<Answer>,
    pub started_ms: f64,
    pub duration: Duration,
}

impl Timeline {
    /// Starts the load; it stops by itself after `limit` at the latest.
    pub fn start(addr: std::net::SocketAddr, limit: Duration) -> Timeline {
        let (stop, stopped) = watch::channel(false);
        let started = Instant::now();
        let workers = (0..WORKERS)
            .map(|i| {
                let keep_alive = i < KEEP_ALIVE_WORKERS;
                tokio::spawn(worker(addr, keep_alive, started + limit, stopped.clone()))
            })
            .collect();
        Timeline {
            stop,
            workers,
            started,
            started_ms: unix_ms(),
        }
    }

    pub async fn stop(self) -> Recording {
        let _ = self.stop.send(true);
        let mut answers = Vec::new();
        for worker in self.workers {
            answers.extend(worker.await.expect("load worker panicked"));
        }
        answers.sort_by(|a, b| a.at_ms.total_cmp(&b.at_ms));
        Recording {
            answers,
            started_ms: self.started_ms,
            duration: self.started.elapsed(),
        }
    }
}

impl Recording {
    pub fn failed(&self) -> usize {
        self.answers.iter().filter(|a| a.result.is_err()).count()
    }

    fn answered_by<'a>(&'a self, version: &'a str) -> impl Iterator<Item = f64> + 'a {
        self.answers
            .iter()
            .filter(move |a| a.result.as_deref() == Ok(version))
            .map(|a| a.at_ms)
    }

    pub fn last_answer(&self, version: &str) -> Option<f64> {
        self.answered_by(version).last()
    }

    pub fn first_answer(&self, version: &str) -> Option<f64> {
        self.answered_by(version).next()
    }

    /// The counts, as the e2e harness reports them.
    pub fn tally(&self) -> Tally {
        let mut tally = Tally {
            total: self.answers.len() as u64,
            duration: self.duration,
            ..Tally::default()
        };
        for answer in &self.answers {
            match &answer.result {
                Ok(version) => *tally.versions.entry(version.clone()).or_default() += 1,
                Err(what) => {
                    tally.failed += 1;
                    if tally.failures.len() < DESCRIBED {
                        let kind = if answer.keep_alive {
                            "keep-alive"
                        } else {
                            "fresh"
                        };
                        let at = (answer.at_ms - self.started_ms) / 1000.0;
                        tally.failures.push(format!("{at:.3}s {kind}: {what}"));
                    }
                }
            }
        }
        tally
    }
}

async fn worker(
    addr: std::net::SocketAddr,
    keep_alive: bool,
    deadline: Instant,
    mut stopped: watch::Receiver<bool>,
) -> Vec<Answer> {
    let mut answers = Vec::new();
    let mut kept: Option<Connection> = None;
    let mut ticks = interval(Duration::from_secs(1) / RATE_PER_WORKER);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    while Instant::now() < deadline && !*stopped.borrow() {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stopped.changed() => break,
        }
        let result = match timeout(REQUEST_TIMEOUT, ask(addr, keep_alive, &mut kept)).await {
            Ok(Ok(response)) if response.status == 200 => {
                Ok(String::from_utf8_lossy(&response.body).trim().to_owned())
            }
            Ok(Ok(response)) => Err(format!("status {}", response.status)),
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err(format!("no answer within {REQUEST_TIMEOUT:?}")),
        };
        if result.is_err() {
            kept = None;
        }
        answers.push(Answer {
            at_ms: unix_ms(),
            keep_alive,
            result,
        });
    }
    answers
}

/// `GET /` on the kept connection, or on a new one; keeps it only while the server does.
async fn ask(
    addr: std::net::SocketAddr,
    keep_alive: bool,
    kept: &mut Option<Connection>,
) -> std::io::Result<http::Response> {
    if kept.is_none() {
        *kept = Some(http::connect(addr).await?);
    }
    let conn = kept.as_mut().expect("connected above");
    let response = http::get(conn, keep_alive).await;
    if !matches!(&response, Ok(r) if keep_alive && !r.closes) {
        *kept = None;
    }
    response
}

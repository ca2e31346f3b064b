//! A steady load through the proxy, counting every failed request: any connect or I/O error, any
//! status but 200, any request slower than the timeout (the definition in the field notes).

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{MissedTickBehavior, interval, timeout};

use super::http::{self, Connection};

/// Connections that keep one TCP connection for many requests (reconnecting when it breaks).
const KEEP_ALIVE_WORKERS: usize = 4;
/// Connections that open a new TCP connection for every request.
const FRESH_WORKERS: usize = 4;
/// Requests per second of each worker: 8 × 40 = 320 requests per second in all.
const RATE_PER_WORKER: u32 = 40;
/// A response slower than this is a failure.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(1);
/// How many failures to describe; the rest are only counted.
const FAILURES_KEPT: usize = 20;

/// A running load; it stops when told or after its maximum duration.
pub struct Load {
    stop: watch::Sender<bool>,
    workers: Vec<JoinHandle<Tally>>,
    started: Instant,
}

/// What the load saw.
#[derive(Debug, Default)]
pub struct Tally {
    pub total: u64,
    pub failed: u64,
    /// The first failures: seconds since the load started, connection kind, what went wrong.
    pub failures: Vec<String>,
    /// Successful responses by body (the version that answered).
    pub versions: BTreeMap<String, u64>,
    /// Every failure counted by what went wrong (a status and body, or an error kind).
    pub failure_kinds: BTreeMap<String, u64>,
    pub duration: Duration,
}

impl Load {
    /// Starts loading `addr`; it stops by itself after `max_duration`.
    pub fn start(addr: SocketAddr, max_duration: Duration) -> Load {
        let (stop, stopped) = watch::channel(false);
        let started = Instant::now();
        let deadline = started + max_duration;
        let workers = (0..KEEP_ALIVE_WORKERS + FRESH_WORKERS)
            .map(|i| {
                let keep_alive = i < KEEP_ALIVE_WORKERS;
                tokio::spawn(worker(addr, keep_alive, started, deadline, stopped.clone()))
            })
            .collect();
        Load {
            stop,
            workers,
            started,
        }
    }

    /// Stops the load and adds up what every worker saw.
    pub async fn stop(self) -> Tally {
        let _ = self.stop.send(true);
        let mut sum = Tally::default();
        for worker in self.workers {
            let tally = worker.await.expect("load worker panicked");
            sum.total += tally.total;
            sum.failed += tally.failed;
            sum.failures.extend(tally.failures);
            for (version, count) in tally.versions {
                *sum.versions.entry(version).or_default() += count;
            }
            for (kind, count) in tally.failure_kinds {
                *sum.failure_kinds.entry(kind).or_default() += count;
            }
        }
        sum.failures.sort_by(|a, b| {
            let at = |s: &str| s.split('s').next().and_then(|t| t.parse::<f64>().ok());
            at(a)
                .partial_cmp(&at(b))
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        sum.failures.truncate(FAILURES_KEPT);
        sum.duration = self.started.elapsed();
        sum
    }
}

impl Tally {
    /// Requests per second over the whole run.
    pub fn rate(&self) -> f64 {
        self.total as f64 / self.duration.as_secs_f64().max(0.001)
    }

    pub fn answered(&self, version: &str) -> u64 {
        self.versions.get(version).copied().unwrap_or(0)
    }
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} requests in {:.1}s ({:.0}/s), {} failed, versions {:?}",
            self.total,
            self.duration.as_secs_f64(),
            self.rate(),
            self.failed,
            self.versions
        )?;
        for failure in &self.failures {
            write!(f, "\n  {failure}")?;
        }
        Ok(())
    }
}

async fn worker(
    addr: SocketAddr,
    keep_alive: bool,
    started: Instant,
    deadline: Instant,
    mut stopped: watch::Receiver<bool>,
) -> Tally {
    let kind = if keep_alive { "keep-alive" } else { "fresh" };
    let mut tally = Tally::default();
    let mut conn: Option<Connection> = None;
    let mut ticks = interval(Duration::from_secs(1) / RATE_PER_WORKER);
    // After a slow request, go on at the normal pace instead of bursting to catch up.
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stopped.changed() => break,
        }
        if *stopped.borrow() || Instant::now() >= deadline {
            break;
        }
        let sent_at = started.elapsed();
        let outcome = timeout(REQUEST_TIMEOUT, request(addr, keep_alive, &mut conn)).await;
        tally.total += 1;
        let failure = match outcome {
            Ok(Ok(response)) if response.status == 200 => {
                let version = String::from_utf8_lossy(&response.body).trim().to_owned();
                *tally.versions.entry(version).or_default() += 1;
                None
            }
            Ok(Ok(response)) => Some(format!(
                "status {}: {}",
                response.status,
                summary(&response.body)
            )),
            Ok(Err(e)) => Some(format!("{}: {e}", e.kind())),
            Err(_) => Some(format!("no response within {REQUEST_TIMEOUT:?}")),
        };
        if let Some(what) = failure {
            // The connection is in an unknown state: start the next request on a new one.
            conn = None;
            tally.failed += 1;
            *tally.failure_kinds.entry(what.clone()).or_default() += 1;
            if tally.failures.len() < FAILURES_KEPT {
                tally
                    .failures
                    .push(format!("{:.3}s {kind}: {what}", sent_at.as_secs_f64()));
            }
        }
    }
    tally
}

/// One request, on the kept connection if there is one (and keep-alive is on).
async fn request(
    addr: SocketAddr,
    keep_alive: bool,
    kept: &mut Option<Connection>,
) -> std::io::Result<http::Response> {
    let mut conn = match kept.take() {
        Some(conn) => conn,
        None => http::connect(addr).await?,
    };
    let response = http::get(&mut conn, keep_alive).await?;
    if keep_alive && !response.closes {
        *kept = Some(conn);
    }
    Ok(response)
}

/// The start of a body on one line: enough to tell a proxy's error page from the app.
fn summary(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let words: Vec<&str> = text.split_whitespace().collect();
    words.join(" ").chars().take(80).collect()
}

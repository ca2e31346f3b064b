//! The `--probe` check: GETs the URL over and over while a rollout runs and counts what failed
//! (no answer, a status outside 2xx/3xx, an answer slower than the latency bound). The machine
//! takes the counts at each tick and judges them; this only counts.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior, interval};

use crate::model::canary::Probe;
use crate::proxy::http::{BaseUrl, get};
use crate::rollout::machine::canary::ProbeCount;

/// One request every this often: 20 a second, enough to judge a step in seconds.
const EVERY: Duration = Duration::from_millis(50);

/// A probe running in the background; it stops when dropped.
pub struct ProbeRunner {
    counts: Arc<Mutex<ProbeCount>>,
    task: JoinHandle<()>,
}

/// The URL split as the HTTP client wants it; checked when the settings are read.
pub fn target(url: &str) -> Result<(BaseUrl, &'static str), String> {
    let base = BaseUrl::parse(url).map_err(|e| format!("--probe: {e}"))?;
    let rest = url.trim_start_matches("http://");
    let path = if rest.trim_end_matches('/').contains('/') {
        ""
    } else {
        "/"
    };
    Ok((base, path))
}

impl ProbeRunner {
    pub fn start(probe: &Probe) -> Result<ProbeRunner, String> {
        let (base, path) = target(&probe.url)?;
        let counts = Arc::new(Mutex::new(ProbeCount::default()));
        let shared = counts.clone();
        let bound = probe.max_latency;
        let task = tokio::spawn(async move {
            let mut ticks = interval(EVERY);
            ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let started = Instant::now();
                let result = get(&base, path).await;
                let took = started.elapsed();
                let mut counts = shared.lock().expect("probe counts");
                counts.requests += 1;
                let error = match result {
                    Ok(response) if (200..400).contains(&response.status) => None,
                    Ok(response) => Some(format!("HTTP {}", response.status)),
                    Err(why) => Some(why),
                };
                match error {
                    Some(why) => {
                        counts.errors += 1;
                        counts.first_error.get_or_insert(why);
                    }
                    None if bound.is_some_and(|bound| took > bound) => counts.slow += 1,
                    None => {}
                }
            }
        });
        Ok(ProbeRunner { counts, task })
    }

    /// What the probe saw since the last call.
    pub fn take(&self) -> ProbeCount {
        std::mem::take(&mut *self.counts.lock().expect("probe counts"))
    }
}

impl Drop for ProbeRunner {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn a_bare_host_is_probed_at_the_root() {
        assert_eq!(target("http://127.0.0.1:8080").unwrap().1, "/");
        assert_eq!(target("http://127.0.0.1:8080/").unwrap().1, "/");
        assert_eq!(target("http://127.0.0.1:8080/health").unwrap().1, "");
        assert!(target("https://x").unwrap_err().contains("--probe"));
    }

    /// A server that answers every other request with 500: the probe counts both kinds.
    #[tokio::test]
    async fn counts_errors_from_a_real_socket() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let mut served = 0u32;
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                let mut buffer = [0u8; 1024];
                let _ = socket.read(&mut buffer).await;
                served += 1;
                let answer: &[u8] = if served.is_multiple_of(2) {
                    b"HTTP/1.0 500 Internal Server Error\r\n\r\nno"
                } else {
                    b"HTTP/1.0 200 OK\r\n\r\nyes"
                };
                let _ = socket.write_all(answer).await;
            }
        });
        let runner = ProbeRunner::start(&Probe {
            url: format!("http://127.0.0.1:{port}/"),
            max_error_rate: 0.0,
            max_latency: None,
        })
        .unwrap();
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let counts = runner.take();
        assert!(counts.requests >= 4, "{counts:?}");
        assert!(
            counts.errors >= counts.requests / 2 - 1 && counts.errors <= counts.requests / 2 + 1,
            "{counts:?}"
        );
        assert_eq!(counts.first_error.as_deref(), Some("HTTP 500"));
        assert_eq!(runner.take().requests, 0, "taken counts start again");
    }
}

//! Who holds a project's lock on the engine, as its labels say, and whether that holder is gone.
//! Labels are written once, when the lock is created; the lease's refreshes live in a file inside
//! the lock container (written by the engine lock), read here as a timestamp.

use std::collections::BTreeMap;
use std::time::Duration;

/// The label that marks a lock container, its value the project.
pub const LOCK_LABEL: &str = "io.docker-reroll.lock";
const HOST: &str = "io.docker-reroll.lock.host";
const PID: &str = "io.docker-reroll.lock.pid";
const PID_START: &str = "io.docker-reroll.lock.pid-start";
const STARTED: &str = "io.docker-reroll.lock.started";
const RUN_ID: &str = "io.docker-reroll.lock.run-id";
const LEASE: &str = "io.docker-reroll.lock.lease-seconds";

/// The identity of a run that holds (or wants) a lock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    pub host: String,
    pub pid: u32,
    /// The process's start time in clock ticks since boot (`/proc/PID/stat` field 22), so that a
    /// reused pid is not mistaken for the holder; 0 when unknown.
    pub pid_start: u64,
    /// Unix seconds when it took the lock.
    pub started: u64,
    pub run_id: String,
    /// How long the lock holds after its last refresh.
    pub lease: Duration,
}

/// What a look at a held lock concluded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Its holder may still be at work: wait or refuse.
    Held,
    /// Its holder is gone; the reason says how that was recognised.
    Stale(String),
}

impl Holder {
    pub fn labels(&self, project: &str) -> Vec<(&'static str, String)> {
        vec![
            (LOCK_LABEL, project.to_owned()),
            (HOST, self.host.clone()),
            (PID, self.pid.to_string()),
            (PID_START, self.pid_start.to_string()),
            (STARTED, self.started.to_string()),
            (RUN_ID, self.run_id.clone()),
            (LEASE, self.lease.as_secs().to_string()),
        ]
    }

    /// Reads a holder back from a lock container's labels; `None` when they are not a lock's.
    pub fn from_labels(labels: &BTreeMap<String, String>) -> Option<Holder> {
        let get = |key: &str| labels.get(key).map(String::as_str);
        let number = |key: &str| get(key)?.parse::<u64>().ok();
        Some(Holder {
            host: get(HOST)?.to_owned(),
            pid: get(PID)?.parse().ok()?,
            pid_start: number(PID_START).unwrap_or(0),
            started: number(STARTED)?,
            run_id: get(RUN_ID)?.to_owned(),
            lease: Duration::from_secs(number(LEASE)?),
        })
    }

    /// `pid 123 on host ci-2, since 14:02:07 UTC (run 7f3a…)`
    pub fn describe(&self) -> String {
        let seconds = self.started % 86_400;
        format!(
            "pid {} on host {}, since {:02}:{:02}:{:02} UTC, run {}",
            self.pid,
            self.host,
            seconds / 3600,
            seconds / 60 % 60,
            seconds % 60,
            self.run_id
        )
    }

    /// Is this holder gone? `local_host` is the host this run is on; `alive(pid, pid_start)` says
    /// whether that process still runs here; `refreshed` is the lease's last refresh (unix
    /// seconds), if it was ever refreshed; `now` is unix seconds.
    pub fn verdict(
        &self,
        local_host: &str,
        alive: impl Fn(u32, u64) -> bool,
        refreshed: Option<u64>,
        now: u64,
    ) -> Verdict {
        if self.host == local_host && !alive(self.pid, self.pid_start) {
            return Verdict::Stale(format!(
                "its holder, pid {} on this host ({}), is no longer running",
                self.pid, self.host
            ));
        }
        let last = refreshed.unwrap_or(self.started).max(self.started);
        let expires = last + self.lease.as_secs();
        if now > expires {
            return Verdict::Stale(format!(
                "its lease of {}s ran out {}s ago: its holder ({}) last refreshed it {}s ago",
                self.lease.as_secs(),
                now - expires,
                self.describe(),
                now - last
            ));
        }
        Verdict::Held
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder() -> Holder {
        Holder {
            host: "ci-1".into(),
            pid: 4242,
            pid_start: 99,
            started: 1_000,
            run_id: "abc".into(),
            lease: Duration::from_secs(30),
        }
    }

    #[test]
    fn labels_read_back_to_the_same_holder() {
        let labels: BTreeMap<String, String> = holder()
            .labels("shop")
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        assert_eq!(labels[LOCK_LABEL], "shop");
        assert_eq!(Holder::from_labels(&labels), Some(holder()));
        let mut foreign = labels.clone();
        foreign.remove(PID);
        assert_eq!(Holder::from_labels(&foreign), None);
    }

    #[test]
    fn a_dead_pid_on_this_host_is_stale_at_once() {
        let verdict = holder().verdict("ci-1", |_, _| false, None, 1_001);
        let Verdict::Stale(why) = verdict else {
            panic!("{verdict:?}")
        };
        assert!(why.contains("pid 4242 on this host (ci-1)"), "{why}");
        assert_eq!(
            holder().verdict("ci-1", |_, _| true, None, 1_001),
            Verdict::Held
        );
    }

    #[test]
    fn another_hosts_holder_is_judged_by_its_lease_alone() {
        // Its pid means nothing here.
        assert_eq!(
            holder().verdict("ci-2", |_, _| false, None, 1_030),
            Verdict::Held
        );
        assert_eq!(
            holder().verdict("ci-2", |_, _| false, Some(1_100), 1_120),
            Verdict::Held
        );
        let Verdict::Stale(why) = holder().verdict("ci-2", |_, _| true, Some(1_100), 1_140) else {
            panic!()
        };
        assert!(why.contains("lease of 30s ran out 10s ago"), "{why}");
        assert!(why.contains("last refreshed it 40s ago"), "{why}");
    }

    #[test]
    fn describes_the_holder_by_pid_host_time_and_run() {
        let mut holder = holder();
        holder.started = 14 * 3600 + 2 * 60 + 7;
        assert_eq!(
            holder.describe(),
            "pid 4242 on host ci-1, since 14:02:07 UTC, run abc"
        );
    }
}

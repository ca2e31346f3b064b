//! A container as a rollout decides on it: its state, health, healthcheck timing, config hash and
//! where a proxy finds it.

use std::net::IpAddr;
use std::time::Duration;

use super::routing::Target;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
}

impl State {
    pub fn parse(text: &str) -> State {
        match text {
            "created" => State::Created,
            "running" => State::Running,
            "paused" => State::Paused,
            "restarting" => State::Restarting,
            "removing" => State::Removing,
            "exited" => State::Exited,
            _ => State::Dead,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            State::Created => "created",
            State::Running => "running",
            State::Paused => "paused",
            State::Restarting => "restarting",
            State::Removing => "removing",
            State::Exited => "exited",
            State::Dead => "dead",
        }
    }
}

/// `.State.Health.Status`, compared as an enum: "unhealthy" contains "healthy".
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// The container has no healthcheck.
    None,
    Starting,
    Healthy,
    Unhealthy,
}

impl Health {
    pub fn parse(text: &str) -> Health {
        match text {
            "healthy" => Health::Healthy,
            "unhealthy" => Health::Unhealthy,
            "starting" => Health::Starting,
            _ => Health::None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Health::None => "no healthcheck",
            Health::Starting => "starting",
            Health::Healthy => "healthy",
            Health::Unhealthy => "unhealthy",
        }
    }
}

/// The healthcheck timing Docker applies, defaults filled in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Healthcheck {
    pub interval: Duration,
    pub timeout: Duration,
    pub start_period: Duration,
    pub retries: u32,
}

impl Healthcheck {
    /// Docker's defaults for any value left at zero.
    pub fn with_defaults(interval: u64, timeout: u64, start_period: u64, retries: u32) -> Self {
        let or = |nanos: u64, default: Duration| {
            if nanos == 0 {
                default
            } else {
                Duration::from_nanos(nanos)
            }
        };
        Healthcheck {
            interval: or(interval, Duration::from_secs(30)),
            timeout: or(timeout, Duration::from_secs(30)),
            start_period: or(start_period, Duration::ZERO),
            retries: if retries == 0 { 3 } else { retries },
        }
    }

    /// The longest a container can take to turn healthy (or unhealthy) before something is wrong:
    /// the start period, then one check per interval until `retries` consecutive results.
    pub fn patience(&self) -> Duration {
        let per_check = self.interval + self.timeout;
        self.start_period + per_check * (self.retries + 1) + Duration::from_secs(2)
    }

    pub fn describe(&self) -> String {
        format!(
            "start period {}, interval {}, timeout {}, retries {}",
            humantime::format_duration(self.start_period),
            humantime::format_duration(self.interval),
            humantime::format_duration(self.timeout),
            self.retries
        )
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Container {
    pub id: String,
    pub name: String,
    pub number: u32,
    pub state: State,
    pub exit_code: i64,
    pub health: Health,
    pub config_hash: String,
    pub image: String,
    pub created: String,
    pub healthcheck: Option<Healthcheck>,
    /// The outputs of the most recent health checks (up to three, oldest first, joined by ` | `),
    /// for failure reports.
    pub last_check_output: Option<String>,
    /// Its IP addresses on the networks it is attached to: how a proxy knows it.
    pub addresses: Vec<IpAddr>,
    /// Its published ports: (container port, where the host listens for it).
    pub published: Vec<(u16, std::net::SocketAddr)>,
}

impl Container {
    pub fn short_id(&self) -> &str {
        crate::template::short_id(&self.id)
    }

    pub fn is_running(&self) -> bool {
        self.state == State::Running
    }

    /// The container as a proxy knows it.
    pub fn target(&self) -> Target {
        Target {
            id: self.id.clone(),
            name: self.name.clone(),
            addresses: self.addresses.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_is_an_enum_not_a_substring() {
        assert_eq!(Health::parse("unhealthy"), Health::Unhealthy);
        assert_eq!(Health::parse("healthy"), Health::Healthy);
        assert_eq!(Health::parse(""), Health::None);
    }

    #[test]
    fn patience_covers_start_period_and_every_retry() {
        let check = Healthcheck::with_defaults(1_000_000_000, 1_000_000_000, 5_000_000_000, 2);
        assert_eq!(check.patience(), Duration::from_secs(5 + 2 * 3 + 2));
        let defaults = Healthcheck::with_defaults(0, 0, 0, 0);
        assert_eq!(defaults.patience(), Duration::from_secs(60 * 4 + 2));
    }
}

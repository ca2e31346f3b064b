//! Reverse-proxy adapters: each asks one kind of proxy which containers it routes to, so that a
//! rollout waits for what the proxy actually does instead of sleeping through its timing.

pub mod command;
pub mod haproxy;
pub mod http;
pub mod responses;
pub mod traefik;

use std::fmt;

use crate::docker::command::ChildEnv;
use crate::model::routing::{Routing, Target};
use crate::template::Template;

/// The kinds of proxy a rollout can ask (`--proxy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProxyKind {
    Traefik,
    Haproxy,
    Command,
}

impl ProxyKind {
    pub const ALL: [ProxyKind; 3] = [ProxyKind::Traefik, ProxyKind::Haproxy, ProxyKind::Command];

    pub fn name(self) -> &'static str {
        match self {
            ProxyKind::Traefik => "traefik",
            ProxyKind::Haproxy => "haproxy",
            ProxyKind::Command => "command",
        }
    }

    pub fn parse(text: &str) -> Option<ProxyKind> {
        Self::ALL.into_iter().find(|kind| kind.name() == text)
    }
}

/// One proxy, ready to be asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Proxy {
    Traefik(traefik::Traefik),
    Haproxy(haproxy::Haproxy),
    Command(command::RoutesCommand),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProxyError {
    /// Nothing answered where the proxy should be.
    Unreachable(String),
    /// The proxy answers but knows no such service or backend (it may list the ones it knows).
    UnknownService { name: String, known: Vec<String> },
    /// The proxy answered something this adapter does not understand.
    Unexpected(String),
}

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProxyError::Unreachable(why) => write!(f, "cannot reach {why}"),
            ProxyError::UnknownService { name, known } if known.is_empty() => {
                write!(f, "the proxy has no service '{name}'")
            }
            ProxyError::UnknownService { name, known } => write!(
                f,
                "the proxy has no service '{name}' (it has: {})",
                known.join(", ")
            ),
            ProxyError::Unexpected(why) => f.write_str(why),
        }
    }
}

/// What names the service in the proxy's terms when the user did not.
pub struct Naming<'a> {
    pub service: &'a str,
    pub project: &'a str,
    /// The service's container labels (Traefik's Docker provider reads its settings there).
    pub labels: &'a std::collections::BTreeMap<String, String>,
}

impl Proxy {
    /// The adapter for `kind`, from settings already checked for presence; errors name the flag.
    pub fn build(
        kind: ProxyKind,
        url: Option<&str>,
        name: Option<&str>,
        cmd: Option<&Template>,
        naming: &Naming,
        env: ChildEnv,
    ) -> Result<Proxy, String> {
        let url = url.unwrap_or_default();
        Ok(match kind {
            ProxyKind::Traefik => {
                let service = match name {
                    Some(name) => traefik::full_service_name(name),
                    None => traefik::service_from_labels(
                        naming.labels,
                        naming.service,
                        naming.project,
                    )
                    .map_err(|names| {
                        format!(
                            "service '{}' defines several Traefik services ({}): pick one with \
                                 --proxy-service (or x-reroll proxy-service)",
                            naming.service,
                            names.join(", ")
                        )
                    })?,
                };
                Proxy::Traefik(traefik::Traefik {
                    api: http::BaseUrl::parse(url).map_err(|e| format!("--proxy-url: {e}"))?,
                    service,
                })
            }
            ProxyKind::Haproxy => Proxy::Haproxy(haproxy::Haproxy {
                socket: haproxy::Socket::parse(url).map_err(|e| format!("--proxy-url: {e}"))?,
                backend: name.unwrap_or(naming.service).to_owned(),
            }),
            ProxyKind::Command => Proxy::Command(command::RoutesCommand {
                template: cmd.cloned().ok_or("--proxy command needs --proxy-cmd")?,
                service: naming.service.to_owned(),
                project: naming.project.to_owned(),
                env,
            }),
        })
    }

    /// What the proxy does with each of `targets` right now.
    pub async fn observe(&self, targets: &[Target]) -> Result<Routing, ProxyError> {
        match self {
            Proxy::Traefik(traefik) => traefik.observe(targets).await,
            Proxy::Haproxy(haproxy) => haproxy.observe(targets).await,
            Proxy::Command(command) => command.observe(targets).await,
        }
    }

    /// What the proxy routes when it has dropped the whole service (Traefik removes a service
    /// without servers): an unknown service then means "routes to none of them".
    pub async fn observe_or_none(&self, targets: &[Target]) -> Result<Routing, ProxyError> {
        match self.observe(targets).await {
            Err(ProxyError::UnknownService { name, .. }) => Ok(Routing {
                routes: Default::default(),
                shown: format!("the proxy has no service '{name}' (no servers left)"),
            }),
            other => other,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Proxy::Traefik(t) => format!("traefik service {}", t.service),
            Proxy::Haproxy(h) => format!("haproxy backend {}", h.backend),
            Proxy::Command(c) => format!("proxy command `{}`", c.template),
        }
    }
}

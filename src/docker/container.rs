//! Containers as `docker inspect` describes them (a stable JSON array across Docker versions),
//! reduced to what a rollout decides on.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Deserialize;

use crate::model::container::{Container, Health, Healthcheck, State};

pub const PROJECT_LABEL: &str = "com.docker.compose.project";
pub const SERVICE_LABEL: &str = "com.docker.compose.service";
pub const ONEOFF_LABEL: &str = "com.docker.compose.oneoff";
pub const CONFIG_HASH_LABEL: &str = "com.docker.compose.config-hash";
/// What podman-compose labels its containers with instead.
pub const PODMAN_COMPOSE_HASH_LABEL: &str = "io.podman.compose.config-hash";
pub const NUMBER_LABEL: &str = "com.docker.compose.container-number";

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Inspected {
    id: String,
    name: String,
    #[serde(default)]
    created: String,
    #[serde(default)]
    image: String,
    state: InspectedState,
    config: InspectedConfig,
    #[serde(default)]
    network_settings: Option<InspectedNetworkSettings>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InspectedNetworkSettings {
    #[serde(default)]
    networks: Option<BTreeMap<String, InspectedNetwork>>,
    #[serde(default)]
    ports: Option<BTreeMap<String, Option<Vec<InspectedBinding>>>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InspectedBinding {
    #[serde(default)]
    host_ip: String,
    #[serde(default)]
    host_port: String,
}

#[derive(Deserialize)]
struct InspectedNetwork {
    #[serde(rename = "IPAddress", default)]
    ip_address: Option<String>,
    #[serde(rename = "GlobalIPv6Address", default)]
    global_ipv6_address: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InspectedState {
    status: String,
    #[serde(default)]
    exit_code: i64,
    health: Option<InspectedHealth>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InspectedHealth {
    status: String,
    #[serde(default)]
    log: Option<Vec<InspectedCheck>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InspectedCheck {
    #[serde(default)]
    output: String,
    /// Absent in some engines' answers: then only the output is shown.
    exit_code: Option<i64>,
}

impl InspectedCheck {
    /// `exit 1: refused`; a check that printed nothing (`wget -q`) still says how it ended.
    fn summary(&self) -> String {
        let output = self.output.trim();
        match (self.exit_code, output.is_empty()) {
            (Some(code), true) => format!("exit {code}"),
            (Some(code), false) => format!("exit {code}: {output}"),
            (None, true) => "no output".to_owned(),
            (None, false) => output.to_owned(),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InspectedConfig {
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
    healthcheck: Option<InspectedHealthcheck>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InspectedHealthcheck {
    #[serde(default)]
    test: Option<Vec<String>>,
    #[serde(default)]
    interval: u64,
    #[serde(default)]
    timeout: u64,
    #[serde(default)]
    start_period: u64,
    #[serde(default)]
    retries: u32,
}

/// Parses the JSON array `docker inspect ID…` prints.
pub fn parse_inspect(json: &str) -> Result<Vec<Container>, serde_json::Error> {
    let inspected: Vec<Inspected> = serde_json::from_str(json)?;
    Ok(inspected.into_iter().map(Container::from).collect())
}

impl From<Inspected> for Container {
    fn from(inspected: Inspected) -> Self {
        let labels = inspected.config.labels.unwrap_or_default();
        let healthcheck = inspected.config.healthcheck.and_then(|check| {
            let test = check.test.unwrap_or_default();
            // ["NONE"] disables an image's healthcheck; an empty test inherits nothing.
            if test.is_empty() || test[0] == "NONE" {
                None
            } else {
                Some(Healthcheck::with_defaults(
                    check.interval,
                    check.timeout,
                    check.start_period,
                    check.retries,
                ))
            }
        });
        let (health, last_check_output) = match inspected.state.health {
            Some(health) => (
                Health::parse(&health.status),
                health.log.filter(|log| !log.is_empty()).map(|log| {
                    let skip = log.len().saturating_sub(3);
                    log.iter()
                        .skip(skip)
                        .map(InspectedCheck::summary)
                        .collect::<Vec<_>>()
                        .join(" | ")
                }),
            ),
            None => (Health::None, None),
        };
        let (networks, ports) = match inspected.network_settings {
            Some(settings) => (settings.networks, settings.ports),
            None => (None, None),
        };
        let published = ports
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(key, bindings)| {
                let port = key.strip_suffix("/tcp")?.parse().ok()?;
                Some(
                    bindings
                        .unwrap_or_default()
                        .into_iter()
                        .filter_map(move |b| {
                            // A port published on every interface is reached on loopback.
                            let ip: IpAddr = match b.host_ip.as_str() {
                                "" | "0.0.0.0" => IpAddr::from([127, 0, 0, 1]),
                                "::" => IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
                                other => other.parse().ok()?,
                            };
                            Some((
                                port,
                                std::net::SocketAddr::new(ip, b.host_port.parse().ok()?),
                            ))
                        }),
                )
            })
            .flatten()
            .collect();
        let addresses = networks
            .unwrap_or_default()
            .into_values()
            .flat_map(|network| [network.ip_address, network.global_ipv6_address])
            .flatten()
            .filter_map(|text| text.parse().ok())
            .collect();
        Container {
            addresses,
            published,
            name: inspected.name.trim_start_matches('/').to_owned(),
            number: labels
                .get(NUMBER_LABEL)
                .and_then(|n| n.parse().ok())
                .unwrap_or(0),
            config_hash: labels
                .get(CONFIG_HASH_LABEL)
                // podman-compose's own (the engine module).
                .or_else(|| labels.get(PODMAN_COMPOSE_HASH_LABEL))
                .cloned()
                .unwrap_or_default(),
            state: State::parse(&inspected.state.status),
            exit_code: inspected.state.exit_code,
            health,
            image: inspected.image,
            created: inspected.created,
            healthcheck,
            last_check_output,
            id: inspected.id,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const INSPECT: &str = r#"[
      {"Id": "aaa111", "Name": "/shop-web-1", "Created": "2026-01-01T00:00:00Z", "Image": "sha256:1",
       "State": {"Status": "running", "ExitCode": 0,
                 "Health": {"Status": "unhealthy", "Log": [{"Output": "", "ExitCode": 0}, {"Output": "ok"}, {"Output": "refused\n", "ExitCode": 1}]}},
       "Config": {"Labels": {"com.docker.compose.config-hash": "h1", "com.docker.compose.container-number": "1"},
                  "Healthcheck": {"Test": ["CMD", "true"], "Interval": 1000000000, "Retries": 2}},
       "NetworkSettings": {"Networks": {"shop_default": {"IPAddress": "172.20.0.3", "GlobalIPv6Address": ""},
                                        "other": {"IPAddress": "10.1.0.7"}},
                           "Ports": {"80/tcp": null, "8080/tcp": [{"HostIp": "0.0.0.0", "HostPort": "32768"},
                                     {"HostIp": "::", "HostPort": "32768"}], "53/udp": [{"HostIp": "127.0.0.2", "HostPort": "53"}]}}},
      {"Id": "bbb222", "Name": "/shop-web-2", "Image": "sha256:2",
       "State": {"Status": "exited", "ExitCode": 137},
       "Config": {"Labels": null, "Healthcheck": {"Test": ["NONE"]}}}
    ]"#;

    #[test]
    fn reads_state_health_and_labels() {
        let containers = parse_inspect(INSPECT).unwrap();
        let first = &containers[0];
        assert_eq!(first.name, "shop-web-1");
        assert_eq!(first.number, 1);
        assert_eq!(
            (first.state, first.health),
            (State::Running, Health::Unhealthy)
        );
        assert_eq!(first.config_hash, "h1");
        assert_eq!(
            first.last_check_output.as_deref(),
            Some("exit 0 | ok | exit 1: refused")
        );
        let addresses: Vec<String> = first.addresses.iter().map(ToString::to_string).collect();
        assert_eq!(addresses, ["10.1.0.7", "172.20.0.3"]);
        let published: Vec<String> = first
            .published
            .iter()
            .map(|(port, at)| format!("{port}->{at}"))
            .collect();
        assert_eq!(published, ["8080->127.0.0.1:32768", "8080->[::1]:32768"]);
        let check = first.healthcheck.unwrap();
        assert_eq!(check.interval, Duration::from_secs(1));
        assert_eq!(check.timeout, Duration::from_secs(30), "Docker's default");
        assert_eq!(check.retries, 2);

        let second = &containers[1];
        assert_eq!((second.state, second.exit_code), (State::Exited, 137));
        assert_eq!(second.health, Health::None);
        assert_eq!(second.healthcheck, None, "NONE disables the healthcheck");
        assert!(second.addresses.is_empty());
    }
}

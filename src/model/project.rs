//! A Compose project as the rollout sees it: the parts of each resolved service it decides on.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::hook::ExecHook;

/// Compose's rule for a project name: lowercase letters, digits, `-` and `_`, starting with a
/// letter or digit.
pub fn is_compose_project_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// The parts of a resolved service this tool decides on.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServiceConfig {
    pub container_name: Option<String>,
    /// Published host ports, as Compose resolved them (`"8080"`, `"9000-9005"`).
    pub published_ports: Vec<String>,
    /// `network_mode: host`: its containers share the host's ports, whatever they listen on.
    pub host_network: bool,
    pub replicas: Option<u32>,
    /// The image reference, when the file names one (a `build:`-only service has none).
    pub image: Option<String>,
    /// The services this one `depends_on`.
    pub depends_on: Vec<String>,
    /// `deploy.update_config` as Compose printed it; validated in `service_settings`.
    pub update_config: UpdateConfig,
    /// The service's `x-reroll:` extension, if any (see [`attach_extensions`]).
    pub x_reroll: Option<serde_json::Value>,
    /// The containers' labels (a proxy's Docker provider reads its settings there).
    pub labels: BTreeMap<String, String>,
    /// The service's `pre_stop:` hooks, in order.
    pub pre_stop: Vec<ExecHook>,
}

/// `deploy.update_config`, each key as Compose prints it when set: durations as Go writes them
/// (`1m30s`, `1.5s`, `500ms`). Compose checks the types and `order`, not `failure_action`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct UpdateConfig {
    pub parallelism: Option<u64>,
    pub delay: Option<String>,
    pub monitor: Option<String>,
    pub failure_action: Option<String>,
    pub max_failure_ratio: Option<f64>,
    pub order: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ProjectConfig {
    pub name: String,
    pub services: BTreeMap<String, ServiceConfig>,
    /// Compose's resolved JSON as it printed it: recorded for `docker reroll rollback`.
    pub resolved_json: String,
}

#[cfg(test)]
mod tests {
    use super::is_compose_project_name;

    #[test]
    fn project_names_as_compose_takes_them() {
        for (name, valid) in [
            ("shop", true),
            ("shop-2_b", true),
            ("1shop", true),
            ("", false),
            ("Shop", false),
            ("bad name", false),
            ("-shop", false),
            ("_shop", false),
            ("shop.b", false),
        ] {
            assert_eq!(is_compose_project_name(name), valid, "{name:?}");
        }
    }
}

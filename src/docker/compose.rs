//! What Compose says about the project: which Compose there is, and the resolved configuration
//! (`docker compose config --format json`). The YAML is never parsed here.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::model::hook::ExecHook;
use crate::model::project::{ProjectConfig, ServiceConfig, UpdateConfig};

#[derive(Deserialize)]
struct RawProject {
    name: String,
    #[serde(default)]
    services: BTreeMap<String, RawService>,
}

#[derive(Deserialize)]
struct RawService {
    container_name: Option<String>,
    #[serde(default)]
    ports: Option<Vec<RawPort>>,
    network_mode: Option<String>,
    deploy: Option<RawDeploy>,
    scale: Option<u32>,
    image: Option<String>,
    #[serde(default)]
    depends_on: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pre_stop: Option<Vec<RawHook>>,
}

/// A lifecycle hook as Compose resolves it: `command` a list, `environment` a mapping whose
/// value is null for a name given without one.
#[derive(Deserialize)]
struct RawHook {
    #[serde(default)]
    command: Vec<String>,
    user: Option<String>,
    #[serde(default)]
    privileged: bool,
    working_dir: Option<String>,
    #[serde(default)]
    environment: BTreeMap<String, Option<String>>,
}

impl RawHook {
    /// Compose's JSON keeps `$$` escaped (so that it reads back the same); Compose turns it
    /// into `$` when it runs a hook, and so does this.
    fn into_hook(self) -> ExecHook {
        let unescape = |text: String| text.replace("$$", "$");
        ExecHook {
            command: self.command.into_iter().map(unescape).collect(),
            user: self.user.filter(|u| !u.is_empty()).map(unescape),
            privileged: self.privileged,
            working_dir: self.working_dir.filter(|w| !w.is_empty()).map(unescape),
            environment: self
                .environment
                .into_iter()
                .map(|(name, value)| match value {
                    Some(value) => format!("{name}={}", unescape(value)),
                    None => name,
                })
                .collect(),
        }
    }
}

#[derive(Deserialize)]
struct RawPort {
    published: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct RawDeploy {
    replicas: Option<u32>,
    update_config: Option<UpdateConfig>,
}

pub fn parse_config(json: &str) -> Result<ProjectConfig, serde_json::Error> {
    let raw: RawProject = serde_json::from_str(json)?;
    let services = raw
        .services
        .into_iter()
        .map(|(name, service)| {
            let published_ports = service
                .ports
                .unwrap_or_default()
                .into_iter()
                .filter_map(|port| match port.published? {
                    serde_json::Value::String(text) if !text.is_empty() && text != "0" => {
                        Some(text)
                    }
                    serde_json::Value::Number(number) if number.as_u64() != Some(0) => {
                        Some(number.to_string())
                    }
                    _ => None,
                })
                .collect();
            let (replicas, update_config) = match service.deploy {
                Some(deploy) => (deploy.replicas, deploy.update_config.unwrap_or_default()),
                None => (None, UpdateConfig::default()),
            };
            let config = ServiceConfig {
                container_name: service.container_name.filter(|n| !n.is_empty()),
                published_ports,
                host_network: service.network_mode.as_deref() == Some("host"),
                replicas: replicas.or(service.scale),
                image: service.image.filter(|i| !i.is_empty()),
                depends_on: service.depends_on.unwrap_or_default().into_keys().collect(),
                update_config,
                x_reroll: None,
                labels: service.labels.unwrap_or_default(),
                pre_stop: service
                    .pre_stop
                    .unwrap_or_default()
                    .into_iter()
                    .map(RawHook::into_hook)
                    .collect(),
            };
            (name, config)
        })
        .collect();
    Ok(ProjectConfig {
        name: raw.name,
        services,
        resolved_json: json.to_owned(),
    })
}

/// Compose's JSON drops `x-` fields of services (v2.40), except with `--no-interpolate`: this
/// takes each service's `x-reroll` from that second, uninterpolated output.
pub fn attach_extensions(
    config: &mut ProjectConfig,
    uninterpolated: &str,
) -> Result<(), serde_json::Error> {
    let raw: serde_json::Value = serde_json::from_str(uninterpolated)?;
    for (name, service) in &mut config.services {
        service.x_reroll = raw["services"][name.as_str()]
            .get("x-reroll")
            .filter(|value| !value.is_null())
            .cloned();
    }
    Ok(())
}

/// Every `SERVICE HASH` line `docker compose config --hash '*'` prints.
pub fn parse_hashes(output: &str) -> BTreeMap<String, String> {
    output
        .lines()
        .filter_map(|line| {
            let (name, hash) = line.trim().split_once(char::is_whitespace)?;
            Some((name.to_owned(), hash.trim().to_owned()))
        })
        .collect()
}

/// `SERVICE HASH` as `docker compose config --hash SERVICE` prints it.
pub fn parse_hash(output: &str, service: &str) -> Option<String> {
    output.lines().find_map(|line| {
        let (name, hash) = line.trim().split_once(char::is_whitespace)?;
        (name == service).then(|| hash.trim().to_owned())
    })
}

/// How many containers a published port spec leaves room for: `"8080"` one, `"9000-9005"` six.
pub fn host_port_capacity(published: &str) -> u32 {
    match published.split_once('-') {
        Some((low, high)) => match (low.parse::<u32>(), high.parse::<u32>()) {
            (Ok(low), Ok(high)) if high >= low => high - low + 1,
            _ => 1,
        },
        None => 1,
    }
}

/// The major version from `compose version --short` (`2.40.3`, `v2.40.3`, `1.29.2`).
pub fn major_version(short: &str) -> Option<u32> {
    short
        .trim()
        .trim_start_matches('v')
        .split('.')
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_scaling_depends_on() {
        let json = r#"{"name": "demo", "services": {
            "web": {"image": "x", "ports": [{"target": 80, "published": "8080"}, {"target": 81},
                                            {"target": 82, "published": "9000-9005"}],
                    "deploy": {"replicas": 3}},
            "worker": {"image": "y", "container_name": "the-worker", "ports": null,
                       "network_mode": "host"}}}"#;
        let config = parse_config(json).unwrap();
        assert_eq!(config.name, "demo");
        let web = &config.services["web"];
        assert_eq!(web.published_ports, ["8080", "9000-9005"]);
        assert_eq!(web.replicas, Some(3));
        assert_eq!(
            config.services["worker"].container_name.as_deref(),
            Some("the-worker")
        );
        assert!(config.services["worker"].host_network && !web.host_network);
    }

    #[test]
    fn reads_pre_stop_hooks_as_compose_resolves_them() {
        let json = r#"{"name": "demo", "services": {"web": {"image": "x", "pre_stop": [
            {"command": ["sh", "-c", "echo hi"], "user": "1000", "privileged": true,
             "working_dir": "/tmp", "environment": {"A": "1", "B": null}},
            {"command": ["sh", "-c", "echo $$HOSTNAME"], "environment": {"C": "a$$b"}}]},
            "db": {"image": "y"}}}"#;
        let config = parse_config(json).unwrap();
        assert_eq!(
            config.services["web"].pre_stop,
            [
                ExecHook {
                    command: vec!["sh".into(), "-c".into(), "echo hi".into()],
                    user: Some("1000".into()),
                    privileged: true,
                    working_dir: Some("/tmp".into()),
                    environment: vec!["A=1".into(), "B".into()],
                },
                ExecHook {
                    command: vec!["sh".into(), "-c".into(), "echo $HOSTNAME".into()],
                    environment: vec!["C=a$b".into()],
                    ..ExecHook::default()
                },
            ]
        );
        assert!(config.services["db"].pre_stop.is_empty());
    }

    #[test]
    fn reads_the_hash_of_the_asked_service() {
        assert_eq!(parse_hash("web f8c4\n", "web").as_deref(), Some("f8c4"));
        assert_eq!(parse_hash("web f8c4\n", "api"), None);
        let all = parse_hashes("api 1a2b\nweb f8c4\n");
        assert_eq!(all["api"], "1a2b");
        assert_eq!(all["web"], "f8c4");
    }

    #[test]
    fn reads_order_images_and_extensions() {
        let json = r#"{"name": "demo", "services": {
            "web": {"image": "web:2", "depends_on": {"db": {"condition": "service_healthy"}},
                    "deploy": {"update_config": {"parallelism": 2, "order": "stop-first"}}},
            "db": {"image": "postgres"}}}"#;
        let mut config = parse_config(json).unwrap();
        let web = &config.services["web"];
        assert_eq!(web.depends_on, ["db"]);
        assert_eq!(web.image.as_deref(), Some("web:2"));
        assert_eq!(web.update_config.parallelism, Some(2));
        assert_eq!(web.update_config.order.as_deref(), Some("stop-first"));
        assert_eq!(config.services["db"].update_config, UpdateConfig::default());
        let raw = r#"{"services": {"web": {"x-reroll": {"wait": "5s"}}, "db": {}}}"#;
        attach_extensions(&mut config, raw).unwrap();
        assert_eq!(
            config.services["web"].x_reroll,
            Some(serde_json::json!({"wait": "5s"}))
        );
        assert_eq!(config.services["db"].x_reroll, None);
    }

    #[test]
    fn reads_update_config_as_compose_prints_it() {
        let json = r#"{"name": "demo", "services": {"web": {"image": "x", "deploy": {
            "update_config": {"parallelism": 1, "delay": "2s", "failure_action": "rollback",
                              "monitor": "1.5s", "max_failure_ratio": 0.3, "order": "stop-first"}}}}}"#;
        let config = parse_config(json).unwrap();
        assert_eq!(
            config.services["web"].update_config,
            UpdateConfig {
                parallelism: Some(1),
                delay: Some("2s".into()),
                monitor: Some("1.5s".into()),
                failure_action: Some("rollback".into()),
                max_failure_ratio: Some(0.3),
                order: Some("stop-first".into()),
            }
        );
    }

    #[test]
    fn counts_host_ports_and_versions() {
        assert_eq!(host_port_capacity("8080"), 1);
        assert_eq!(host_port_capacity("9000-9005"), 6);
        assert_eq!(major_version("v2.40.3"), Some(2));
        assert_eq!(major_version("1.29.2"), Some(1));
        assert_eq!(major_version("garbage"), None);
    }
}

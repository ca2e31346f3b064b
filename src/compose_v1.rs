//! Compose v1 (`docker-compose` 1.29, Debian's), the fallback when no Compose v2 is found. It has
//! what a rollout needs: the same labels (`com.docker.compose.config-hash` included), `config
//! --hash`, `up --scale --no-deps --no-recreate --no-start`; it names containers `p_s_1`, which
//! the tool never relies on (it finds them by label). What it lacks: `config --format json` (its
//! `config` prints YAML, with no project name) and `up --wait`. This reads its YAML into the JSON
//! Compose v2 prints, so that the rest of the tool is the same for both.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use crate::docker::Docker;
use crate::docker::compose;
use crate::exit::Failure;
use crate::model::project::ProjectConfig;

/// `docker-compose config` as a project. Unlike v2's JSON, v1's YAML keeps the services'
/// `x-reroll` (interpolated); its `--no-interpolate` refuses a `${PORT}` where a number goes.
pub async fn read_config(docker: &Docker) -> Result<ProjectConfig, Failure> {
    let output = docker
        .run(docker.compose(["config"]))
        .await
        .map_err(|error| {
            Failure::usage(format!(
                "Compose v1 cannot read the project: {}: fix the compose file, or point at it \
                 with -f / --project-directory",
                error.last_stderr_line()
            ))
        })?;
    let project = project_name(docker.project_args(), |key| std::env::var(key).ok());
    let not_understood =
        |e: String| Failure::usage(format!("cannot understand `docker-compose config`: {e}"));
    let json = as_v2_json(&output.stdout, &project).map_err(not_understood)?;
    let mut config = compose::parse_config(&json).map_err(|e| not_understood(e.to_string()))?;
    compose::attach_extensions(&mut config, &json).map_err(|e| not_understood(e.to_string()))?;
    Ok(config)
}

/// v1's YAML as v2's JSON: the project's name added, short port strings
/// (`[IP:][HOST:]CONTAINER[/PROTO]`) as `{"published": HOST, "target": CONTAINER}`.
pub fn as_v2_json(yaml: &str, project: &str) -> Result<String, String> {
    let mut config: Value = serde_norway::from_str(yaml).map_err(|e| e.to_string())?;
    let Some(root) = config.as_object_mut() else {
        return Err("not a mapping".to_owned());
    };
    root.insert("name".to_owned(), json!(project));
    if let Some(services) = root.get_mut("services").and_then(Value::as_object_mut) {
        for service in services.values_mut() {
            let ports = service.get_mut("ports").and_then(Value::as_array_mut);
            for port in ports.into_iter().flatten() {
                if let Some(short) = port.as_str() {
                    *port = long_port(short);
                }
            }
        }
    }
    serde_json::to_string(&config).map_err(|e| e.to_string())
}

fn long_port(short: &str) -> Value {
    let spec = short.split_once('/').map_or(short, |(spec, _)| spec);
    let mut parts: Vec<&str> = spec.rsplitn(3, ':').collect();
    parts.reverse(); // [IP, HOST, CONTAINER], or fewer
    let mut long = Map::new();
    let target = parts.last().copied().unwrap_or_default();
    long.insert("target".to_owned(), json!(target));
    if parts.len() >= 2 && !parts[parts.len() - 2].is_empty() {
        long.insert("published".to_owned(), json!(parts[parts.len() - 2]));
    }
    Value::Object(long)
}

/// The project name as Compose v1 makes it: `-p`, else `COMPOSE_PROJECT_NAME` (the environment's,
/// else the env file's), else the project directory's name (`--project-directory`, else the first
/// `-f` file's directory, else the current one); lower-cased, keeping only `[-_a-z0-9]`.
pub fn project_name(project_args: &[String], env: impl Fn(&str) -> Option<String>) -> String {
    let flag = |name: &str| {
        project_args
            .windows(2)
            .find(|pair| pair[0] == name)
            .map(|pair| pair[1].clone())
    };
    let directory = flag("--project-directory")
        .map(PathBuf::from)
        .or_else(|| {
            flag("--file").map(|file| {
                Path::new(&file)
                    .parent()
                    .map(Path::to_path_buf)
                    .unwrap_or_default()
            })
        })
        .filter(|dir| !dir.as_os_str().is_empty())
        .or_else(|| std::env::current_dir().ok())
        .unwrap_or_default();
    let directory = std::path::absolute(&directory).unwrap_or(directory);
    let env_file = flag("--env-file")
        .map(PathBuf::from)
        .unwrap_or_else(|| directory.join(".env"));
    let name = flag("--project-name")
        .or_else(|| env("COMPOSE_PROJECT_NAME"))
        .or_else(|| env_file_value(&env_file, "COMPOSE_PROJECT_NAME"))
        .filter(|name| !name.is_empty())
        .or_else(|| {
            directory
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "default".to_owned());
    name.to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_')
        .collect()
}

fn env_file_value(file: &Path, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(file).ok()?;
    let values: BTreeMap<&str, &str> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .collect();
    values
        .get(key)
        .map(|value| value.trim().trim_matches(['"', '\'']).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1_CONFIG: &str = r#"services:
  web:
    depends_on:
      db:
        condition: service_started
    deploy:
      replicas: 2
      update_config:
        delay: 2s
        parallelism: 1
    image: busybox:1.36
    labels:
      a: b
    ports:
    - target: 8080
    - 127.0.0.1::81/tcp
    - 127.0.0.1:18080:80/tcp
    - 9000:82/udp
    - published: 9001
      target: 83
    x-reroll:
      wait: 3s
  db:
    image: busybox:1.36
version: '3.9'
"#;

    #[test]
    fn reads_what_compose_v1_prints_as_compose_v2_json() {
        let json = as_v2_json(V1_CONFIG, "shop").unwrap();
        let mut config = compose::parse_config(&json).unwrap();
        compose::attach_extensions(&mut config, &json).unwrap();
        assert_eq!(config.name, "shop");
        let web = &config.services["web"];
        assert_eq!(web.published_ports, ["18080", "9000", "9001"]);
        assert_eq!(web.replicas, Some(2));
        assert_eq!(web.depends_on, ["db"]);
        assert_eq!(web.update_config.delay.as_deref(), Some("2s"));
        assert_eq!(web.labels["a"], "b");
        assert_eq!(web.x_reroll, Some(json!({"wait": "3s"})));
        assert!(as_v2_json("- a list", "shop").is_err());
    }

    #[test]
    fn names_the_project_as_compose_v1_does() {
        let args = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let none = |_: &str| None;
        assert_eq!(
            project_name(&args(&["--project-name", "My.Shop_1"]), none),
            "myshop_1"
        );
        let env = |key: &str| (key == "COMPOSE_PROJECT_NAME").then(|| "FromEnv".to_owned());
        assert_eq!(
            project_name(&args(&["--file", "/x/y/c.yml"]), env),
            "fromenv"
        );
        assert_eq!(
            project_name(&args(&["--file", "/srv/Web-App/compose.yml"]), none),
            "web-app"
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(".env"),
            "# comment\nCOMPOSE_PROJECT_NAME=\"dotenv\"\n",
        )
        .unwrap();
        let directory = dir.path().display().to_string();
        assert_eq!(
            project_name(&args(&["--project-directory", &directory]), none),
            "dotenv"
        );
    }
}

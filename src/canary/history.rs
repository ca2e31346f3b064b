//! What `docker reroll rollback` goes back to. After each successful rollout the tool records the
//! version now serving (its resolved project config, its config hash and image id) beside the
//! service's lock. When the next rollout replaces exactly that version, the record becomes the
//! previous one and its image is tagged `docker-reroll-pin/PROJECT-SERVICE:previous`, so that
//! `docker image prune` (dangling images) keeps it even after its own tag moved to a new build.
//! The version before the first rollout the tool made is not known: nothing recorded it.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::docker::Docker;
use crate::lock::StateDir;

/// One version of a service, as it was deployed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Deployed {
    /// The `com.docker.compose.config-hash` its containers carry.
    pub config_hash: String,
    /// The image id its containers ran.
    pub image: String,
    /// `docker compose config --format json` of the project when it was deployed.
    pub project: Value,
}

pub struct History {
    deployed: PathBuf,
    previous: PathBuf,
}

/// The tag that keeps the previous version's image.
pub fn pin(project: &str, service: &str) -> String {
    let clean = |name: &str| -> String {
        name.to_ascii_lowercase()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                    c
                } else {
                    '-'
                }
            })
            .collect()
    };
    format!(
        "docker-reroll-pin/{}-{}:previous",
        clean(project),
        clean(service)
    )
}

impl History {
    pub fn new(state: &StateDir) -> Self {
        History {
            deployed: state.file("deployed.json"),
            previous: state.file("previous.json"),
        }
    }

    pub fn previous(&self) -> Option<Deployed> {
        load(&self.previous)
    }

    /// After a successful rollout from containers of `old_hash`: `new_container` (any of the new
    /// ones) serves the version of `resolved_json` (the project's config it was rolled from).
    /// Returns a note for the user.
    pub async fn record(
        &self,
        docker: &Docker,
        (project, service): (&str, &str),
        resolved_json: &str,
        old_hash: Option<&str>,
        new_container: &str,
    ) -> Result<String, String> {
        let project_json: Value = serde_json::from_str(resolved_json)
            .map_err(|e| format!("cannot understand the project's config: {e}"))?;
        let inspected = docker
            .inspect(&[new_container.to_owned()])
            .await
            .map_err(|e| format!("cannot inspect {new_container}: {}", e.last_stderr_line()))?;
        let container = inspected
            .first()
            .ok_or_else(|| format!("{new_container} is gone"))?;
        let mut note = "recorded this version for docker reroll rollback".to_owned();
        if let Some(deployed) = load(&self.deployed)
            && old_hash == Some(deployed.config_hash.as_str())
        {
            let tag = pin(project, service);
            docker
                .run(docker.tag(&deployed.image, &tag))
                .await
                .map_err(|e| {
                    format!(
                        "cannot pin the previous image as {tag}: {}",
                        e.last_stderr_line()
                    )
                })?;
            save(&self.previous, &deployed)?;
            note = format!(
                "{note}; docker reroll rollback {service} goes back to the version it replaced (image pinned as {tag})"
            );
        }
        save(
            &self.deployed,
            &Deployed {
                config_hash: container.config_hash.clone(),
                image: container.image.clone(),
                project: project_json,
            },
        )?;
        Ok(note)
    }
}

/// The compose file a rollback runs: the previous project config, the service's image pinned,
/// never built or pulled.
pub fn rollback_project(previous: &Deployed, service: &str, pinned: &str) -> Result<Value, String> {
    let mut project = previous.project.clone();
    let definition = project
        .get_mut("services")
        .and_then(|services| services.get_mut(service))
        .and_then(Value::as_object_mut)
        .ok_or_else(|| format!("the recorded version has no service '{service}'"))?;
    definition.remove("build");
    definition.insert("image".into(), Value::String(pinned.to_owned()));
    definition.insert("pull_policy".into(), Value::String("never".into()));
    Ok(project)
}

fn load(path: &PathBuf) -> Option<Deployed> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

fn save(path: &PathBuf, deployed: &Deployed) -> Result<(), String> {
    let temporary = path.with_extension("json.tmp");
    let text = serde_json::to_vec(deployed).map_err(|e| e.to_string())?;
    std::fs::write(&temporary, text)
        .and_then(|()| std::fs::rename(&temporary, path))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rollback_file_pins_the_image_and_never_builds() {
        let previous = Deployed {
            config_hash: "h".into(),
            image: "sha256:abc".into(),
            project: serde_json::json!({
                "name": "shop",
                "services": {"web": {"image": "web:latest", "build": {"context": "."}}, "db": {"image": "pg"}}
            }),
        };
        let file = rollback_project(&previous, "web", &pin("shop", "web")).unwrap();
        assert_eq!(
            file["services"]["web"],
            serde_json::json!({"image": "docker-reroll-pin/shop-web:previous", "pull_policy": "never"})
        );
        assert_eq!(file["services"]["db"], serde_json::json!({"image": "pg"}));
        assert!(
            rollback_project(&previous, "api", "x")
                .unwrap_err()
                .contains("no service 'api'")
        );
        assert_eq!(
            pin("My.Proj", "web"),
            "docker-reroll-pin/my.proj-web:previous"
        );
    }
}

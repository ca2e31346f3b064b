//! What a host ran before it was rolled, so that `--rollback-hosts` can roll it back: each
//! service's image id, and the compose files and directory Compose made its containers from. The
//! rollback is a run of the same files with an override that pins every service to its old image
//! (other changes to the files stay: the report says so).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::docker::Docker;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Previous {
    /// Service → image id.
    pub images: BTreeMap<String, String>,
    pub config_files: Vec<String>,
    pub working_dir: Option<String>,
}

impl Previous {
    /// Reads the project's running containers on the host `docker` reaches.
    pub async fn record(docker: &Docker, project: &str) -> Result<Previous, String> {
        let ids = docker
            .run(docker.running_in_project(project))
            .await
            .map_err(|e| e.to_string())?;
        let ids: Vec<String> = ids.stdout.split_whitespace().map(str::to_owned).collect();
        if ids.is_empty() {
            return Ok(Previous::default());
        }
        let made = docker
            .run(docker.made_from(&ids))
            .await
            .map_err(|e| e.to_string())?;
        Ok(parse(&made.stdout))
    }

    /// The compose override that pins each service to its old image, written into `dir`.
    pub fn write_override(&self, dir: &Path, context: &str) -> std::io::Result<PathBuf> {
        let services: serde_json::Map<String, serde_json::Value> = self
            .images
            .iter()
            .map(|(service, image)| (service.clone(), json!({ "image": image })))
            .collect();
        // JSON is YAML: Compose reads it as an override file.
        let path = dir.join(format!("rollback-{context}.yaml"));
        std::fs::write(&path, json!({ "services": services }).to_string())?;
        Ok(path)
    }
}

fn parse(text: &str) -> Previous {
    let mut previous = Previous::default();
    for line in text.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        let [service, image, files, dir] = fields[..] else {
            continue;
        };
        if service.is_empty() || image.is_empty() {
            continue;
        }
        previous.images.insert(service.to_owned(), image.to_owned());
        if previous.config_files.is_empty() && !files.is_empty() {
            previous.config_files = files.split(',').map(str::to_owned).collect();
        }
        if previous.working_dir.is_none() && !dir.is_empty() {
            previous.working_dir = Some(dir.to_owned());
        }
    }
    previous
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_each_service_image_and_the_files() {
        let previous = parse(
            "app\tsha256:aa\t/p/compose.yaml,/p/compose.override.yaml\t/p\n\
             app\tsha256:aa\t/p/compose.yaml\t/p\nproxy\tsha256:bb\t/p/compose.yaml\t/p\nbad\n",
        );
        assert_eq!(previous.images["app"], "sha256:aa");
        assert_eq!(previous.images["proxy"], "sha256:bb");
        assert_eq!(
            previous.config_files,
            ["/p/compose.yaml", "/p/compose.override.yaml"]
        );
        assert_eq!(previous.working_dir.as_deref(), Some("/p"));
        let dir = tempfile::tempdir().unwrap();
        let path = previous.write_override(dir.path(), "b").unwrap();
        assert_eq!(
            std::fs::read_to_string(path).unwrap(),
            r#"{"services":{"app":{"image":"sha256:aa"},"proxy":{"image":"sha256:bb"}}}"#
        );
    }
}

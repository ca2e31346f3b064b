//! Finding a service's containers: by Compose's labels (never by name: names differ between
//! Compose versions and projects), in every state, then one batched `docker inspect`.

use super::container::{Container, ONEOFF_LABEL, PROJECT_LABEL, SERVICE_LABEL, parse_inspect};
use super::{Docker, DockerError};

/// `--filter label=…` for the service's own containers: not another project's service of the same
/// name, not `compose run` one-offs.
pub fn label_filters(project: &str, service: &str) -> Vec<String> {
    [
        format!("label={PROJECT_LABEL}={project}"),
        format!("label={SERVICE_LABEL}={service}"),
        format!("label={ONEOFF_LABEL}=False"),
    ]
    .into_iter()
    .flat_map(|filter| ["--filter".to_owned(), filter])
    .collect()
}

impl Docker {
    pub async fn container_ids(
        &self,
        project: &str,
        service: &str,
    ) -> Result<Vec<String>, DockerError> {
        let mut args: Vec<String> = ["ps", "--all", "--quiet", "--no-trunc"]
            .into_iter()
            .map(String::from)
            .collect();
        args.extend(label_filters(project, service));
        let output = self.run(self.docker(args)).await?;
        Ok(output
            .stdout
            .split_whitespace()
            .map(str::to_owned)
            .collect())
    }

    /// One `docker inspect` for all of them. A container removed meanwhile is left out.
    pub async fn inspect(&self, ids: &[String]) -> Result<Vec<Container>, DockerError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut args = vec![
            "inspect".to_owned(),
            "--type".to_owned(),
            "container".to_owned(),
            "--".to_owned(),
        ];
        args.extend(ids.iter().cloned());
        match self.run(self.docker(args)).await {
            Ok(output) => Ok(parse_inspect(&output.stdout).unwrap_or_default()),
            // `docker inspect` fails when one of several ids is gone, yet prints the others.
            Err(DockerError::Failed { stdout, .. }) if stdout.trim_start().starts_with('[') => {
                Ok(parse_inspect(&stdout).unwrap_or_default())
            }
            Err(error) => Err(error),
        }
    }

    pub async fn containers(
        &self,
        project: &str,
        service: &str,
    ) -> Result<Vec<Container>, DockerError> {
        let ids = self.container_ids(project, service).await?;
        self.inspect(&ids).await
    }
}

//! Finding a service's containers: by Compose's labels (never by name: names differ between
//! Compose versions and projects), in every state, then one batched `docker inspect`. And the
//! whole project's, by service, to find those of services the file no longer has.

use super::container::{ONEOFF_LABEL, PROJECT_LABEL, SERVICE_LABEL, parse_inspect};
use super::{Docker, DockerError};
use crate::model::container::Container;

/// `--filter label=…` for the service's own containers: not another project's service of the same
/// name, not `compose run` one-offs.
pub fn label_filters(project: &str, service: &str) -> Vec<String> {
    let mut filters = vec![
        format!("label={PROJECT_LABEL}={project}"),
        format!("label={SERVICE_LABEL}={service}"),
    ];
    // podman-compose sets no oneoff label (the engine module).
    if super::podman::compose_labels_oneoff() {
        filters.push(format!("label={ONEOFF_LABEL}=False"));
    }
    filters
        .into_iter()
        .flat_map(|filter| ["--filter".to_owned(), filter])
        .collect()
}

/// A container of the project as `docker ps` lists it: which service's it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    pub id: String,
    /// Its Compose service label (empty if it has none).
    pub service: String,
    pub name: String,
}

/// `docker ps --format`: one tab-separated line per container, the fields of [`Listed`].
const LISTED_FORMAT: &str = "{{.ID}}\t{{.Label \"com.docker.compose.service\"}}\t{{.Names}}";

/// The lines `docker ps --format LISTED_FORMAT` prints; a line of another shape is passed over.
pub fn parse_listed(output: &str) -> Vec<Listed> {
    output
        .lines()
        .filter_map(|line| {
            let mut fields = line.trim_end_matches('\r').split('\t');
            let (id, service, name) = (fields.next()?, fields.next()?, fields.next()?);
            Some(Listed {
                id: id.trim().to_owned(),
                service: service.to_owned(),
                name: name.to_owned(),
            })
        })
        .filter(|listed| !listed.id.is_empty())
        .collect()
}

impl Docker {
    /// Every container of the project but `compose run` one-offs, in every state.
    pub async fn project_containers(&self, project: &str) -> Result<Vec<Listed>, DockerError> {
        let args = [
            "ps".to_owned(),
            "--all".to_owned(),
            "--no-trunc".to_owned(),
            "--filter".to_owned(),
            format!("label={PROJECT_LABEL}={project}"),
            "--filter".to_owned(),
            format!("label={ONEOFF_LABEL}=False"),
            "--format".to_owned(),
            LISTED_FORMAT.to_owned(),
        ];
        let output = self.run(self.docker(args)).await?;
        Ok(parse_listed(&output.stdout))
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_each_container_with_its_service() {
        let output = "a1\tweb\tshop-web-1\nb2\t\tshop-x\nnot a listing\n";
        assert_eq!(
            parse_listed(output),
            [
                Listed {
                    id: "a1".into(),
                    service: "web".into(),
                    name: "shop-web-1".into()
                },
                Listed {
                    id: "b2".into(),
                    service: String::new(),
                    name: "shop-x".into()
                },
            ]
        );
    }
}

//! Typed verbs of a rollout over several hosts: what a host runs before it is
//! rolled, so that it can be rolled back to it.

use tokio::process::Command;

use super::Docker;

/// What each running container of a project was made from: service, image id, compose files,
/// working directory, tab-separated.
const MADE_FROM: &str = "{{index .Config.Labels \"com.docker.compose.service\"}}\t{{.Image}}\t\
{{index .Config.Labels \"com.docker.compose.project.config_files\"}}\t\
{{index .Config.Labels \"com.docker.compose.project.working_dir\"}}";

impl Docker {
    /// `docker ps --quiet --filter label=com.docker.compose.project=P --filter status=running`
    pub fn running_in_project(&self, project: &str) -> Command {
        self.docker([
            "ps".to_owned(),
            "--quiet".to_owned(),
            "--filter".to_owned(),
            format!("label=com.docker.compose.project={project}"),
            "--filter".to_owned(),
            "status=running".to_owned(),
        ])
    }

    /// `docker container inspect --format MADE_FROM -- IDS`
    pub fn made_from(&self, ids: &[String]) -> Command {
        let mut args = vec![
            "container".to_owned(),
            "inspect".to_owned(),
            "--format".to_owned(),
            MADE_FROM.to_owned(),
            "--".to_owned(),
        ];
        args.extend(ids.iter().cloned());
        self.docker(args)
    }
}

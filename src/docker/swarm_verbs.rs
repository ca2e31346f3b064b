//! Typed verbs of a Swarm stack rollout: the engine rolls, the tool deploys and watches.

use std::path::PathBuf;

use tokio::process::Command;

use super::Docker;

/// Per service: name, update status (JSON, `null` before any update), running and wanted
/// replicas, tab-separated.
const STATUS: &str =
    "{{.Spec.Name}}\t{{json .UpdateStatus}}\t{{json .Spec.TaskTemplate.ContainerSpec.Healthcheck}}";

impl Docker {
    /// `docker stack deploy --detach=true --compose-file F… -- PROJECT`
    pub fn stack_deploy(&self, files: &[PathBuf], project: &str) -> Command {
        let mut args = vec![
            "stack".to_owned(),
            "deploy".to_owned(),
            "--detach=true".to_owned(),
        ];
        for file in files {
            args.push("--compose-file".to_owned());
            args.push(file.display().to_string());
        }
        args.extend(["--".to_owned(), project.to_owned()]);
        self.docker(args)
    }

    /// `docker service inspect --format STATUS -- SERVICES`
    pub fn service_status(&self, services: &[String]) -> Command {
        let mut args = vec![
            "service".to_owned(),
            "inspect".to_owned(),
            "--format".to_owned(),
            STATUS.to_owned(),
            "--".to_owned(),
        ];
        args.extend(services.iter().cloned());
        self.docker(args)
    }

    /// `docker service ls --filter label=com.docker.stack.namespace=P --format '{{.Name}}\t{{.Replicas}}'`
    pub fn stack_replicas(&self, project: &str) -> Command {
        self.docker([
            "service".to_owned(),
            "ls".to_owned(),
            "--filter".to_owned(),
            format!("label=com.docker.stack.namespace={project}"),
            "--format".to_owned(),
            "{{.Name}}\t{{.Replicas}}".to_owned(),
        ])
    }

    /// `docker service rollback --detach -- SERVICE`
    pub fn service_rollback(&self, service: &str) -> Command {
        self.docker(["service", "rollback", "--detach", "--", service])
    }
}

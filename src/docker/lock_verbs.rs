//! Typed verbs of the lock on the engine (`crate::engine_lock`): a never-started container whose
//! unique name is the lock, created from a zero-byte image the tool imports itself, so no image
//! of the project needs to exist and nothing is pulled.

use std::path::Path;

use tokio::process::Command;

use super::Docker;

/// The image every lock container is created from: empty, imported from an empty tar.
pub const LOCK_IMAGE: &str = "docker-reroll-lock:1";

impl Docker {
    /// `docker import -- EMPTY.tar docker-reroll-lock:1`
    pub fn lock_image_import(&self, empty_tar: &Path) -> Command {
        self.docker([
            "import".to_owned(),
            "--".to_owned(),
            empty_tar.display().to_string(),
            LOCK_IMAGE.to_owned(),
        ])
    }

    /// `docker create --pull never --name NAME --network none --label K=V… --
    /// docker-reroll-lock:1 /lock`: the engine refuses a second container of that name, which
    /// makes this the atomic step. Never pulled: the image is the tool's own. The command is never
    /// run (the image has no files): the container is never started.
    pub fn lock_create(&self, name: &str, labels: &[(&str, String)]) -> Command {
        let mut args = vec![
            "create".to_owned(),
            "--pull".to_owned(),
            "never".to_owned(),
            "--name".to_owned(),
            name.to_owned(),
            "--network".to_owned(),
            "none".to_owned(),
        ];
        for (key, value) in labels {
            args.push("--label".to_owned());
            args.push(format!("{key}={value}"));
        }
        args.extend(["--", LOCK_IMAGE, "/lock"].map(str::to_owned));
        self.docker(args)
    }

    /// `docker container inspect --format '{{.Id}} {{json .Config.Labels}}' -- NAME`
    pub fn lock_inspect(&self, name: &str) -> Command {
        self.docker([
            "container",
            "inspect",
            "--format",
            "{{.Id}} {{json .Config.Labels}}",
            "--",
            name,
        ])
    }

    /// `docker cp -- FILE ID:/lease`: the lease's refresh, a file in the never-started container.
    pub fn lock_write_lease(&self, id: &str, file: &Path) -> Command {
        self.docker([
            "cp".to_owned(),
            "--".to_owned(),
            file.display().to_string(),
            format!("{id}:/lease"),
        ])
    }

    /// `docker cp -- ID:/lease -`: the lease file, as a tar stream.
    pub fn lock_read_lease(&self, id: &str) -> Command {
        self.docker(["cp", "--", &format!("{id}:/lease"), "-"])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docker::command::Globals;
    use crate::docker::globals::DockerGlobals;

    fn argv(command: &Command) -> String {
        command
            .as_std()
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn lock_verbs_put_the_operands_after_a_double_dash() {
        let docker = Docker::new(
            Globals::resolve(DockerGlobals {
                context: vec!["b".into()],
                ..DockerGlobals::default()
            }),
            vec![],
        );
        assert_eq!(
            argv(&docker.lock_create("reroll-lock-shop", &[("k", "v".into())])),
            "--context=b create --pull never --name reroll-lock-shop --network none --label k=v -- docker-reroll-lock:1 /lock"
        );
        assert_eq!(
            argv(&docker.lock_read_lease("abc")),
            "--context=b cp -- abc:/lease -"
        );
        assert_eq!(
            argv(&docker.lock_write_lease("abc", Path::new("/s/l"))),
            "--context=b cp -- /s/l abc:/lease"
        );
        assert_eq!(
            argv(&docker.lock_image_import(Path::new("/s/e.tar"))),
            "--context=b import -- /s/e.tar docker-reroll-lock:1"
        );
    }
}

//! Typed verbs: every docker and Compose call a rollout makes, built here and nowhere else, each
//! with `--` before its operands. The global flags, the endpoint's environment and the project
//! flags come from the one command builder ([`Docker::docker`], [`Docker::compose`]).

use tokio::process::Command;

use super::Docker;
use crate::model::hook::ExecHook;

/// How `compose up --scale` treats the containers it creates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// `--detach`: create and start them (and start any stopped container of the service).
    Detached,
    /// `--no-start`: create only, so that stopped old containers kept for a rollback stay
    /// stopped; the new ones are started by id.
    NoStart,
}

impl Docker {
    /// `compose up (--detach|--no-start) --no-deps --no-recreate --scale S=N -- S`: never
    /// recreates the old containers, never touches the services S depends on.
    pub fn scale(&self, service: &str, total: u32, start: Start) -> Command {
        let start = match start {
            Start::Detached => "--detach",
            Start::NoStart => "--no-start",
        };
        self.compose([
            "up",
            start,
            "--no-deps",
            "--no-recreate",
            "--scale",
            &format!("{service}={total}"),
            "--",
            service,
        ])
    }

    /// `docker start -- IDS`
    pub fn start(&self, ids: &[String]) -> Command {
        self.with_ids(&["start"], ids)
    }

    /// `docker stop -- IDS`, without `-t`: each container's own `stop_grace_period` holds.
    pub fn stop(&self, ids: &[String]) -> Command {
        self.with_ids(&["stop"], ids)
    }

    /// `docker rm [--force] -- IDS`
    pub fn remove(&self, ids: &[String], force: bool) -> Command {
        if force {
            self.with_ids(&["rm", "--force"], ids)
        } else {
            self.with_ids(&["rm"], ids)
        }
    }

    /// `docker image tag -- SOURCE TARGET`: pins an image (by id) under a name of ours.
    pub fn tag(&self, source: &str, target: &str) -> Command {
        self.docker(["image", "tag", "--", source, target])
    }

    /// `docker image inspect --format {{.Id}} -- IMAGE`: whether the image is there.
    pub fn image_id(&self, image: &str) -> Command {
        self.docker(["image", "inspect", "--format", "{{.Id}}", "--", image])
    }

    /// `docker logs --tail N -- ID`
    pub fn logs_tail(&self, id: &str, lines: u32) -> Command {
        self.docker(["logs", "--tail", &lines.to_string(), "--", id])
    }

    /// `compose config --hash SERVICES` (`*` for all).
    pub fn config_hash(&self, services: &str) -> Command {
        self.compose(["config", "--hash", services])
    }

    /// `compose config --format json`, interpolated or not (only the latter keeps `x-` fields).
    pub fn config_json(&self, interpolate: bool) -> Command {
        if interpolate {
            self.compose(["config", "--format", "json"])
        } else {
            self.compose(["config", "--format", "json", "--no-interpolate"])
        }
    }

    /// `compose --profile * config --services`: every service, inactive profiles included.
    pub fn every_service(&self) -> Command {
        self.compose(["--profile", "*", "config", "--services"])
    }

    /// `docker exec [--user U] [--privileged] [--workdir W] [--env E]... -- ID COMMAND...`: one of
    /// the service's lifecycle hooks, run in the container as Compose would.
    pub fn exec_hook(&self, id: &str, hook: &ExecHook) -> Command {
        let mut args: Vec<&str> = vec!["exec"];
        if let Some(user) = &hook.user {
            args.extend(["--user", user]);
        }
        if hook.privileged {
            args.push("--privileged");
        }
        if let Some(dir) = &hook.working_dir {
            args.extend(["--workdir", dir]);
        }
        for variable in &hook.environment {
            args.extend(["--env", variable]);
        }
        args.extend(["--", id]);
        args.extend(hook.command.iter().map(String::as_str));
        self.docker(args)
    }

    /// `docker compose version --short`: whether the Compose plugin is there.
    pub fn compose_plugin_version(&self) -> Command {
        self.docker(["compose", "version", "--short"])
    }

    fn with_ids(&self, verb: &[&str], ids: &[String]) -> Command {
        let mut args: Vec<String> = verb.iter().map(|w| (*w).to_owned()).collect();
        args.push("--".to_owned());
        args.extend(ids.iter().cloned());
        self.docker(args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docker::command::{Endpoint, Globals};
    use crate::docker::globals::DockerGlobals;

    /// The whole argv: the program, then its arguments.
    fn argv(command: &Command) -> String {
        let std = command.as_std();
        std::iter::once(std.get_program())
            .chain(std.get_args())
            .map(|word| word.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// No global flag, no project flag: the minimum.
    fn plain() -> Docker {
        let globals = Globals {
            flags: DockerGlobals::default(),
            endpoint: Endpoint::Current,
        };
        let mut docker = Docker::new(globals, Vec::new());
        docker.use_compose(crate::docker::command::ComposeCli::Plugin);
        docker
    }

    /// Every global flag and project flag: the maximum.
    fn loaded() -> Docker {
        let flags = DockerGlobals {
            context: vec!["prod".into()],
            config: Some("/cfg".into()),
            tlsverify: true,
            debug: true,
            ..DockerGlobals::default()
        };
        let globals = Globals {
            flags,
            endpoint: Endpoint::Context("prod".into()),
        };
        let mut docker = Docker::new(globals, vec!["--project-name".into(), "shop".into()]);
        docker.use_compose(crate::docker::command::ComposeCli::Plugin);
        docker
    }

    const IDS: [&str; 0] = [];

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn every_verb_with_the_fewest_flags() {
        let docker = plain();
        let cases = [
            (
                docker.scale("web", 4, Start::Detached),
                "docker compose up --detach --no-deps --no-recreate --scale web=4 -- web",
            ),
            (docker.start(&ids(&["a"])), "docker start -- a"),
            (docker.stop(&ids(&["a", "b"])), "docker stop -- a b"),
            (docker.remove(&ids(&["a"]), false), "docker rm -- a"),
            (docker.logs_tail("a", 5), "docker logs --tail 5 -- a"),
            (
                docker.config_hash("web"),
                "docker compose config --hash web",
            ),
            (
                docker.config_json(true),
                "docker compose config --format json",
            ),
            (
                docker.every_service(),
                "docker compose --profile * config --services",
            ),
            (
                docker.compose_plugin_version(),
                "docker compose version --short",
            ),
            (
                docker.exec_hook(
                    "a",
                    &ExecHook {
                        command: vec!["touch".into(), "/.dead".into()],
                        ..ExecHook::default()
                    },
                ),
                "docker exec -- a touch /.dead",
            ),
        ];
        for (command, expected) in cases {
            assert_eq!(argv(&command), expected);
        }
        assert_eq!(argv(&docker.stop(&ids(&IDS))), "docker stop --");
    }

    #[test]
    fn every_verb_with_every_flag() {
        let docker = loaded();
        let globals = "--config=/cfg --context=prod --tlsverify --debug";
        let cases = [
            (
                docker.scale("web", 6, Start::NoStart),
                format!(
                    "docker {globals} compose --project-name shop up --no-start --no-deps \
                     --no-recreate --scale web=6 -- web"
                ),
            ),
            (
                docker.remove(&ids(&["a", "b"]), true),
                format!("docker {globals} rm --force -- a b"),
            ),
            (
                docker.config_json(false),
                format!(
                    "docker {globals} compose --project-name shop config --format json --no-interpolate"
                ),
            ),
            (
                docker.logs_tail("a", 5),
                format!("docker {globals} logs --tail 5 -- a"),
            ),
            (
                docker.exec_hook(
                    "a",
                    &ExecHook {
                        command: vec!["sh".into(), "-c".into(), "echo $A".into()],
                        user: Some("www-data".into()),
                        privileged: true,
                        working_dir: Some("/srv".into()),
                        environment: vec!["A=1".into(), "B".into()],
                    },
                ),
                format!(
                    "docker {globals} exec --user www-data --privileged --workdir /srv --env A=1 \
                     --env B -- a sh -c echo $A"
                ),
            ),
        ];
        for (command, expected) in cases {
            assert_eq!(argv(&command), expected);
        }
    }
}

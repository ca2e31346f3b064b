//! The project's orphans, as `docker compose up` calls them: containers of services the compose
//! file no longer has. Found before anything changes; at the end, mentioned and left alone, or
//! with `--remove-orphans` stopped and removed, once every rollout succeeded.

use std::collections::BTreeSet;

use crate::docker::service::Listed;
use crate::docker::{Docker, DockerError, unreachable_or};
use crate::exit::{Exit, Failure};
pub use crate::model::orphan::Fate;
use crate::model::project::ProjectConfig;
use crate::report::Reporter;

pub struct Orphans {
    containers: Vec<Listed>,
    /// `--remove-orphans`.
    asked_to_remove: bool,
}

impl Orphans {
    /// Not looked for: nothing to say about them, nothing to do.
    pub fn unknown() -> Orphans {
        Orphans {
            containers: Vec::new(),
            asked_to_remove: false,
        }
    }

    /// The project's containers whose service the compose file does not have. A service that is
    /// only under an inactive profile is still in the file: its containers are not orphans (as in
    /// Compose).
    pub async fn find(
        docker: &Docker,
        config: &ProjectConfig,
        asked_to_remove: bool,
    ) -> Result<Orphans, Failure> {
        let listed = docker
            .project_containers(&config.name)
            .await
            .map_err(unreachable_or("listing the project's containers"))?;
        let mut containers: Vec<Listed> = listed
            .into_iter()
            .filter(|c| !config.services.contains_key(&c.service))
            .collect();
        if !containers.is_empty() {
            let every = every_service(docker).await?;
            containers.retain(|c| !every.contains(&c.service));
        }
        Ok(Orphans {
            containers,
            asked_to_remove,
        })
    }

    /// After the rollouts ended with `exit` (a dry run: after the plans): says what becomes of
    /// the orphans and, when asked and everything succeeded, removes them. The run's exit code:
    /// `exit`, or exit 3 when an orphan could not be removed.
    pub async fn settle(
        self,
        exit: Exit,
        interrupted: bool,
        dry_run: bool,
        docker: &Docker,
        reporter: &Reporter,
    ) -> Exit {
        if self.containers.is_empty() {
            return exit;
        }
        let fate = match (
            self.asked_to_remove,
            dry_run,
            exit == Exit::Done && !interrupted,
        ) {
            (false, _, _) => Fate::LeftAlone,
            (true, true, _) => Fate::WouldBeRemoved,
            (true, false, false) => Fate::KeptAfterFailure,
            (true, false, true) => return self.remove_all(exit, docker, reporter).await,
        };
        reporter.orphans(fate, &self.containers);
        exit
    }

    async fn remove_all(self, exit: Exit, docker: &Docker, reporter: &Reporter) -> Exit {
        let ids: Vec<String> = self.containers.iter().map(|c| c.id.clone()).collect();
        // `docker stop` waits out each container's grace period: say what is going on.
        reporter.info(&format!(
            "stopping and removing {} orphan container(s)",
            ids.len()
        ));
        match stop_and_remove(docker, &ids).await {
            Ok(()) => {
                reporter.orphans(Fate::Removed, &self.containers);
                exit
            }
            Err(error) => {
                reporter.orphans(Fate::NotRemoved, &self.containers);
                let why = error.last_stderr_line();
                reporter.warning(&format!(
                    "removing the orphans failed ({why}): fix: docker rm -f {}",
                    ids.join(" ")
                ));
                Exit::Incomplete
            }
        }
    }
}

/// Every service of the file, those under inactive profiles too (Compose's `config` leaves them
/// out unless their profile is enabled; `*` enables them all).
async fn every_service(docker: &Docker) -> Result<BTreeSet<String>, Failure> {
    let output = docker
        .run(docker.every_service())
        .await
        .map_err(unreachable_or(
            "asking Compose for the services of every profile",
        ))?;
    Ok(output.stdout.lines().map(|l| l.trim().to_owned()).collect())
}

/// `docker stop` (each container's own grace period, no `-t`), then `docker rm`.
async fn stop_and_remove(docker: &Docker, ids: &[String]) -> Result<(), DockerError> {
    docker.run(docker.stop(ids)).await?;
    docker.run(docker.remove(ids, false)).await?;
    Ok(())
}

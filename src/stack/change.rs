//! Pure change detection: does a service's running state differ from what the file wants?
//! The config hash Compose would give new containers against each running container's label, the
//! number running against `deploy.replicas`, and the image id the containers run against the id
//! the service's image reference points at now (a rebuilt `:latest` keeps its name, not its id).

use crate::docker::image::ImageId;
use crate::model::container::Container;
use crate::model::project::ServiceConfig;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Rolled; why.
    Changed(String),
    Unchanged,
    /// The file wants no container (`deploy.replicas: 0`): never started by a stack rollout.
    NotWanted,
}

pub fn detect(
    config: &ServiceConfig,
    wanted_hash: Option<&str>,
    image: &ImageId,
    containers: &[Container],
) -> Verdict {
    let wanted = config.replicas.unwrap_or(1);
    if wanted == 0 {
        return Verdict::NotWanted;
    }
    let running: Vec<&Container> = containers.iter().filter(|c| c.is_running()).collect();
    if running.is_empty() {
        return Verdict::Changed(format!("not running, the file wants {wanted}"));
    }
    if let Some(hash) = wanted_hash
        && running.iter().any(|c| c.config_hash != hash)
    {
        return Verdict::Changed("its configuration changed".into());
    }
    if let Some(replicas) = config.replicas
        && running.len() as u32 != replicas
    {
        return Verdict::Changed(format!(
            "{} running, deploy.replicas is {replicas}",
            running.len()
        ));
    }
    match image {
        ImageId::Known(id) if running.iter().any(|c| &c.image != id) => {
            Verdict::Changed("its image changed (same reference, new image id)".into())
        }
        ImageId::Missing => Verdict::Changed("its image is not on the engine yet".into()),
        _ => Verdict::Unchanged,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::container::{Health, State};

    /// `"running:h1:img1"` = state, config hash, image id.
    fn container(spec: &str) -> Container {
        let parts: Vec<&str> = spec.split(':').collect();
        Container {
            id: spec.into(),
            name: "p-web-1".into(),
            number: 1,
            state: if parts[0] == "running" {
                State::Running
            } else {
                State::Exited
            },
            exit_code: 0,
            health: Health::Healthy,
            config_hash: parts[1].into(),
            image: parts[2].into(),
            created: String::new(),
            healthcheck: None,
            last_check_output: None,
            addresses: Vec::new(),
            published: Vec::new(),
        }
    }

    #[test]
    fn detects_changes() {
        let known = ImageId::Known("img1".into());
        // (replicas, containers, image, expected: "changed" / "unchanged" / "not wanted")
        let cases: &[(Option<u32>, &[&str], &ImageId, &str)] = &[
            (None, &["running:h1:img1"], &known, "unchanged"),
            (None, &["running:h0:img1"], &known, "changed"),
            // One outdated container among current ones is enough.
            (
                None,
                &["running:h1:img1", "running:h0:img1"],
                &known,
                "changed",
            ),
            // A rebuilt image under the same tag.
            (None, &["running:h1:img0"], &known, "changed"),
            (None, &["running:h1:img1"], &ImageId::Missing, "changed"),
            (None, &["running:h1:img0"], &ImageId::Unknown, "unchanged"),
            // Nothing running while the file wants one; an exited container does not count.
            (None, &[], &known, "changed"),
            (None, &["exited:h1:img1"], &known, "changed"),
            (Some(0), &[], &known, "not wanted"),
            (Some(0), &["running:h0:img0"], &known, "not wanted"),
            // The count is compared only when deploy.replicas says it.
            (Some(2), &["running:h1:img1"], &known, "changed"),
            (
                Some(2),
                &["running:h1:img1", "running:h1:img1"],
                &known,
                "unchanged",
            ),
            (
                None,
                &["running:h1:img1", "running:h1:img1"],
                &known,
                "unchanged",
            ),
        ];
        for (replicas, specs, image, expected) in cases {
            let config = ServiceConfig {
                replicas: *replicas,
                ..ServiceConfig::default()
            };
            let containers: Vec<Container> = specs.iter().map(|s| container(s)).collect();
            let verdict = match detect(&config, Some("h1"), image, &containers) {
                Verdict::Changed(_) => "changed",
                Verdict::Unchanged => "unchanged",
                Verdict::NotWanted => "not wanted",
            };
            assert_eq!(verdict, *expected, "{replicas:?} {specs:?} {image:?}");
        }
    }
}

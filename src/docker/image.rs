//! What an image reference points at now: one batched `docker image inspect`.

use std::collections::BTreeMap;

use super::{Docker, DockerError};

/// What is known about a service's image on the engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageId {
    /// The id the image reference points at now.
    Known(String),
    /// The reference is not on the engine: Compose will pull or build it.
    Missing,
    /// The engine's answer could not be matched to the reference.
    Unknown,
}

impl Docker {
    /// The ids of `references`, in one call. The CLI prints one id per found reference, in order,
    /// and names each missing one on stderr (`No such image: REF`) with a non-zero exit.
    pub async fn image_ids(&self, references: &[String]) -> BTreeMap<String, ImageId> {
        if references.is_empty() {
            return BTreeMap::new();
        }
        let mut args: Vec<String> = ["image", "inspect", "--format", "{{.Id}}", "--"]
            .map(String::from)
            .into();
        args.extend(references.iter().cloned());
        let (stdout, stderr) = match self.run(self.docker(args)).await {
            Ok(output) => (output.stdout, String::new()),
            Err(DockerError::Failed { stdout, stderr, .. }) => (stdout, stderr),
            Err(DockerError::Spawn { .. }) => (String::new(), String::new()),
        };
        match_ids(references, &stdout, &stderr)
    }
}

fn match_ids(references: &[String], stdout: &str, stderr: &str) -> BTreeMap<String, ImageId> {
    let missing = |reference: &str| {
        stderr.lines().any(|line| {
            line.trim_end()
                .ends_with(&format!("No such image: {reference}"))
        })
    };
    let found: Vec<&String> = references.iter().filter(|r| !missing(r)).collect();
    let ids: Vec<&str> = stdout.split_whitespace().collect();
    let matched = ids.len() == found.len();
    references
        .iter()
        .map(|reference| {
            let id = if missing(reference) {
                ImageId::Missing
            } else if matched {
                let index = found.iter().position(|f| *f == reference).unwrap_or(0);
                ImageId::Known(ids[index].to_owned())
            } else {
                ImageId::Unknown
            };
            (reference.clone(), id)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_ids_to_references_around_missing_ones() {
        let refs = ["a:1", "b:2", "c:3"].map(String::from);
        let ids = match_ids(&refs, "sha256:a\nsha256:c\n", "Error: No such image: b:2\n");
        assert_eq!(ids["a:1"], ImageId::Known("sha256:a".into()));
        assert_eq!(ids["b:2"], ImageId::Missing);
        assert_eq!(ids["c:3"], ImageId::Known("sha256:c".into()));
        let unmatched = match_ids(&refs, "sha256:a\n", "");
        assert_eq!(unmatched["c:3"], ImageId::Unknown);
    }
}

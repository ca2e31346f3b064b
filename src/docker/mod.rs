//! Everything that talks to Docker: one command builder, and parsers for what Docker answers.

pub mod command;
pub mod compose;
pub mod container;
pub mod events;
pub mod globals;
pub mod host_verbs;
pub mod image;
pub mod lock_verbs;
pub mod podman;
pub mod service;
pub mod swarm_verbs;
pub mod verbs;

pub use command::{Docker, DockerError};

use crate::exit::Failure;

/// A failed docker call before anything changed, as the user's error (exit 2): an unreachable
/// daemon says how to point at one; anything else says what was being done.
pub fn unreachable_or(doing: &'static str) -> impl Fn(DockerError) -> Failure {
    move |error| {
        if error.is_daemon_unreachable() {
            let why = error
                .stderr()
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_owned();
            Failure::usage(format!(
                "cannot reach the Docker daemon ({why}): start it, or check DOCKER_HOST / --host / --context"
            ))
        } else {
            Failure::usage(format!("{doing} failed: {error}"))
        }
    }
}

//! The engine the end-to-end tests drive: the machine's Docker engine, or (tests/podman.rs)
//! Podman through its Docker-compatible API socket, which tests/setup-podman.sh runs. Every
//! command the harness starts, the tool included, gets the chosen engine's environment.

use std::sync::OnceLock;

/// Where tests/setup-podman.sh runs `podman system service`.
#[allow(dead_code)] // tests/podman.rs only
pub const PODMAN_SOCKET: &str = "unix:///run/reroll-podman/podman.sock";

static ENV: OnceLock<Vec<(String, String)>> = OnceLock::new();

/// From now on, in this test binary, `docker` means Podman's API socket.
#[allow(dead_code)] // tests/podman.rs only
pub fn use_podman() {
    let _ = ENV.set(vec![("DOCKER_HOST".to_owned(), PODMAN_SOCKET.to_owned())]);
}

pub fn is_podman() -> bool {
    ENV.get().is_some()
}

/// The environment every command gets: empty for the machine's Docker.
pub fn env() -> impl Iterator<Item = (&'static str, &'static str)> {
    ENV.get()
        .into_iter()
        .flatten()
        .map(|(key, value)| (key.as_str(), value.as_str()))
}

/// The setup scripts work on Docker's own store (and start Podman's socket themselves).
pub const DOCKER_ITSELF: [(&str, &str); 1] = [("DOCKER_HOST", "")];

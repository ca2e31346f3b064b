//! The engine the end-to-end tests drive: the machine's Docker engine, or (tests/podman.rs,
//! tests/podman_compose.rs) Podman, which tests/setup-podman.sh runs with its Docker-compatible
//! API socket. Every command the harness starts, the tool included, gets the chosen engine's
//! environment: the harness itself always looks through Docker's CLI (on Podman, through the
//! socket, which shows the same containers as Podman's CLI).

use std::sync::OnceLock;

/// Where tests/setup-podman.sh runs `podman system service`.
pub const PODMAN_SOCKET: &str = "unix:///run/reroll-podman/podman.sock";

/// How the tool reaches Podman.
#[allow(dead_code)] // tests/podman.rs names DockerApi
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// Docker's CLI and Compose v2 against Podman's socket.
    DockerApi,
    /// Podman's own CLI and podman-compose (`DOCKER_REROLL_ENGINE=podman`).
    PodmanCompose,
}

static ROUTE: OnceLock<(Route, Vec<(&'static str, &'static str)>)> = OnceLock::new();

/// From now on, in this test binary, the tests run on Podman by `route`.
pub fn use_podman(route: Route) {
    let mut env = vec![("DOCKER_HOST", PODMAN_SOCKET)];
    if route == Route::PodmanCompose {
        env.push(("DOCKER_REROLL_ENGINE", "podman"));
    }
    let _ = ROUTE.set((route, env));
}

/// The Podman route, if this test binary runs on Podman.
pub fn route() -> Option<Route> {
    ROUTE.get().map(|(route, _)| *route)
}

pub fn is_podman() -> bool {
    route().is_some()
}

/// The environment every command gets: empty for the machine's Docker.
pub fn env() -> impl Iterator<Item = (&'static str, &'static str)> {
    ROUTE
        .get()
        .into_iter()
        .flat_map(|(_, env)| env.iter().copied())
}

/// The setup scripts work on Docker's own store (and start Podman's socket themselves).
pub const DOCKER_ITSELF: [(&str, &str); 1] = [("DOCKER_HOST", "")];

//! Which CLI this run drives when the engine is Podman: set once by the engine choice, read by
//! the adapter (label filters) and by the health pump.

use std::sync::atomic::{AtomicBool, Ordering};

/// Whether this run drives Podman's own CLI and podman-compose.
static PODMAN_CLI: AtomicBool = AtomicBool::new(false);

/// Set before any rollout (by the engine choice, and again if the compose file's `x-reroll:
/// engine` picks the other route): `docker` means Podman's own CLI in this run.
pub fn use_podman_cli(podman: bool) {
    PODMAN_CLI.store(podman, Ordering::Relaxed);
}

/// Whether `docker` means Podman's own CLI in this run.
pub fn podman_cli() -> bool {
    PODMAN_CLI.load(Ordering::Relaxed)
}

/// Compose v1 and v2 label their containers `com.docker.compose.oneoff`, podman-compose does not.
pub fn compose_labels_oneoff() -> bool {
    !podman_cli()
}

/// Podman's CLI: `DOCKER_REROLL_PODMAN`, else `podman` from PATH.
pub fn podman_program() -> String {
    std::env::var("DOCKER_REROLL_PODMAN")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "podman".to_owned())
}

pub fn on_path(program: &str) -> bool {
    if program.contains('/') {
        return std::path::Path::new(program).is_file();
    }
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

//! Support for the end-to-end tests: a real Docker engine, the examples in `examples/`, a proxy
//! under load, and the built `docker-reroll` binary. One concern per module.

pub mod census;
pub mod cmd;
pub mod containers;
pub mod engine;
pub mod http;
pub mod load;
pub mod plugin;
#[allow(dead_code)] // tests/podman.rs and tests/podman_compose.rs
pub mod podman;
pub mod preflight;
pub mod readme;
pub mod releases;
pub mod scenario;
#[allow(dead_code)] // tests/multi_host.rs
pub mod second_engine;
pub mod steps;
pub mod tool;

use std::io::Write;

/// Prints past the test harness's output capture, so that measurements and warnings show in a
/// passing run too (`eprintln!` output is only shown for failing tests).
pub fn report(line: &str) {
    let _ = writeln!(std::io::stderr(), "[e2e] {line}");
}

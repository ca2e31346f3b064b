//! Broken and slow releases of the demo app, as `compose.override.yaml` files that Compose merges
//! into the example: made without touching the example.

/// Release b, which waits 6 s before serving: it stays `starting` long enough for a test to
/// interrupt the tool while it waits for health (the start period keeps failed checks from
/// turning it `unhealthy`).
pub const SLOW_START: &str = r#"
services:
  app:
    entrypoint: ["sh", "-c", "sleep 6 && exec \"$$@\"", "--"]
    healthcheck:
      start_period: 60s
"#;

/// A release whose health endpoint never passes (it starts with the drain marker) and, within its
/// start period, never fails either: Docker keeps it `starting` until the tool's health timeout,
/// and the proxy never routes to it.
pub const NEVER_HEALTHY: &str = r#"
services:
  app:
    entrypoint: ["sh", "-c", "touch /.dead && exec \"$$@\"", "--"]
    healthcheck:
      start_period: 1h
"#;

/// A release whose container exits as soon as it starts.
pub const EXITS_AT_START: &str = r#"
services:
  app:
    command: ["sh", "-c", "echo cannot start >&2; exit 3"]
"#;

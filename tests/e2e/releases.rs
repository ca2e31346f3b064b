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

/// [`SLOW_START`] in batches of one.
pub fn slow_start_one_at_a_time() -> String {
    format!("{SLOW_START}    deploy:\n      update_config:\n        parallelism: 1\n")
}

/// A release that runs but never serves, so its health check never passes and, within its start
/// period, never fails either: Docker keeps it `starting` until the tool's health timeout, and the
/// proxy never routes to it. (Not a drain marker made at start: the example's command removes it.)
pub const NEVER_HEALTHY: &str = r#"
services:
  app:
    command: ["sh", "-c", "echo never serving >&2; exec sleep 100000"]
    healthcheck:
      start_period: 1h
"#;

/// A release whose container exits as soon as it starts.
pub const EXITS_AT_START: &str = r#"
services:
  app:
    command: ["sh", "-c", "echo cannot start >&2; exit 3"]
"#;

/// Batches of one (`deploy.update_config.parallelism: 1`), in the default order, start-first.
pub const ONE_AT_A_TIME: &str = r#"
services:
  app:
    deploy:
      update_config:
        parallelism: 1
"#;

/// [`ONE_AT_A_TIME`], and one replica more than the two the scenario starts with.
pub const THREE_REPLICAS_ONE_AT_A_TIME: &str = r#"
services:
  app:
    deploy:
      replicas: 3
      update_config:
        parallelism: 1
"#;

/// Batches of one that roll everything back on a failure, and a release whose first container is
/// healthy and no later one is: each claims the project's volume `shared` as it starts (busybox
/// `mkdir` is atomic) and only the one that got it serves; the others run without serving, so
/// they turn `unhealthy` after two checks and the proxy never routes to them.
pub const ONLY_THE_FIRST_NEW_CONTAINER_SERVES: &str = r#"
services:
  app:
    entrypoint: ["sh", "-c", "mkdir /shared/claimed && exec \"$$@\"; echo /shared is claimed: not serving >&2; exec sleep 100000", "--"]
    volumes:
      - shared:/shared
    deploy:
      update_config:
        parallelism: 1
        failure_action: rollback
volumes:
  shared:
"#;

/// The app publishing a fixed loopback host port, which two containers cannot share; with
/// `stop_first`, in the order that lets it roll anyway (`deploy.update_config.order: stop-first`).
pub fn fixed_host_port(port: u16, stop_first: bool) -> String {
    let mut yaml = format!(
        r#"
services:
  app:
    ports:
      - "127.0.0.1:{port}:80"
"#
    );
    if stop_first {
        yaml.push_str(
            r#"    deploy:
      update_config:
        order: stop-first
"#,
        );
    }
    yaml
}

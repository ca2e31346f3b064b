//! Installing the built binary as a Docker CLI plugin in a private Docker config directory.

use std::path::Path;
use std::time::Duration;

use super::cmd::{command, run};
use super::tool;

/// Puts the built binary, and Compose, into `config/cli-plugins`: with DOCKER_CONFIG set, that
/// is where the docker CLI looks for plugins (besides the system directories).
pub fn install_plugins(config: &Path) {
    let plugins = config.join("cli-plugins");
    std::fs::create_dir_all(&plugins).expect("cannot create cli-plugins");
    std::fs::copy(tool::BINARY, plugins.join("docker-reroll")).expect("cannot install the plugin");
    let home = std::env::var("HOME").unwrap_or_default();
    let user_config = std::env::var("DOCKER_CONFIG").unwrap_or(format!("{home}/.docker"));
    let compose = [
        format!("{user_config}/cli-plugins/docker-compose"),
        "/usr/local/lib/docker/cli-plugins/docker-compose".into(),
        "/usr/libexec/docker/cli-plugins/docker-compose".into(),
        "/usr/lib/docker/cli-plugins/docker-compose".into(),
    ]
    .into_iter()
    .find(|p| Path::new(p).exists());
    if let Some(compose) = compose {
        std::os::unix::fs::symlink(compose, plugins.join("docker-compose"))
            .expect("cannot link the compose plugin");
    }
}

/// Creates a Docker context in the config directory `config`; with `current`, makes it the one the
/// CLI uses when given no `--context`.
pub async fn create_context(config: &Path, name: &str, host: &str, current: bool) {
    let config_env = [("DOCKER_CONFIG", config.to_str().expect("path not UTF-8"))];
    let endpoint = format!("host={host}");
    let mut steps = vec![vec!["context", "create", name, "--docker", &endpoint]];
    if current {
        steps.push(vec!["context", "use", name]);
    }
    for args in steps {
        let cmd = command("docker", &args, Path::new("/"), &config_env);
        let done = run(cmd, Duration::from_secs(60)).await;
        assert!(
            done.success(),
            "docker {}: {}",
            args.join(" "),
            done.transcript()
        );
    }
}

//! A second Docker engine that a test starts itself, to be a second host: its own socket, data
//! root, exec root, pidfile and containerd namespace, `--iptables=false`, and its own bridge with a
//! non-overlapping address pool. Stopped and removed when dropped, pass or fail; it is the only
//! engine a test ever stops.
//!
//! Its bridge is one the test creates (`--bridge NAME`), never `--bridge none`: a dockerd without
//! a bridge deletes the interface `docker0`, which belongs to the machine's engine.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::cmd::{Finished, command, run};
use super::report;

pub struct SecondEngine {
    /// `unix:///…/docker.sock`
    pub host: String,
    dir: TempDir,
    bridge: String,
    dockerd: Option<Child>,
    /// `docker_gwbridge`, made by this engine's `swarm init` in the host's namespace.
    gwbridge: bool,
}

impl SecondEngine {
    /// Starts the engine and copies `images` into it with `docker save | docker load`.
    pub async fn start(images: &[&str]) -> SecondEngine {
        let dir = tempfile::Builder::new()
            .prefix("reroll-e2e-dockerd-")
            .tempdir()
            .expect("cannot create a temporary directory");
        let pid = std::process::id();
        let bridge = format!("rre2e{}", pid % 1_000_000);
        let subnet = pid % 200 + 20;
        let host = format!("unix://{}", dir.path().join("docker.sock").display());
        let driver = machine_storage_driver().await;
        root_command(&["ip", "link", "add", &bridge, "type", "bridge"]);
        root_command(&[
            "ip",
            "addr",
            "add",
            &format!("10.199.{subnet}.1/24"),
            "dev",
            &bridge,
        ]);
        root_command(&["ip", "link", "set", &bridge, "up"]);
        std::fs::write(dir.path().join("daemon.json"), "{}").expect("cannot write daemon.json");
        let log = std::fs::File::create(dir.path().join("dockerd.log")).expect("no log file");
        let namespace = format!("reroll-e2e-{pid}");
        let path = |name: &str| dir.path().join(name).display().to_string();
        let dockerd = std::process::Command::new("dockerd")
            .args(["--config-file", &path("daemon.json")])
            .args(["--host", &host])
            .args(["--data-root", &path("data")])
            .args(["--exec-root", &path("exec")])
            .args(["--pidfile", &path("docker.pid")])
            .args(["--iptables=false", "--ip6tables=false"])
            .args(["--bridge", &bridge])
            .args([
                "--default-address-pool",
                &format!("base=10.198.{subnet}.0/24,size=28"),
            ])
            .args(["--storage-driver", &driver])
            .args(["--containerd-namespace", &namespace])
            .args([
                "--containerd-plugins-namespace",
                &format!("{namespace}-plugins"),
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("no log file"))
            .stderr(log)
            .spawn()
            .expect("cannot start dockerd");
        let engine = SecondEngine {
            host,
            dir,
            bridge,
            dockerd: Some(dockerd),
            gwbridge: false,
        };
        engine.wait_until_up().await;
        let started = Instant::now();
        for image in images {
            engine.copy_image(image).await;
        }
        report(&format!(
            "second engine at {} up, {} image(s) copied in {:.1}s",
            engine.host,
            images.len(),
            started.elapsed().as_secs_f64()
        ));
        engine
    }

    async fn wait_until_up(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let info = self
                .docker(&["info", "--format", "{{.ServerVersion}}"])
                .await;
            if info.success() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the second dockerd did not come up:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// `docker save IMAGE | docker -H SECOND load`
    pub async fn copy_image(&self, image: &str) {
        let script = format!(
            "docker save {} | DOCKER_HOST={} docker load",
            shell_words::quote(image),
            shell_words::quote(&self.host)
        );
        let copied = run(
            command("sh", ["-c", &script], Path::new("/"), &[]),
            Duration::from_secs(180),
        )
        .await;
        assert!(copied.success(), "copying {image}: {}", copied.transcript());
    }

    /// `docker ARGS` against this engine.
    pub async fn docker(&self, args: &[&str]) -> Finished {
        run(
            command(
                "docker",
                args,
                Path::new("/"),
                &[("DOCKER_HOST", &self.host)],
            ),
            Duration::from_secs(120),
        )
        .await
    }

    pub async fn docker_ok(&self, args: &[&str]) -> String {
        let done = self.docker(args).await;
        assert!(
            done.success(),
            "docker {} on the second engine: {}",
            args.join(" "),
            done.transcript()
        );
        done.stdout
    }

    /// A single-node Swarm on this engine (never on the machine's), its overlay networks from a
    /// pool of their own. Its `docker_gwbridge` is removed with the engine.
    pub async fn swarm_init(&mut self) {
        let exists = std::process::Command::new("ip")
            .args(["link", "show", "docker_gwbridge"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            !exists,
            "docker_gwbridge exists already: another Swarm runs on this machine"
        );
        let pool = format!("10.197.{}.0/24", std::process::id() % 200 + 20);
        self.gwbridge = true;
        self.docker_ok(&[
            "swarm",
            "init",
            "--advertise-addr",
            "127.0.0.1",
            "--default-addr-pool",
            &pool,
            "--default-addr-pool-mask-length",
            "28",
        ])
        .await;
    }

    /// Stops the engine (SIGTERM to the dockerd this test started, SIGKILL after 30 s).
    pub fn stop(&mut self) {
        let Some(mut dockerd) = self.dockerd.take() else {
            return;
        };
        let _ = std::process::Command::new("kill")
            .args(["-TERM", "--", &dockerd.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = dockerd.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = dockerd.kill();
        let _ = dockerd.wait();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default()
    }

    fn mounts_under(&self) -> Vec<PathBuf> {
        let root = self.dir.path().to_string_lossy().into_owned();
        let mut mounts: Vec<PathBuf> = std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter_map(|line| line.split(' ').nth(4))
            .filter(|mount| mount.starts_with(&root))
            .map(PathBuf::from)
            .collect();
        // Deepest first.
        mounts.sort_by_key(|m| std::cmp::Reverse(m.components().count()));
        mounts
    }
}

impl Drop for SecondEngine {
    fn drop(&mut self) {
        self.stop();
        for mount in self.mounts_under() {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&mount)
                .stderr(Stdio::null())
                .status();
        }
        root_command(&["ip", "link", "del", &self.bridge]);
        if self.gwbridge {
            root_command(&["ip", "link", "del", "docker_gwbridge"]);
        }
    }
}

fn root_command(args: &[&str]) {
    let status = std::process::Command::new(args[0])
        .args(&args[1..])
        .stderr(Stdio::null())
        .status();
    if !matches!(status, Ok(s) if s.success()) {
        report(&format!("WARNING: `{}` failed: {status:?}", args.join(" ")));
    }
}

/// The machine engine's storage driver, so that the second one can run here too (this machine
/// needs fuse-overlayfs).
async fn machine_storage_driver() -> String {
    let info = run(
        command(
            "docker",
            ["info", "--format", "{{.Driver}}"],
            Path::new("/"),
            &[],
        ),
        Duration::from_secs(30),
    )
    .await;
    let driver = info.stdout.trim();
    if info.success() && !driver.is_empty() {
        driver.to_owned()
    } else {
        "vfs".to_owned()
    }
}

//! End-to-end proof beyond one host: the lock on the engine (two runs from two state directories
//! against one engine), and a rollout over two hosts, the machine's engine and a second dockerd
//! the test starts itself (and only that one is ever stopped).
//!
//! Needs what tests/e2e.rs needs, and root (to run dockerd and make its bridge).

#[path = "e2e/mod.rs"]
#[allow(dead_code)] // shared with tests/e2e.rs, which uses the rest
mod harness;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

use harness::cmd::{Finished, command, docker_ok, run};
use harness::load::Load;
use harness::plugin::{create_context, install_plugins};
use harness::preflight::{begin, project_name};
use harness::releases::SLOW_START;
use harness::report;
use harness::scenario::{APP, Scenario};
use harness::second_engine::SecondEngine;
use harness::steps::{
    LOAD_LIMIT, ROLL_LIMIT, SETTLE, VERSION_B, assert_exit, assert_no_failures, documented_args,
    strs,
};
use harness::tool;

const LOCK_LABEL: &str = "io.docker-reroll.lock";

/// Two runs against one engine from two state directories (so the file lock cannot see one
/// another): the second is refused with exit 2 naming the holder, a third with --lock-wait
/// waits and then rolls, all under load with no failed request; then a lock whose holder is gone
/// (its pid dead on this host; another host's lease run out) is recognised, said so, and taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_lock_keeps_two_runs_apart_waits_and_takes_over_stale_locks() {
    let Some(_machine) = begin().await else {
        return;
    };
    let scenario = Scenario::start("haproxy", "enginelock", 2).await;
    scenario.write_override(SLOW_START);
    let lock = format!("reroll-lock-{}", scenario.project);
    let first_state = TempDir::new().unwrap();
    let second_state = TempDir::new().unwrap();
    let args = documented_args(&scenario);
    let mut env = scenario.env();
    env.extend(VERSION_B);
    let (first_dir, second_dir) = (
        first_state.path().to_str().unwrap(),
        second_state.path().to_str().unwrap(),
    );
    let with_state = |dir| with_state_dir(&env, dir);

    let load = Load::start(scenario.addr(), LOAD_LIMIT);
    tokio::time::sleep(SETTLE).await;
    let first = tool::spawn(scenario.dir(), &strs(&args), &with_state(first_dir));
    let holder_pid = first.pid;
    wait_for_container(&lock, Duration::from_secs(30)).await;

    let refused = tool::run(
        scenario.dir(),
        &strs(&args),
        &with_state(second_dir),
        ROLL_LIMIT,
    )
    .await;
    assert_exit(
        &refused,
        2,
        "a second run while the first holds the engine lock",
    );
    assert!(
        refused.stderr.contains(&format!(
            "is locked on the engine by another docker-reroll (pid {holder_pid} on host"
        )) && refused.stderr.contains("--lock-wait"),
        "the refusal names the holder and the fix:\n{}",
        refused.transcript()
    );
    // The holder's lease, refreshed inside the lock container.
    let lease = docker_ok(
        &["cp", "--", &format!("{lock}:/lease"), "-"],
        Path::new("/"),
    )
    .await;
    let refreshed: u64 = lease
        .get(512..)
        .and_then(|text| text.trim_matches('\0').trim().parse().ok())
        .unwrap_or_else(|| panic!("no lease in the lock: {lease:?}"));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        now.abs_diff(refreshed) < 30,
        "a stale lease: {refreshed} vs {now}"
    );

    let mut waiting_args = strs(&args);
    waiting_args.extend(["--lock-wait", "2m"]);
    let waiting = tool::spawn(scenario.dir(), &waiting_args, &with_state(second_dir));
    let first = first.finish(ROLL_LIMIT).await;
    let first_done = Instant::now();
    let waited = waiting.finish(ROLL_LIMIT).await;
    tokio::time::sleep(SETTLE).await;
    let tally = load.stop().await;
    assert_exit(&first, 0, "the lock's first holder");
    assert_exit(&waited, 0, "the run that waited for the lock");
    assert!(
        waited.stderr.contains("waiting up to 2m0s")
            && waited.stderr.contains(&format!("took the lock {lock}")),
        "{}",
        waited.transcript()
    );
    assert!(
        waited.elapsed > first.elapsed / 2 && Instant::now() >= first_done,
        "the waiting run ended before the holder"
    );
    assert_no_failures(&scenario, &tally, "two runs kept apart by the engine lock").await;
    report(&format!(
        "engine lock: first run {:.1}s, the waiting one {:.1}s (started while the first held it); load: {tally}",
        first.elapsed.as_secs_f64(),
        waited.elapsed.as_secs_f64()
    ));
    assert_no_container(&lock).await;

    // A holder that died on this host (a pid that is gone); a holder on another host that
    // stopped refreshing its lease 100 s ago; a live one there, within its lease.
    let dead = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = dead.id();
    let _ = dead.wait_with_output();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let host = host.trim();
    let dead_here =
        format!("is stale: its holder, pid {dead_pid} on this host ({host}), is no longer running");
    let cases = [
        (host, dead_pid, 0, 0, vec![dead_here.as_str()]),
        (
            "elsewhere",
            1,
            100,
            0,
            vec![
                "is stale: its lease of 30s ran out",
                "pid 1 on host elsewhere",
            ],
        ),
        (
            "elsewhere",
            1,
            0,
            2,
            vec!["is locked on the engine by another"],
        ),
    ];
    for (holder_host, pid, age, code, said) in cases {
        fake_lock(&lock, &scenario.project, holder_host, pid, age, 30).await;
        let run = tool::run(
            scenario.dir(),
            &strs(&args),
            &with_state(second_dir),
            ROLL_LIMIT,
        )
        .await;
        let what = format!("a lock of pid {pid} on {holder_host}, {age}s old");
        assert_exit(&run, code, &what);
        for text in said {
            assert!(
                run.stderr.contains(text),
                "{what}: {text}\n{}",
                run.transcript()
            );
        }
    }
    docker_ok(&["rm", "--force", "--", &lock], Path::new("/")).await;
}

/// The first host is a barrier: it fails (its release never turns healthy there), it is rolled
/// back, and the second host is never touched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_first_host_leaves_every_other_host_untouched() {
    let Some(_machine) = begin().await else {
        return;
    };
    let hosts = TwoHosts::start("barrier", false).await;
    let before_one = hosts.app_on(ONE).await;
    let before_two = hosts.app_on(TWO).await;
    let finished = hosts.roll(&["--context", TWO, "--context", ONE], &[]).await;
    assert_exit(&finished, 1, "the first host failed");
    let table = hosts_finish(&finished);
    assert_eq!(state_of(&table, TWO), "failed", "{}", finished.transcript());
    assert_eq!(
        state_of(&table, ONE),
        "not_started",
        "{}",
        finished.transcript()
    );
    assert_eq!(
        hosts.app_on(ONE).await,
        before_one,
        "the second host was touched"
    );
    assert_eq!(
        hosts.app_on(TWO).await,
        before_two,
        "the first host was not rolled back"
    );
    assert!(
        finished.stderr.contains("not touched"),
        "{}",
        finished.transcript()
    );
    report(&format!(
        "barrier: first host failed and rolled back in {} ms; the second untouched; run {:.1}s",
        duration_of(&table, TWO),
        finished.elapsed.as_secs_f64()
    ));
}

/// Hosts go one at a time, pre-host and post-host commands around each; a later host fails,
/// and with --rollback-hosts the host already done goes back to the image it ran.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_roll_one_at_a_time_and_the_done_ones_roll_back_when_a_later_one_fails() {
    let Some(_machine) = begin().await else {
        return;
    };
    let hosts = TwoHosts::start("rollback", false).await;
    let hooks = hosts.dir.path().join("hooks.log");
    let hook = |what: &str| format!("sh -c 'echo {what} {{context}} >> {}'", hooks.display());
    let (pre, post) = (hook("pre"), hook("post"));
    let finished = hosts
        .roll(
            &[
                "--context",
                ONE,
                "--context",
                TWO,
                "--rollback-hosts",
                "--pre-host-cmd",
                &pre,
                "--post-host-cmd",
                &post,
            ],
            &[],
        )
        .await;
    assert_exit(&finished, 1, "the second host failed and was rolled back");
    let table = hosts_finish(&finished);
    assert_eq!(
        state_of(&table, ONE),
        "reverted",
        "{}",
        finished.transcript()
    );
    assert_eq!(state_of(&table, TWO), "failed", "{}", finished.transcript());
    let events = events(&finished);
    let at = |kind: &str, host: &str| {
        events
            .iter()
            .find(|e| e["event"] == kind && e["host"] == host)
            .and_then(|e| e["time_ms"].as_u64())
            .unwrap_or_else(|| panic!("no {kind} of {host}: {}", finished.transcript()))
    };
    assert!(
        at("host_finish", ONE) <= at("host_start", TWO),
        "hosts overlapped"
    );
    // Events of each host's own run come through with the host named.
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "finish" && e["host"] == TWO),
        "{}",
        finished.transcript()
    );
    assert_eq!(
        std::fs::read_to_string(&hooks).unwrap(),
        format!("pre {ONE}\npost {ONE}\npre {TWO}\n"),
        "the hooks ran around each host, and no post-host after a failure"
    );
    let busybox = image_id_on_main("busybox:1.36").await;
    let one = hosts.app_on(ONE).await;
    assert!(
        one.len() == 1 && one[0].1 == busybox,
        "host one is back on its old image {busybox}: {one:?}"
    );
    report(&format!(
        "rollback-hosts: {ONE} rolled then back in {} ms, {TWO} failed in {} ms",
        duration_of(&table, ONE),
        duration_of(&table, TWO)
    ));
}

/// Both hosts roll (time per host measured); then the second engine is stopped while its run
/// is under way: the first host stays finished on the new version, and the report says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_the_second_engine_mid_rollout_leaves_the_first_host_finished() {
    let Some(_machine) = begin().await else {
        return;
    };
    let mut hosts = TwoHosts::start("midstop", true).await;
    let both = hosts.roll(&["--context", ONE, "--context", TWO], &[]).await;
    assert_exit(&both, 0, "two good hosts");
    let table = hosts_finish(&both);
    report(&format!(
        "two hosts one at a time: {ONE} {} ms, {TWO} {} ms, whole run {:.1}s",
        duration_of(&table, ONE),
        duration_of(&table, TWO),
        both.elapsed.as_secs_f64()
    ));

    let image_b = hosts.image_b_id().await;
    let mut args: Vec<String> = ["--context", ONE, "--context", TWO, "--json"]
        .map(String::from)
        .to_vec();
    args.extend(["--wait-after-healthy", "6s", APP].map(String::from));
    let running = tool::spawn(
        hosts.dir.path(),
        &strs(&args),
        &hosts.env(&[("APP_VERSION", "c")]),
    );
    // Wait until the second host's run holds its lock there, then stop that engine.
    let lock = format!("reroll-lock-{}", hosts.project);
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let found = hosts
            .engine
            .docker(&["container", "inspect", "--", &lock])
            .await;
        if found.success() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the second host's run never started"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let stopped_at = Instant::now();
    hosts.engine.stop();
    report(&format!(
        "second engine stopped in {:.1}s",
        stopped_at.elapsed().as_secs_f64()
    ));
    let finished = running.finish(ROLL_LIMIT).await;
    assert!(!finished.success(), "{}", finished.transcript());
    let table = hosts_finish(&finished);
    assert_eq!(state_of(&table, ONE), "done", "{}", finished.transcript());
    assert_eq!(state_of(&table, TWO), "failed", "{}", finished.transcript());
    let one = hosts.app_on(ONE).await;
    assert!(
        one.len() == 1 && one[0].1 == image_b && one[0].2 == "running",
        "the first host serves the new version: {one:?}"
    );
    assert!(
        finished.stderr.contains("done: the new version serves"),
        "{}",
        finished.transcript()
    );
    report(&format!(
        "engine stopped mid-rollout: exit {:?}; {ONE} done in {} ms, {TWO} failed after {} ms: {}",
        finished.code,
        duration_of(&table, ONE),
        duration_of(&table, TWO),
        table
            .iter()
            .find(|h| h["host"] == TWO)
            .map(|h| h["note"].to_string())
            .unwrap_or_default()
    ));
}

const ONE: &str = "reroll-one";
const TWO: &str = "reroll-two";

/// A tiny service whose release b is healthy only where its image has `/ok`.
const COMPOSE: &str = r#"
services:
  app:
    image: busybox:1.36
    init: true
    environment:
      APP_VERSION: ${APP_VERSION:-a}
    command: ["sh", "-c", "echo $$APP_VERSION >/index.html; exec httpd -f -p 80 -h /"]
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1/index.html"]
      interval: 1s
      timeout: 1s
      retries: 2
"#;

/// The project on two engines: the machine's (context ONE) and a second dockerd (context TWO).
struct TwoHosts {
    project: String,
    image_b: String,
    dir: TempDir,
    config: TempDir,
    engine: SecondEngine,
}

impl TwoHosts {
    /// Version a on both; release b in `compose.override.yaml`, an image with `/ok` on the
    /// machine's engine and, unless `second_good`, a plain busybox under the same tag on the
    /// second, where it never turns healthy.
    async fn start(name: &str, second_good: bool) -> TwoHosts {
        let project = project_name(name);
        let image_b = format!("{project}:b");
        let here = Path::new("/");
        // Made without a build (no network needed): a file copied into a container, committed.
        let maker = format!("{project}-maker");
        docker_ok(&["create", "--name", &maker, "busybox:1.36", "true"], here).await;
        let ok = tempfile::NamedTempFile::new().unwrap();
        docker_ok(
            &["cp", ok.path().to_str().unwrap(), &format!("{maker}:/ok")],
            here,
        )
        .await;
        docker_ok(&["commit", &maker, &image_b], here).await;
        docker_ok(&["rm", &maker], here).await;
        let images: Vec<&str> = if second_good {
            vec!["busybox:1.36", &image_b]
        } else {
            vec!["busybox:1.36"]
        };
        let engine = SecondEngine::start(&images).await;
        if !second_good {
            engine.docker_ok(&["tag", "busybox:1.36", &image_b]).await;
        }
        let dir = TempDir::new().unwrap();
        let config = TempDir::new().unwrap();
        install_plugins(config.path());
        let main_host =
            std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into());
        create_context(config.path(), ONE, &main_host, false).await;
        create_context(config.path(), TWO, &engine.host, false).await;
        std::fs::write(dir.path().join("compose.yaml"), COMPOSE).unwrap();
        let hosts = TwoHosts {
            project,
            image_b,
            dir,
            config,
            engine,
        };
        for context in [ONE, TWO] {
            hosts
                .compose_ok(context, &["up", "--detach", "--wait"])
                .await;
        }
        std::fs::write(
            hosts.dir.path().join("compose.override.yaml"),
            format!(
                r#"
services:
  app:
    image: {}
    healthcheck:
      test: ["CMD", "sh", "-c", "test -e /ok && wget -q -O /dev/null http://127.0.0.1/index.html"]
"#,
                hosts.image_b
            ),
        )
        .unwrap();
        hosts
    }

    fn env<'a>(&'a self, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut env = vec![
            ("DOCKER_CONFIG", self.config.path().to_str().unwrap()),
            ("COMPOSE_PROJECT_NAME", self.project.as_str()),
        ];
        env.extend(extra);
        env
    }

    async fn compose_ok(&self, context: &str, args: &[&str]) {
        let mut all = vec!["--context", context, "compose"];
        all.extend(args);
        let done = run(
            command("docker", &all, self.dir.path(), &self.env(&[])),
            Duration::from_secs(180),
        )
        .await;
        assert!(
            done.success(),
            "compose on {context}: {}",
            done.transcript()
        );
    }

    /// `docker-reroll ARGS --json app` with release b.
    async fn roll(&self, args: &[&str], extra_env: &[(&str, &str)]) -> Finished {
        let mut all = args.to_vec();
        all.extend(["--json", "--healthcheck-timeout", "6s", APP]);
        tool::run(self.dir.path(), &all, &self.env(extra_env), ROLL_LIMIT).await
    }

    /// (id, image id, state) of each app container on a host.
    async fn app_on(&self, context: &str) -> Vec<(String, String, String)> {
        let filter = format!("label=com.docker.compose.project={}", self.project);
        let listed = run(
            command(
                "docker",
                [
                    "--context",
                    context,
                    "ps",
                    "--all",
                    "--quiet",
                    "--filter",
                    &filter,
                ],
                self.dir.path(),
                &self.env(&[]),
            ),
            Duration::from_secs(60),
        )
        .await;
        let mut found = Vec::new();
        for id in listed.stdout.split_whitespace() {
            let inspected = run(
                command(
                    "docker",
                    [
                        "--context",
                        context,
                        "inspect",
                        "--format",
                        "{{.Image}} {{.State.Status}}",
                        id,
                    ],
                    self.dir.path(),
                    &self.env(&[]),
                ),
                Duration::from_secs(60),
            )
            .await;
            let text = inspected.stdout.trim().to_owned();
            let (image, state) = text.split_once(' ').unwrap_or_default();
            found.push((id.to_owned(), image.to_owned(), state.to_owned()));
        }
        found
    }

    async fn image_b_id(&self) -> String {
        image_id_on_main(&self.image_b).await
    }
}

impl Drop for TwoHosts {
    fn drop(&mut self) {
        // The machine's engine: our project and our image, nothing else. The second engine
        // goes with its own Drop.
        let _ = std::process::Command::new("timeout")
            .args(["120", "docker", "compose", "--project-name", &self.project])
            .args(["down", "--volumes", "--timeout", "1"])
            .current_dir(self.dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
        let _ = std::process::Command::new("docker")
            .args(["rm", "--force", &format!("reroll-lock-{}", self.project)])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
        let _ = std::process::Command::new("docker")
            .args(["rmi", &self.image_b])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

async fn image_id_on_main(image: &str) -> String {
    docker_ok(
        &["image", "inspect", "--format", "{{.Id}}", image],
        Path::new("/"),
    )
    .await
    .trim()
    .to_owned()
}

fn events(finished: &Finished) -> Vec<Value> {
    finished
        .stdout
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

/// The `hosts` array of the run's `hosts_finish` event.
fn hosts_finish(finished: &Finished) -> Vec<Value> {
    events(finished)
        .into_iter()
        .find(|e| e["event"] == "hosts_finish")
        .and_then(|e| e["hosts"].as_array().cloned())
        .unwrap_or_else(|| panic!("no hosts_finish event:\n{}", finished.transcript()))
}

fn state_of(table: &[Value], host: &str) -> String {
    table
        .iter()
        .find(|h| h["host"] == host)
        .and_then(|h| h["state"].as_str())
        .unwrap_or("missing")
        .to_owned()
}

fn duration_of(table: &[Value], host: &str) -> u64 {
    table
        .iter()
        .find(|h| h["host"] == host)
        .and_then(|h| h["duration_ms"].as_u64())
        .unwrap_or(0)
}

/// Whether a container of that name exists on the machine's engine.
async fn container_exists(name: &str) -> bool {
    let args = ["container", "inspect", "--", name];
    run(
        command("docker", args, Path::new("/"), &[]),
        Duration::from_secs(30),
    )
    .await
    .success()
}

async fn wait_for_container(name: &str, limit: Duration) {
    let deadline = Instant::now() + limit;
    while !container_exists(name).await {
        assert!(Instant::now() < deadline, "{name} never appeared");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn assert_no_container(name: &str) {
    assert!(!container_exists(name).await, "{name} was left behind");
}

/// A lock container as another run would have made it, `age` seconds ago.
async fn fake_lock(name: &str, project: &str, host: &str, pid: u32, age: u64, lease: u64) {
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - age;
    let labels = [
        format!("{LOCK_LABEL}={project}"),
        format!("{LOCK_LABEL}.host={host}"),
        format!("{LOCK_LABEL}.pid={pid}"),
        format!("{LOCK_LABEL}.pid-start=0"),
        format!("{LOCK_LABEL}.started={started}"),
        format!("{LOCK_LABEL}.run-id=fake"),
        format!("{LOCK_LABEL}.lease-seconds={lease}"),
    ];
    let mut args = vec!["create", "--name", name, "--network", "none"];
    for label in &labels {
        args.extend(["--label", label]);
    }
    args.extend(["--", "docker-reroll-lock:1", "/lock"]);
    docker_ok(&args, Path::new("/")).await;
}

fn with_state_dir<'a>(env: &[(&'a str, &'a str)], dir: &'a str) -> Vec<(&'a str, &'a str)> {
    let mut env = env.to_vec();
    env.push(("DOCKER_REROLL_STATE_DIR", dir));
    env
}

/// HAProxy in front of a Swarm service, following its tasks through Swarm's DNS (`tasks.app`),
/// without retries, so that a request to a task that is going away fails and is counted.
const SWARM_HAPROXY: &str = r#"
defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s
    retries 0
resolvers swarm
    nameserver dns 127.0.0.11:53
    hold valid 500ms
    hold obsolete 0s
    timeout resolve 200ms
frontend web
    bind :80
    default_backend app
backend app
    option httpchk GET /index.html
    default-server inter 300ms fall 1 rise 1 check resolvers swarm init-addr none
    server-template app 6 tasks.app:80
"#;

/// The stack: two replicas of the app, and the proxy published on the node's port (`mode:
/// host`: the second engine runs without iptables, so without Swarm's ingress mesh). Swarm takes
/// a task out of its DNS before stopping it; the app keeps serving for its grace period (a
/// shell's httpd as PID 1 ignores SIGTERM), time for the proxy to re-resolve.
fn swarm_stack(port: u16) -> String {
    format!(
        r#"
services:
  app:
    image: busybox:1.36
    environment:
      APP_VERSION: ${{APP_VERSION:-a}}
    command: ["sh", "-c", "echo $$APP_VERSION >/index.html; exec httpd -f -p 80 -h /"]
    stop_grace_period: 3s
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1/index.html"]
      interval: 1s
      timeout: 1s
      retries: 2
    deploy:
      replicas: 2
  proxy:
    image: haproxy:2.6
    command: ["haproxy", "-W", "-db", "-f", "/cfg/haproxy.cfg"]
    configs:
      - source: haproxy
        target: /cfg/haproxy.cfg
    ports:
      - target: 80
        published: {port}
        mode: host
configs:
  haproxy:
    file: ./haproxy.cfg
"#
    )
}

/// `--swarm` on a single-node Swarm of a second dockerd (never the machine's engine): a stack
/// update under load fails no request, and a release whose image cannot start is rolled back by
/// Swarm itself, reported as exit 1, under load with no failed request either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swarm_updates_a_stack_under_load_and_rolls_back_a_bad_image() {
    let Some(_machine) = begin().await else {
        return;
    };
    let mut engine = SecondEngine::start(&["busybox:1.36", "haproxy:2.6"]).await;
    engine.swarm_init().await;
    let project = project_name("swarm");
    let port = harness::scenario::free_port();
    let dir = TempDir::new().unwrap();
    std::fs::write(dir.path().join("stack.yaml"), swarm_stack(port)).unwrap();
    std::fs::write(dir.path().join("haproxy.cfg"), SWARM_HAPROXY).unwrap();
    let bad = format!("{project}-bad:1");
    std::fs::write(
        dir.path().join("bad.yaml"),
        format!("services:\n  app:\n    image: {bad}\n"),
    )
    .unwrap();
    let maker = format!("{project}-maker");
    engine
        .docker_ok(&["create", "--name", &maker, "busybox:1.36", "true"])
        .await;
    engine
        .docker_ok(&[
            "commit",
            "--change",
            r#"ENTRYPOINT ["false"]"#,
            &maker,
            &bad,
        ])
        .await;
    engine.docker_ok(&["rm", &maker]).await;
    let stack = dir.path().join("stack.yaml");
    let stack = stack.to_str().unwrap();
    let env = [("DOCKER_HOST", engine.host.as_str())];
    let deployed = run(
        command(
            "docker",
            ["stack", "deploy", "--detach=true", "-c", stack, &project],
            dir.path(),
            &env,
        ),
        Duration::from_secs(120),
    )
    .await;
    assert!(deployed.success(), "{}", deployed.transcript());
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    wait_until_served(addr).await;

    // Without --swarm, Compose would start the service a second time beside Swarm's.
    let env = [("DOCKER_HOST", engine.host.as_str())];
    let args = ["-p", project.as_str(), "-f", "stack.yaml", "app"];
    let refused = tool::run(dir.path(), &args, &env, ROLL_LIMIT).await;
    assert_exit(&refused, 2, "a Swarm service rolled without --swarm");
    assert!(
        refused.stderr.contains("--swarm"),
        "{}",
        refused.transcript()
    );
    let compose_made = engine
        .docker_ok(&[
            "ps",
            "--all",
            "--quiet",
            "--filter",
            &format!("label=com.docker.compose.project={project}"),
        ])
        .await;
    assert_eq!(compose_made.trim(), "", "Compose containers beside Swarm's");

    let roll = |version: &'static str, release: &'static [&'static str]| {
        let dir = dir.path().to_owned();
        let project = project.clone();
        let host = engine.host.clone();
        async move {
            let mut args = vec!["--swarm", "--json", "-p", &project, "-f", "stack.yaml"];
            args.extend(release);
            let env = [("DOCKER_HOST", host.as_str()), ("APP_VERSION", version)];
            let load = Load::start(addr, LOAD_LIMIT);
            tokio::time::sleep(SETTLE).await;
            let finished = tool::run(&dir, &args, &env, ROLL_LIMIT).await;
            tokio::time::sleep(SETTLE).await;
            (finished, load.stop().await)
        }
    };
    let (updated, tally) = roll("b", &[]).await;
    assert_exit(&updated, 0, "a Swarm stack update");
    assert!(
        updated.stdout.contains(r#""state":"completed""#),
        "{}",
        updated.transcript()
    );
    assert!(tally.answered("b") > 0, "version b never answered: {tally}");
    report(&format!(
        "swarm update: tool {:.1}s; load: {tally}",
        updated.elapsed.as_secs_f64()
    ));
    assert!(
        tally.total >= 300 && tally.failed == 0,
        "{tally}\n{}",
        updated.transcript()
    );

    let (rolled_back, tally) = roll("c", &["-f", "bad.yaml"]).await;
    assert_exit(&rolled_back, 1, "a bad image, rolled back by Swarm");
    assert!(
        rolled_back
            .stdout
            .contains(r#""state":"rollback_completed""#),
        "{}",
        rolled_back.transcript()
    );
    assert_eq!(tally.answered("c"), 0, "the bad release answered: {tally}");
    let image = engine
        .docker_ok(&[
            "service",
            "inspect",
            "--format",
            "{{.Spec.TaskTemplate.ContainerSpec.Image}}",
            &format!("{project}_app"),
        ])
        .await;
    assert!(
        image.starts_with("busybox:1.36"),
        "not rolled back: {image}"
    );
    report(&format!(
        "swarm rollback of a bad image: tool {:.1}s; load: {tally}",
        rolled_back.elapsed.as_secs_f64()
    ));
    assert!(
        tally.total >= 300 && tally.failed == 0,
        "{tally}\n{}",
        rolled_back.transcript()
    );
}

async fn wait_until_served(addr: std::net::SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut in_a_row = 0;
    while in_a_row < 10 {
        assert!(
            Instant::now() < deadline,
            "the Swarm proxy at {addr} does not serve"
        );
        match tokio::time::timeout(Duration::from_secs(1), harness::http::get_once(addr)).await {
            Ok(Ok(response)) if response.status == 200 => in_a_row += 1,
            _ => {
                in_a_row = 0;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// Ctrl-C while the second host rolls: the signal reaches that host's run, which rolls back; the
/// first host stays finished, and the run ends with 130.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupt_reaches_the_host_being_rolled_which_rolls_back() {
    let Some(_machine) = begin().await else {
        return;
    };
    let hosts = TwoHosts::start("interrupt", true).await;
    let before_two = hosts.app_on(TWO).await;
    let args = [
        "--context",
        ONE,
        "--context",
        TWO,
        "--json",
        "--wait-after-healthy",
        "8s",
        APP,
    ];
    let running = tool::spawn(hosts.dir.path(), &args, &hosts.env(&[]));
    let lock = format!("reroll-lock-{}", hosts.project);
    let deadline = Instant::now() + Duration::from_secs(90);
    while !hosts
        .engine
        .docker(&["container", "inspect", "--", &lock])
        .await
        .success()
    {
        assert!(
            Instant::now() < deadline,
            "the second host's run never started"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    running.signal_group("INT");
    let finished = running.finish(ROLL_LIMIT).await;
    assert_exit(&finished, 130, "interrupted while the second host rolled");
    let table = hosts_finish(&finished);
    assert_eq!(state_of(&table, ONE), "done", "{}", finished.transcript());
    assert_eq!(state_of(&table, TWO), "failed", "{}", finished.transcript());
    let two = hosts.app_on(TWO).await;
    assert_eq!(
        two, before_two,
        "the second host was not rolled back to its old container"
    );
    let image_b = hosts.image_b_id().await;
    let one = hosts.app_on(ONE).await;
    assert!(one.len() == 1 && one[0].1 == image_b, "{one:?}");
    assert!(
        !hosts
            .engine
            .docker(&["container", "inspect", "--", &lock])
            .await
            .success(),
        "the second host's lock was left behind"
    );
}

//! The rollout benchmark: `bash bench/run.sh` (which runs `cargo bench --bench rollout`).
//!
//! For each replica count it starts the HAProxy example, then three times in turn, each under a
//! steady load of 200 requests per second through the proxy: the floor (Compose's scale-out and
//! Docker's first healthy reports, without the tool), a rollout by docker-reroll with the sleeps
//! recipe (a drain of fixed length, so the rest is the tool's own time), and a plain
//! `docker compose up -d`. It writes the medians into
//! `docs/benchmarks.md` (see there for the method and every definition) and the raw numbers into
//! `target/bench/rollout.json`.
//!
//! Then, behind HAProxy and behind Traefik, it compares the proxy-verified recipe of the
//! examples' READMEs with the sleeps it replaces (`bench/verify.rs`).
//!
//! Settings (environment): `REROLL_BENCH_BIN` (the docker-reroll binary; required),
//! `REROLL_BENCH_REPLICAS` (`1,4,8`), `REROLL_BENCH_PROXIES` (`haproxy,traefik`; `none` skips
//! either list), `REROLL_BENCH_RUNS` (`3`, for both), `REROLL_BENCH_OUT` (`docs/benchmarks.md`;
//! `-` prints only).

/// The e2e harness, used as is (read-only): scenarios, Docker helpers, the HTTP client.
#[path = "../tests/e2e"]
#[allow(dead_code)]
mod harness {
    pub mod cmd;
    pub mod containers;
    pub mod engine;
    pub mod http;
    pub mod load;
    pub mod preflight;
    pub mod readme;
    pub mod scenario;

    pub fn report(line: &str) {
        eprintln!("[bench] {line}");
    }
}
mod events;
mod probe;
mod timeline;
mod verify;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::Value;

use events::{EngineEvent, Events, HEALTHY, UNHEALTHY, first_of_each};
use harness::containers;
use harness::preflight::{begin, repo_root};
use harness::scenario::{APP, Scenario};
use probe::ToolEvents;
use timeline::{Recording, Timeline};
use verify::Mode;

/// Steady traffic before and after each measured step.
const SETTLE: Duration = Duration::from_millis(1500);
/// The longest any load may run (each one is stopped well before).
const LOAD_LIMIT: Duration = Duration::from_secs(120);
/// The longest a rollout may take.
const ROLL_LIMIT: Duration = Duration::from_secs(120);
/// The longest new containers may take to report healthy outside the tool.
const HEALTHY_LIMIT: Duration = Duration::from_secs(60);

pub fn unix_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock before 1970")
        .as_secs_f64()
        * 1000.0
}

struct Config {
    bin: PathBuf,
    replicas: Vec<usize>,
    runs: usize,
    proxies: Vec<verify::Proxy>,
    out: Option<PathBuf>,
}

impl Config {
    fn from_env() -> Config {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let bin = var("REROLL_BENCH_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo_root().join("target/release/docker-reroll"));
        // `none` leaves a list empty: that part of the benchmark is skipped.
        let list = |name: &str, default: &str| -> Vec<String> {
            let value = var(name).unwrap_or(default.into());
            match value.trim() {
                "none" => Vec::new(),
                list => list.split(',').map(|v| v.trim().to_owned()).collect(),
            }
        };
        let replicas = list("REROLL_BENCH_REPLICAS", "1,4,8")
            .iter()
            .map(|n| n.parse().expect("REROLL_BENCH_REPLICAS: numbers"))
            .collect();
        let proxies = list("REROLL_BENCH_PROXIES", "haproxy,traefik")
            .iter()
            .map(|p| verify::Proxy::parse(p))
            .collect();
        let runs = var("REROLL_BENCH_RUNS").map_or(3, |n| n.parse().expect("REROLL_BENCH_RUNS"));
        let out = match var("REROLL_BENCH_OUT").as_deref() {
            Some("-") => None,
            Some(path) => Some(PathBuf::from(path)),
            None => Some(repo_root().join("docs/benchmarks.md")),
        };
        Config {
            bin,
            replicas,
            runs,
            proxies,
            out,
        }
    }
}

/// The floor: Compose's scale-out and Docker's health reports, without the tool.
#[derive(Serialize)]
struct Floor {
    /// `docker compose up --detach --no-deps --no-recreate --scale app=2N -- app`.
    compose_ms: f64,
    /// From the start of that command to the first healthy report of the last new container.
    healthy_ms: f64,
}

/// One rollout by the tool. Times in ms; `*_at` are since the command's start.
#[derive(Serialize, Default)]
struct Rollout {
    code: Option<i32>,
    end_state_ok: bool,
    requests: usize,
    failed: usize,
    failures: Vec<String>,
    wall: f64,
    first_new_at: Option<f64>,
    last_old_at: Option<f64>,
    /// The tool starts retiring the old containers: drained, the proxy wait over.
    retire_at: Option<f64>,
    phases: Vec<(String, f64)>,
    /// Command start → first phase.
    startup: Option<f64>,
    /// Scale phase start → Docker's healthy event of the last new container (the in-run floor).
    engine: Option<f64>,
    /// Pre-stop phase start → Docker's unhealthy event of the last old container.
    drain: Option<f64>,
    react_healthy: Option<f64>,
    react_unhealthy: Option<f64>,
    settle_slack: Option<f64>,
    proxy_wait_slack: Option<f64>,
    /// retire_at − floor − requested waits − drain; set once the floors are known.
    overhead: Option<f64>,
    /// The same with this run's own engine time instead of the separately measured floor.
    overhead_in_run: Option<f64>,
    cpu_own_ms: f64,
    cpu_children_ms: f64,
    peak_rss_kb: u64,
    docker_calls: usize,
    pre_stop_calls: usize,
    /// Phase → (calls, summed ms).
    calls_by_phase: BTreeMap<String, (usize, u64)>,
    calls: Vec<String>,
}

/// One plain `docker compose up -d`.
#[derive(Serialize)]
struct Plain {
    requests: usize,
    failed: usize,
    failures: Vec<String>,
    wall: f64,
    first_new_at: Option<f64>,
    last_old_at: Option<f64>,
    all_healthy_at: Option<f64>,
}

#[derive(Serialize)]
struct ReplicaSet {
    replicas: usize,
    wait_after_healthy: f64,
    wait_after_unhealthy: f64,
    command: String,
    /// The tool's arguments (without `--json -v`).
    args: Vec<String>,
    floors: Vec<Floor>,
    rollouts: Vec<Rollout>,
    plains: Vec<Plain>,
}

#[derive(Serialize)]
struct Metadata {
    mean_ms: f64,
    median_ms: f64,
    stddev_ms: f64,
    min_ms: f64,
    max_ms: f64,
    runs: usize,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let config = Config::from_env();
    assert!(
        config.bin.is_file(),
        "no docker-reroll binary at {} (REROLL_BENCH_BIN); bench/run.sh builds it",
        config.bin.display()
    );
    let Some(_machine) = begin().await else {
        return;
    };
    let header = machine(&config).await;
    eprintln!("{header}");
    let metadata = plugin_metadata(&config.bin);
    let mut sets = Vec::new();
    for &replicas in &config.replicas {
        sets.push(bench_replicas(&config, replicas).await);
    }
    let mut proxies = Vec::new();
    for &proxy in &config.proxies {
        proxies.push(verify::bench(&config, proxy).await);
    }
    let mut results = render(&header, metadata.as_ref(), &sets, config.runs);
    results.push_str(&verify::render(&proxies, config.runs));
    println!("{results}");
    let raw = repo_root().join("target/bench/rollout.json");
    std::fs::create_dir_all(raw.parent().expect("a parent")).expect("cannot create target/bench");
    let json = serde_json::json!({ "metadata": metadata, "sets": sets, "proxies": proxies });
    std::fs::write(&raw, serde_json::to_string_pretty(&json).expect("JSON")).expect("raw");
    if let Some(out) = &config.out {
        write_results(out, &results);
        eprintln!("[bench] wrote {} and {}", out.display(), raw.display());
    }
}

async fn bench_replicas(config: &Config, n: usize) -> ReplicaSet {
    eprintln!("[bench] {n} replica(s): starting the HAProxy example");
    let scenario = Scenario::start("haproxy", &format!("bench{n}"), n).await;
    let events = Events::watch(&scenario.project, APP).await;
    // The sleeps recipe: its drain takes a fixed time, so what is left of the cutover is the
    // tool's own (the proxy-verified recipe is compared with it by `verify`).
    Mode::Sleeps.prepare(&scenario);
    let recipe = Mode::Sleeps.args(&scenario);
    let wait = |flag: &str| {
        recipe
            .iter()
            .position(|a| a == flag)
            .and_then(|i| recipe.get(i + 1))
            .map_or(0.0, |d| {
                humantime::parse_duration(d)
                    .expect("a duration")
                    .as_secs_f64()
                    * 1000.0
            })
    };
    let mut set = ReplicaSet {
        replicas: n,
        wait_after_healthy: wait("--wait-after-healthy"),
        wait_after_unhealthy: wait("--wait-after-unhealthy"),
        command: format!("APP_VERSION=… docker-reroll {}", shell_words::join(&recipe)),
        args: recipe.clone(),
        floors: Vec::new(),
        rollouts: Vec::new(),
        plains: Vec::new(),
    };
    let mut current = "a".to_owned();
    for k in 1..=config.runs {
        let floor = floor(&scenario, &events, n, &format!("floor{k}")).await;
        eprintln!(
            "[bench] {n}: floor {k}: compose up {:.0} ms, all healthy {:.0} ms",
            floor.compose_ms, floor.healthy_ms
        );
        set.floors.push(floor);

        let next = format!("reroll{k}");
        let rollout = rollout(config, &scenario, &events, &set, &current, &next).await;
        eprintln!(
            "[bench] {n}: reroll {k}: exit {:?}, {:.0} ms, {} of {} failed, retire at {:?}, engine {:?}, drain {:?}, reactions {:?} / {:?}",
            rollout.code,
            rollout.wall,
            rollout.failed,
            rollout.requests,
            rollout.retire_at,
            rollout.engine,
            rollout.drain,
            rollout.react_healthy,
            rollout.react_unhealthy
        );
        set.rollouts.push(rollout);
        current = next;

        let next = format!("compose{k}");
        let plain = plain_compose(&scenario, &events, n, &current, &next).await;
        eprintln!(
            "[bench] {n}: compose up -d {k}: {:.0} ms, {} of {} failed",
            plain.wall, plain.failed, plain.requests
        );
        set.plains.push(plain);
        current = next;
    }
    let floor = median(set.floors.iter().map(|f| f.healthy_ms));
    let waits = set.wait_after_healthy + set.wait_after_unhealthy;
    for run in &mut set.rollouts {
        run.overhead = overhead(run.retire_at, floor, run.drain, waits);
    }
    set
}

/// Scales to 2N with a new version and waits for Docker's healthy reports, as the tool's scale
/// and health phases do; then removes the new containers again.
async fn floor(scenario: &Scenario, events: &Events, n: usize, version: &str) -> Floor {
    let load = Timeline::start(scenario.addr(), LOAD_LIMIT);
    tokio::time::sleep(SETTLE).await;
    let before = containers::project_ids(&scenario.project).await;
    let scale = format!("{APP}={}", 2 * n);
    let t0 = unix_ms();
    let up = scenario
        .compose(
            &[
                "up",
                "--detach",
                "--no-deps",
                "--no-recreate",
                "--scale",
                &scale,
                "--",
                APP,
            ],
            &[("APP_VERSION", version)],
        )
        .await;
    let compose_ms = unix_ms() - t0;
    assert!(up.success(), "floor: {}", up.transcript());
    let new = added(&before, &containers::project_ids(&scenario.project).await);
    assert_eq!(new.len(), n, "floor: expected {n} new containers");
    let healthy = events
        .first_of_each(&new, HEALTHY, t0, HEALTHY_LIMIT)
        .await
        .expect("floor: the new containers did not report healthy");
    load.stop().await;
    let mut rm = vec!["rm", "--force", "--"];
    rm.extend(new.iter().map(String::as_str));
    harness::cmd::docker_ok(&rm, scenario.dir()).await;
    scenario.wait_until_served().await;
    tokio::time::sleep(SETTLE).await; // HAProxy forgets the removed servers (DNS hold 1 s)
    Floor {
        compose_ms,
        healthy_ms: max(&healthy) - t0,
    }
}

async fn rollout(
    config: &Config,
    scenario: &Scenario,
    events: &Events,
    set: &ReplicaSet,
    old: &str,
    new: &str,
) -> Rollout {
    let (run, recording) = roll_under_load(config, scenario, &set.args, new).await;
    let after = containers::list(&scenario.project, APP).await;
    let good = after
        .iter()
        .filter(|c| c.is_running_healthy() && c.version.as_deref() == Some(new))
        .count();
    let mut rollout = analyse(&run, &events.since(run.started_ms - 1.0), set);
    rollout.end_state_ok = good == set.replicas && after.len() == set.replicas;
    with_answers(&mut rollout, &recording, run.started_ms, old, new);
    rollout
}

/// Runs the tool (`--json -v ARGS`, with `APP_VERSION=new`) under the steady load, which starts
/// `SETTLE` before it and stops `SETTLE` after it exits.
async fn roll_under_load(
    config: &Config,
    scenario: &Scenario,
    args: &[String],
    new: &str,
) -> (probe::ToolRun, Recording) {
    let load = Timeline::start(scenario.addr(), LOAD_LIMIT);
    tokio::time::sleep(SETTLE).await;
    let mut args = args.to_vec();
    args.splice(0..0, ["--json".to_owned(), "-v".to_owned()]);
    let mut env: Vec<(String, String)> = scenario
        .env()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    env.push(("APP_VERSION".into(), new.into()));
    let (bin, dir) = (config.bin.clone(), scenario.dir().to_owned());
    let run = tokio::task::spawn_blocking(move || {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        probe::run(&bin, &args, &dir, &env, ROLL_LIMIT)
    })
    .await
    .expect("the tool run panicked");
    tokio::time::sleep(SETTLE).await;
    let recording = load.stop().await;
    if run.code != Some(0) {
        eprintln!(
            "[bench] the rollout failed:\n{}\n{}",
            run.stdout, run.stderr
        );
    }
    (run, recording)
}

/// Lays the tool's JSON events next to Docker's.
fn analyse(run: &probe::ToolRun, engine: &[EngineEvent], set: &ReplicaSet) -> Rollout {
    let t0 = run.started_ms;
    let tool = ToolEvents::parse(&run.stdout);
    let starts = tool.starts();
    let start = |phase: &str| tool.start(phase);
    let after = |phase: &str| tool.after(phase);
    let ids = |role: &str| tool.ids(role);
    let last = |ids: &[String], action: &str, from: Option<f64>| {
        let since: Vec<EngineEvent> = engine
            .iter()
            .filter(|e| e.at_ms >= from.unwrap_or(f64::MAX))
            .cloned()
            .collect();
        first_of_each(&since, ids, action).map(|times| max(&times))
    };
    let healthy = last(&ids("new"), HEALTHY, start("scale"));
    let unhealthy = last(&ids("old"), UNHEALTHY, start("pre_stop"));
    let minus = |a: Option<f64>, b: Option<f64>| Some(a? - b?);
    let calls = probe::docker_calls(&run.stderr);
    let mut calls_by_phase: BTreeMap<String, (usize, u64)> = BTreeMap::new();
    for call in calls.iter().filter(|c| !c.pre_stop) {
        let entry = calls_by_phase.entry(call.phase.clone()).or_default();
        entry.0 += 1;
        entry.1 += call.ms.unwrap_or(0);
    }
    let mut rollout = Rollout {
        code: run.code,
        wall: run.elapsed.as_secs_f64() * 1000.0,
        retire_at: start("retire").map(|t| t - t0),
        phases: tool.durations(),
        startup: starts.first().map(|(_, t)| t - t0),
        engine: minus(healthy, start("scale")),
        drain: minus(unhealthy, start("pre_stop")),
        react_healthy: minus(after("health"), healthy),
        react_unhealthy: minus(after("drain"), unhealthy),
        settle_slack: minus(start("pre_stop"), start("settle")).map(|d| d - set.wait_after_healthy),
        proxy_wait_slack: minus(start("retire"), start("proxy_wait"))
            .map(|d| d - set.wait_after_unhealthy),
        cpu_own_ms: run.cpu_own_ms,
        cpu_children_ms: run.cpu_children_ms,
        peak_rss_kb: run.peak_rss_kb,
        docker_calls: calls.iter().filter(|c| !c.pre_stop).count(),
        pre_stop_calls: calls.iter().filter(|c| c.pre_stop).count(),
        calls_by_phase,
        calls: calls
            .iter()
            .map(|c| match c.ms {
                Some(ms) => format!("[{}] {} ({ms} ms)", c.phase, c.command),
                None => format!("[{}] {} (stream)", c.phase, c.command),
            })
            .collect(),
        ..Rollout::default()
    };
    let waits = set.wait_after_healthy + set.wait_after_unhealthy;
    rollout.overhead_in_run = overhead(rollout.retire_at, rollout.engine, rollout.drain, waits);
    rollout
}

fn with_answers(rollout: &mut Rollout, rec: &Recording, t0: f64, old: &str, new: &str) {
    let tally = rec.tally();
    rollout.requests = rec.answers.len();
    rollout.failed = rec.failed();
    rollout.failures = tally.failures;
    rollout.first_new_at = rec.first_answer(new).map(|t| t - t0);
    rollout.last_old_at = rec.last_answer(old).map(|t| t - t0);
}

/// A plain `APP_VERSION=new docker compose up -d --scale app=N`, under the same load.
async fn plain_compose(
    scenario: &Scenario,
    events: &Events,
    n: usize,
    old: &str,
    new: &str,
) -> Plain {
    let load = Timeline::start(scenario.addr(), LOAD_LIMIT);
    tokio::time::sleep(SETTLE).await;
    let before = containers::project_ids(&scenario.project).await;
    let scale = format!("{APP}={n}");
    let t0 = unix_ms();
    let up = scenario
        .compose(
            &["up", "--detach", "--scale", &scale],
            &[("APP_VERSION", new)],
        )
        .await;
    let wall = unix_ms() - t0;
    assert!(up.success(), "compose up -d: {}", up.transcript());
    let created = added(&before, &containers::project_ids(&scenario.project).await);
    let healthy = events
        .first_of_each(&created, HEALTHY, t0, HEALTHY_LIMIT)
        .await;
    tokio::time::sleep(SETTLE).await;
    let rec = load.stop().await;
    scenario.wait_until_served().await;
    Plain {
        requests: rec.answers.len(),
        failed: rec.failed(),
        failures: rec.tally().failures,
        wall,
        first_new_at: rec.first_answer(new).map(|t| t - t0),
        last_old_at: rec.last_answer(old).map(|t| t - t0),
        all_healthy_at: healthy.map(|h| max(&h) - t0),
    }
}

/// Cutover (start → retire) less the floor, the drain until unhealthy and the requested waits.
fn overhead(
    retire_at: Option<f64>,
    floor: Option<f64>,
    drain: Option<f64>,
    waits: f64,
) -> Option<f64> {
    Some(retire_at? - floor? - drain? - waits)
}

fn added(before: &[String], after: &[String]) -> Vec<String> {
    after
        .iter()
        .filter(|id| !before.contains(id))
        .cloned()
        .collect()
}

fn max(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::MIN, f64::max)
}

fn median(values: impl Iterator<Item = f64>) -> Option<f64> {
    let mut v: Vec<f64> = values.collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    })
}

/// `docker-reroll docker-cli-plugin-metadata`, timed by hyperfine.
fn plugin_metadata(bin: &Path) -> Option<Metadata> {
    let out = std::env::temp_dir().join(format!("reroll-bench-{}.json", std::process::id()));
    let command = format!("{} docker-cli-plugin-metadata", bin.display());
    let status = std::process::Command::new("hyperfine")
        .args([
            "-N",
            "--warmup",
            "20",
            "--runs",
            "300",
            "--style",
            "none",
            "--export-json",
        ])
        .arg(&out)
        .arg(&command)
        .stdout(std::process::Stdio::null())
        .status();
    if !matches!(status, Ok(s) if s.success()) {
        eprintln!("[bench] WARNING: hyperfine failed or is missing: no plugin metadata timing");
        return None;
    }
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&out).ok()?).ok()?;
    let _ = std::fs::remove_file(&out);
    let r = &json["results"][0];
    let ms = |k: &str| r[k].as_f64().map(|s| s * 1000.0);
    Some(Metadata {
        mean_ms: ms("mean")?,
        median_ms: ms("median")?,
        stddev_ms: ms("stddev")?,
        min_ms: ms("min")?,
        max_ms: ms("max")?,
        runs: r["times"].as_array().map_or(0, Vec::len),
    })
}

/// The header: what was measured, on what.
async fn machine(config: &Config) -> String {
    let sh = |cmd: &str| {
        std::process::Command::new("sh")
            .args(["-c", cmd])
            .current_dir(repo_root())
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default()
    };
    let cpu = sh("sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1");
    let mem = sh("awk '/MemTotal/ {printf \"%.1f GiB\", $2/1048576}' /proc/meminfo");
    let dirty = if sh("git status --porcelain").is_empty() {
        ""
    } else {
        " + uncommitted changes"
    };
    let busy = sh("docker ps -q | wc -l");
    format!(
        "- date: {} (UTC)\n- machine: {} CPUs ({cpu}), {mem} memory, Linux {}; load average at start {}\n\
         - Docker Engine {}, docker CLI {}, Docker Compose {}\n\
         - docker-reroll {} (git {}{dirty}), release build\n\
         - {busy} other container(s) running on the engine at start",
        sh("date -u '+%Y-%m-%d %H:%M'"),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        sh("uname -r"),
        sh("cut -d' ' -f1-3 /proc/loadavg"),
        sh("docker version --format '{{.Server.Version}}'"),
        sh("docker version --format '{{.Client.Version}}'"),
        sh("docker compose version --short"),
        sh(&format!("'{}' --version", config.bin.display())),
        sh("git rev-parse --short HEAD"),
    )
}

fn ms(value: Option<f64>) -> String {
    value.map_or("–".into(), |v| format!("{v:.0}"))
}

fn s(value: Option<f64>) -> String {
    value.map_or("–".into(), |v| format!("{:.2}", v / 1000.0))
}

fn mark(value: Option<f64>, target: f64) -> &'static str {
    match value {
        Some(v) if v <= target => " ✅",
        Some(_) => " ❌",
        None => "",
    }
}

/// A Markdown table's header row and the separator under it.
fn table(w: &mut String, head: &str) {
    let columns = head.matches('|').count().saturating_sub(1);
    let _ = writeln!(w, "{head}\n|{}", "---|".repeat(columns));
}

/// `0, 2, 0`: a count per run.
fn counts(values: impl Iterator<Item = usize>) -> String {
    values.map(|n| n.to_string()).collect::<Vec<_>>().join(", ")
}

/// The rollouts that succeeded: the timings are theirs (failed requests are counted for all).
fn done(set: &ReplicaSet) -> Vec<&Rollout> {
    set.rollouts.iter().filter(|x| x.code == Some(0)).collect()
}

fn render(header: &str, metadata: Option<&Metadata>, sets: &[ReplicaSet], runs: usize) -> String {
    let mut md = String::new();
    let w = &mut md;
    let _ = writeln!(
        w,
        "{header}\n- {runs} runs per replica count, and per proxy and mode; medians unless said otherwise; times in seconds (s) or milliseconds (ms)\n"
    );
    let Some(first) = sets.first() else {
        return md; // REROLL_BENCH_REPLICAS=none
    };
    let _ = writeln!(w, "Rolled with: `{}`\n", first.command);

    let _ = writeln!(w, "### Cutover and overhead\n");
    table(
        w,
        "| replicas | rollouts done (exit 0) | failed requests (per run) | wall (s) | first new answer (s) | last old answer (s) | cutover: start → retire (s) | floor: compose up / all healthy (s) | drain asked for (s) | **overhead** (ms) | overhead, in-run floor (ms) |",
    );
    for set in sets {
        let r: Vec<&Rollout> = done(set);
        let all = set.rollouts.len();
        let med = |f: &dyn Fn(&Rollout) -> Option<f64>| median(r.iter().copied().filter_map(f));
        let target = if set.replicas <= 1 {
            150.0
        } else if set.replicas >= 8 {
            300.0
        } else {
            150.0 + (set.replicas as f64 - 1.0) * 150.0 / 7.0
        };
        let overhead = med(&|x| x.overhead);
        let asked =
            med(&|x| x.drain).map(|d| d + set.wait_after_healthy + set.wait_after_unhealthy);
        let _ = writeln!(
            w,
            "| {} | {} of {all} | {} of {} | {} | {} | {} | {} | {} / {} | {} | **{}**{} (≤ {target:.0}) | {} |",
            set.replicas,
            r.len(),
            counts(set.rollouts.iter().map(|x| x.failed)),
            ms(median(set.rollouts.iter().map(|x| x.requests as f64))),
            s(med(&|x| Some(x.wall))),
            s(med(&|x| x.first_new_at)),
            s(med(&|x| x.last_old_at)),
            s(med(&|x| x.retire_at)),
            s(median(set.floors.iter().map(|f| f.compose_ms))),
            s(median(set.floors.iter().map(|f| f.healthy_ms))),
            s(asked),
            ms(overhead),
            mark(overhead, target),
            ms(med(&|x| x.overhead_in_run)),
        );
    }

    let _ = writeln!(w, "\n### Where the overhead goes (ms, medians)\n");
    table(
        w,
        "| replicas | startup (start → first phase) | tool's scale + health − floor | healthy → next phase | settle past --wait-after-healthy | unhealthy → next phase | proxy wait past --wait-after-unhealthy |",
    );
    for set in sets {
        let r: Vec<&Rollout> = done(set);
        let med = |f: &dyn Fn(&Rollout) -> Option<f64>| median(r.iter().copied().filter_map(f));
        let floor = median(set.floors.iter().map(|f| f.healthy_ms));
        let _ = writeln!(
            w,
            "| {} | {} | {} | {} | {} | {} | {} |",
            set.replicas,
            ms(med(&|x| x.startup)),
            ms(med(&|x| Some(x.engine? - floor?))),
            ms(med(&|x| x.react_healthy)),
            ms(med(&|x| x.settle_slack)),
            ms(med(&|x| x.react_unhealthy)),
            ms(med(&|x| x.proxy_wait_slack)),
        );
    }

    let _ = writeln!(w, "\n### Reaction latency (target: median ≤ 100 ms)\n");
    table(
        w,
        "| replicas | last new `health_status: healthy` → next phase (ms: median; runs) | last old `health_status: unhealthy` → next phase (ms: median; runs) |",
    );
    for set in sets {
        let list = |f: &dyn Fn(&Rollout) -> Option<f64>| {
            let all: Vec<String> = set.rollouts.iter().map(|x| ms(f(x))).collect();
            let m = median(set.rollouts.iter().filter_map(f));
            format!("**{}**{}; {}", ms(m), mark(m, 100.0), all.join(", "))
        };
        let _ = writeln!(
            w,
            "| {} | {} | {} |",
            set.replicas,
            list(&|x| x.react_healthy),
            list(&|x| x.react_unhealthy)
        );
    }

    let _ = writeln!(
        w,
        "\n### Phases (ms, medians of the tool's `phase_end` `duration_ms`)\n"
    );
    let names = [
        "scale",
        "health",
        "settle",
        "pre_stop",
        "drain",
        "proxy_wait",
        "retire",
        "verify",
    ];
    table(
        w,
        &format!("| replicas | startup | {} |", names.join(" | ")),
    );
    for set in sets {
        let r: Vec<&Rollout> = done(set);
        let cells: Vec<String> = names
            .iter()
            .map(|name| {
                ms(median(r.iter().copied().filter_map(|x| {
                    x.phases.iter().find(|(p, _)| p == name).map(|(_, d)| *d)
                })))
            })
            .collect();
        let _ = writeln!(
            w,
            "| {} | {} | {} |",
            set.replicas,
            ms(median(r.iter().copied().filter_map(|x| x.startup))),
            cells.join(" | ")
        );
    }

    let _ = writeln!(w, "\n### Cost of the tool (medians)\n");
    table(
        w,
        "| replicas | CPU, tool alone (ms) | CPU, with its docker children (ms) | peak RSS, tool (MiB) | docker calls by the tool | + pre-stop `docker exec` | calls by phase (count, summed ms) |",
    );
    for set in sets {
        let r: Vec<&Rollout> = done(set);
        let by_phase = r.get(r.len() / 2).map_or(String::new(), |x| {
            x.calls_by_phase
                .iter()
                .map(|(p, (n, t))| format!("{p} {n} ({t})"))
                .collect::<Vec<_>>()
                .join(", ")
        });
        let _ = writeln!(
            w,
            "| {} | {:.1} | {} | {:.1} | {} | {} | {by_phase} |",
            set.replicas,
            median(r.iter().copied().map(|x| x.cpu_own_ms)).unwrap_or(0.0),
            ms(median(
                r.iter().copied().map(|x| x.cpu_own_ms + x.cpu_children_ms)
            )),
            median(r.iter().copied().map(|x| x.peak_rss_kb as f64)).unwrap_or(0.0) / 1024.0,
            ms(median(r.iter().copied().map(|x| x.docker_calls as f64))),
            ms(median(r.iter().copied().map(|x| x.pre_stop_calls as f64))),
        );
    }

    let _ = writeln!(
        w,
        "\n### Plain `APP_VERSION=… docker compose up -d --scale app=N`, same load\n"
    );
    table(
        w,
        "| replicas | failed requests (per run) | wall (s) | first new answer (s) | last old answer (s) | all new healthy (s) |",
    );
    for set in sets {
        let p = &set.plains;
        let _ = writeln!(
            w,
            "| {} | {} of {} | {} | {} | {} | {} |",
            set.replicas,
            counts(p.iter().map(|x| x.failed)),
            ms(median(p.iter().map(|x| x.requests as f64))),
            s(median(p.iter().map(|x| x.wall))),
            s(median(p.iter().filter_map(|x| x.first_new_at))),
            s(median(p.iter().filter_map(|x| x.last_old_at))),
            s(median(p.iter().filter_map(|x| x.all_healthy_at))),
        );
    }

    let _ = writeln!(
        w,
        "\n### Plugin metadata (`docker-reroll docker-cli-plugin-metadata`, hyperfine, target < 5 ms)\n"
    );
    match metadata {
        Some(m) => {
            let _ = writeln!(
                w,
                "median **{:.2} ms**{}, mean {:.2} ± {:.2} ms, min {:.2}, max {:.2} ({} runs)",
                m.median_ms,
                mark(Some(m.median_ms), 5.0),
                m.mean_ms,
                m.stddev_ms,
                m.min_ms,
                m.max_ms,
                m.runs
            );
        }
        None => {
            let _ = writeln!(w, "not measured (hyperfine missing)");
        }
    }

    let _ = writeln!(w, "\n<details><summary>Every run</summary>\n");
    for set in sets {
        let _ = writeln!(w, "**{} replica(s)**\n", set.replicas);
        for (k, f) in set.floors.iter().enumerate() {
            let _ = writeln!(
                w,
                "- floor {}: compose up {:.0} ms, all healthy {:.0} ms",
                k + 1,
                f.compose_ms,
                f.healthy_ms
            );
        }
        for (k, x) in set.rollouts.iter().enumerate() {
            let phases: Vec<String> = x
                .phases
                .iter()
                .map(|(p, d)| format!("{p} {d:.0}"))
                .collect();
            let _ = writeln!(
                w,
                "- reroll {}: exit {:?}, end state {}, {} of {} failed, wall {:.0}, first new {}, last old {}, retire at {}, startup {}, engine {}, drain {}, reactions {} / {}, overhead {} (in-run {}); phases: {}; CPU {:.1} + {:.0} ms, RSS {} KiB, {} docker calls{}",
                k + 1,
                x.code,
                if x.end_state_ok { "ok" } else { "WRONG" },
                x.failed,
                x.requests,
                x.wall,
                ms(x.first_new_at),
                ms(x.last_old_at),
                ms(x.retire_at),
                ms(x.startup),
                ms(x.engine),
                ms(x.drain),
                ms(x.react_healthy),
                ms(x.react_unhealthy),
                ms(x.overhead),
                ms(x.overhead_in_run),
                phases.join(", "),
                x.cpu_own_ms,
                x.cpu_children_ms,
                x.peak_rss_kb,
                x.docker_calls,
                x.failures
                    .iter()
                    .map(|f| format!("; failure: {f}"))
                    .collect::<String>(),
            );
        }
        for (k, p) in set.plains.iter().enumerate() {
            let _ = writeln!(
                w,
                "- compose up -d {}: {} of {} failed, wall {:.0}, first new {}, last old {}, all healthy {}{}",
                k + 1,
                p.failed,
                p.requests,
                p.wall,
                ms(p.first_new_at),
                ms(p.last_old_at),
                ms(p.all_healthy_at),
                p.failures
                    .iter()
                    .take(3)
                    .map(|f| format!("; e.g. {f}"))
                    .collect::<String>(),
            );
        }
        let _ = writeln!(w);
    }
    let _ = writeln!(w, "</details>");
    md
}

const BEGIN: &str = "<!-- bench:results:begin -->";
const END: &str = "<!-- bench:results:end -->";

/// Replaces what lies between the markers in `out` (the rest of the file is hand-written).
fn write_results(out: &Path, results: &str) {
    let text = std::fs::read_to_string(out).unwrap_or_default();
    let updated = match (text.find(BEGIN), text.find(END)) {
        (Some(b), Some(e)) if b < e => {
            format!("{}{BEGIN}\n{results}{}", &text[..b], &text[e..])
        }
        _ => format!("{text}\n{BEGIN}\n{results}{END}\n"),
    };
    std::fs::write(out, updated).unwrap_or_else(|e| panic!("{}: {e}", out.display()));
}

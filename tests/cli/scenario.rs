//! A tiny world for the fake `docker` (tests/fake/docker.rs): a Compose project `shop` with a
//! service `web`, its containers and how they behave, turned into the fake's script; then the
//! real `docker-reroll` binary run against it, and what it did read back from the fake's log.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub const TOOL: &str = env!("CARGO_BIN_EXE_docker-reroll");
pub const FAKE: &str = env!("CARGO_BIN_EXE_fake-docker");

/// Container ids as Docker writes them: 64 hex digits (short id: the first 12).
pub const OLD: &str = "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1";
pub const OLD2: &str = "a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2";
pub const NEW: &str = "b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1";
pub const NEW2: &str = "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2";
/// A container of a service the compose file no longer has.
pub const ORPHAN: &str = "c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1";

pub fn short(id: &str) -> &str {
    &id[..12]
}

/// The config hash of the running containers, and the one Compose answers for the new config.
pub const OLD_HASH: &str = "0ld0ld";
pub const NEW_HASH: &str = "9e99e9";

/// One rule of the fake's script (see tests/fake/docker.rs for its fields).
#[derive(Clone, Debug)]
pub struct Rule(serde_json::Map<String, Value>);

/// A rule answering the calls whose words (globals dropped) start with `when`; exit 0, no output.
pub fn on(when: &str) -> Rule {
    let mut map = serde_json::Map::new();
    map.insert("when".into(), json!(when));
    Rule(map)
}

impl Rule {
    fn with(mut self, key: &str, value: Value) -> Self {
        self.0.insert(key.into(), value);
        self
    }
    pub fn stdout(self, text: &str) -> Self {
        self.with("stdout", json!(text))
    }
    /// Fails like Docker: exit 1 with this on stderr.
    pub fn fails(self, stderr: &str) -> Self {
        self.with("stderr", json!(stderr)).with("exit", json!(1))
    }
    pub fn times(self, times: u32) -> Self {
        self.with("times", json!(times))
    }
    pub fn set(self, flags: &[&str]) -> Self {
        self.with("set", json!(flags))
    }
    pub fn if_set(self, flags: &[&str]) -> Self {
        self.with("if_set", json!(flags))
    }
    pub fn sleep_ms(self, ms: u64) -> Self {
        self.with("sleep_ms", json!(ms))
    }
    fn lines(self, lines: Vec<Value>) -> Self {
        self.with("lines", json!(lines))
    }
    fn stream(self) -> Self {
        self.with("stream", json!(true))
    }
}

/// A container as `docker inspect` shows it, with a healthcheck unless `health` is None.
pub fn container(id: &str, number: u32, hash: &str, status: &str, health: Option<&str>) -> Value {
    let mut state = json!({ "Status": status, "ExitCode": if status == "exited" { 3 } else { 0 } });
    let mut config = json!({ "Labels": {
        "com.docker.compose.project": "shop",
        "com.docker.compose.service": "web",
        "com.docker.compose.oneoff": "False",
        "com.docker.compose.config-hash": hash,
        "com.docker.compose.container-number": number.to_string(),
    }});
    if let Some(health) = health {
        let exit_code = i32::from(health == "unhealthy");
        state["Health"] = json!({ "Status": health, "Log": [{ "Output": format!("check says {health}\n"), "ExitCode": exit_code }] });
        config["Healthcheck"] = json!({ "Test": ["CMD", "true"], "Interval": 1_000_000_000u64, "Timeout": 1_000_000_000u64, "Retries": 2 });
    }
    json!({
        "Id": id, "Name": format!("/shop-web-{number}"), "Created": "2026-01-01T00:00:00Z",
        "Image": "sha256:feed", "State": state, "Config": config,
    })
}

/// A `docker events` line about a container of the service.
pub fn event(id: &str, action: &str, attributes: Value) -> String {
    json!({ "Type": "container", "Action": action, "status": action, "id": id,
            "Actor": { "ID": id, "Attributes": attributes }, "time": 1 })
    .to_string()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compose {
    /// `docker compose` v2.
    Plugin,
    /// No plugin, and no `docker-compose` on PATH.
    Missing,
    /// No plugin; `docker-compose` of this version on PATH.
    Standalone(&'static str),
}

struct Member {
    id: String,
    number: u32,
    hash: String,
    /// What successive inspects show (status, health); the last one repeats.
    looks: Vec<(String, Option<String>)>,
}

pub struct Scenario {
    pub dir: tempfile::TempDir,
    /// Tried before everything the world below generates.
    overrides: Vec<Rule>,
    compose: Compose,
    config: Value,
    /// Running before the run with the old config: to be retired.
    old: Vec<Member>,
    /// Running before the run with the new config (left by an interrupted run).
    adopted: Vec<Member>,
    /// Appear when `compose up` runs.
    created: Vec<Member>,
    events: Vec<Value>,
    drains: bool,
    /// Containers of the project whose service the file no longer has: (id, service).
    orphans: Vec<(String, String)>,
    /// Services only under a profile that is not enabled: Compose's config leaves them out.
    profiled: Vec<String>,
    /// Compose's project flags as the tool writes them after `compose`.
    project_flags: String,
}

impl Scenario {
    /// `web` runs one healthy container OLD; `compose up` creates NEW, first starting, then
    /// healthy.
    pub fn new() -> Self {
        Scenario::empty().old(OLD, 1).creates(
            NEW,
            2,
            &[("running", Some("starting")), ("running", Some("healthy"))],
        )
    }

    /// No containers at all yet.
    pub fn empty() -> Self {
        Scenario {
            dir: tempfile::tempdir().expect("tempdir"),
            overrides: Vec::new(),
            compose: Compose::Plugin,
            config: json!({ "name": "shop", "services": {
                "web": { "image": "shop/web:2", "ports": [{ "target": 80 }] },
                "db": { "image": "postgres" },
            }}),
            old: Vec::new(),
            adopted: Vec::new(),
            created: Vec::new(),
            events: Vec::new(),
            drains: false,
            orphans: Vec::new(),
            profiled: Vec::new(),
            project_flags: String::new(),
        }
    }

    /// A healthy running container with the old config.
    pub fn old(self, id: &str, number: u32) -> Self {
        self.old_with_hash(id, number, OLD_HASH)
    }

    /// A healthy running container that is to be retired, whatever its config hash.
    pub fn old_with_hash(mut self, id: &str, number: u32, hash: &str) -> Self {
        self.old
            .push(member(id, number, hash, &[("running", Some("healthy"))]));
        self
    }

    /// A running container with the new config, left by an interrupted run.
    pub fn adopted(mut self, id: &str, number: u32, looks: &[(&str, Option<&str>)]) -> Self {
        self.adopted.push(member(id, number, NEW_HASH, looks));
        self
    }

    /// A container `compose up` creates, and how it looks to successive inspects.
    pub fn creates(mut self, id: &str, number: u32, looks: &[(&str, Option<&str>)]) -> Self {
        self.created.push(member(id, number, NEW_HASH, looks));
        self
    }

    /// Replaces how `id` looks (whichever role it has).
    pub fn looks(mut self, id: &str, looks: &[(&str, Option<&str>)]) -> Self {
        for member in self
            .old
            .iter_mut()
            .chain(&mut self.adopted)
            .chain(&mut self.created)
        {
            if member.id == id {
                member.looks = looks_of(looks);
            }
        }
        self
    }

    /// Old containers (declared before) turn unhealthy once their pre-stop command ran (inspect
    /// and an event).
    pub fn drains(mut self) -> Self {
        self.drains = true;
        for member in &self.old {
            self.events.push(json!({
                "wait_for": format!("pre-stop:{}", member.id),
                "text": event(&member.id, "health_status: unhealthy", json!({})),
            }));
        }
        self
    }

    /// `docker events` reports this about `id` shortly after the tool first inspected it.
    pub fn event_once_seen(mut self, id: &str, action: &str, attributes: Value) -> Self {
        self.events.push(json!({
            "wait_for": format!("seen:{id}"), "after_ms": 30, "text": event(id, action, attributes),
        }));
        self
    }

    /// A running container of the project whose service `service` is not in the config.
    pub fn orphan(mut self, id: &str, service: &str) -> Self {
        self.orphans.push((id.into(), service.into()));
        self
    }

    /// A service of the file under a profile that is not enabled.
    pub fn profiled_service(mut self, service: &str) -> Self {
        self.profiled.push(service.into());
        self
    }

    pub fn compose(mut self, compose: Compose) -> Self {
        self.compose = compose;
        self
    }

    /// Sets a key of the `web` service in the resolved Compose config.
    pub fn web_config(mut self, key: &str, value: Value) -> Self {
        self.config["services"]["web"][key] = value;
        self
    }

    /// Replaces the whole resolved Compose config (a world of other services than `web`).
    pub fn web_config_replaced(mut self, config: Value) -> Self {
        self.config = config;
        self
    }

    /// A rule tried before the generated ones.
    pub fn rule(mut self, rule: Rule) -> Self {
        self.overrides.push(rule);
        self
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// The journal file of `shop`/`web` on the default engine (see src/lock.rs).
    pub fn journal_path(&self) -> PathBuf {
        self.state_dir().join("default--shop--web.json")
    }

    /// Compose's project flags the tool is expected to write on every Compose call but
    /// `version` (e.g. `--file a.yml --project-name shop`).
    pub fn project_flags(mut self, flags: &str) -> Self {
        self.project_flags = flags.into();
        self
    }

    /// How the Compose calls of the project begin.
    fn compose_words(&self) -> String {
        let program = match self.compose {
            Compose::Plugin | Compose::Missing => "compose",
            Compose::Standalone(_) => "docker-compose",
        };
        format!("{program} {}", self.project_flags)
    }

    fn script(&self) -> Vec<Value> {
        let ids = |members: &[&Vec<Member>]| -> String {
            members
                .iter()
                .flat_map(|m| m.iter())
                .map(|m| format!("{}\n", m.id))
                .collect()
        };
        let c = self.compose_words();
        let mut rules = self.overrides.clone();
        match self.compose {
            Compose::Plugin => rules.push(on("compose version --short").stdout("2.40.3\n")),
            // Without the plugin, docker rejects every `docker compose …`, as the real one does.
            Compose::Missing | Compose::Standalone(_) => rules.push(on("compose").fails(
                "docker: unknown command: docker compose\n\nRun 'docker --help' for more information",
            )),
        }
        if let Compose::Standalone(version) = self.compose {
            rules.push(on("docker-compose version --short").stdout(&format!("{version}\n")));
        }
        // The project's containers by service, as `docker ps --format` lists them for orphans.
        let listed: String = self
            .old
            .iter()
            .chain(&self.adopted)
            .map(|m| (m.id.as_str(), "web", m.number))
            .chain(
                self.orphans
                    .iter()
                    .map(|(id, service)| (id.as_str(), service.as_str(), 1)),
            )
            .map(|(id, service, number)| format!("{id}\t{service}\tshop-{service}-{number}\n"))
            .collect();
        let services = self.config["services"]
            .as_object()
            .map(|services| services.keys().cloned().collect::<Vec<_>>())
            .unwrap_or_default();
        let every_service: String = services
            .iter()
            .chain(&self.profiled)
            .map(|name| format!("{name}\n"))
            .collect();
        rules.extend([
            on(
                "ps --all --no-trunc --filter label=com.docker.compose.project=shop \
                --filter label=com.docker.compose.oneoff=False --format",
            )
            .stdout(&listed),
            on(&format!("{c} --profile * config --services")).stdout(&every_service),
            on(&format!("{c} config --format json")).stdout(&self.config.to_string()),
            on(&format!("{c} config --hash web")).stdout(&format!("web {NEW_HASH}\n")),
            on(&format!("{c} up")).set(&["up"]).sleep_ms(20),
            on("ps")
                .if_set(&["retired"])
                .stdout(&ids(&[&self.adopted, &self.created])),
            on("ps")
                .if_set(&["up"])
                .stdout(&ids(&[&self.old, &self.adopted, &self.created])),
            on("ps").stdout(&ids(&[&self.old, &self.adopted])),
        ]);
        for member in self.old.iter().chain(&self.adopted).chain(&self.created) {
            let seen = format!("seen:{}", member.id);
            let pre_stop = format!("pre-stop:{}", member.id);
            let inspect = format!("inspect {}", member.id);
            let answer = |status: &str, health: Option<&str>| {
                json!([container(
                    &member.id,
                    member.number,
                    &member.hash,
                    status,
                    health
                )])
                .to_string()
            };
            if self.drains {
                rules.push(
                    on(&inspect)
                        .if_set(&[&pre_stop])
                        .stdout(&answer("running", Some("unhealthy"))),
                );
            }
            let (last, earlier) = member
                .looks
                .split_last()
                .expect("a container looks like something");
            for (status, health) in earlier {
                rules.push(
                    on(&inspect)
                        .times(1)
                        .set(&[&seen])
                        .stdout(&answer(status, health.as_deref())),
                );
            }
            rules.push(
                on(&inspect)
                    .set(&[&seen])
                    .stdout(&answer(&last.0, last.1.as_deref())),
            );
            rules.push(on(&format!("exec {}", member.id)).set(&[&pre_stop]));
        }
        rules.extend([
            on("events").lines(self.events.clone()).stream(),
            on("logs").stdout("listening on :80\n"),
            on("stop"),
            on("start"),
            on("rm --").set(&["retired"]),
            on("rm --force").set(&["rolled-back"]),
        ]);
        rules.into_iter().map(|r| Value::Object(r.0)).collect()
    }

    /// The tool, ready to run in this world, its environment cleared but for what it needs.
    pub fn command(&self, args: &[&str]) -> Command {
        let dir = self.dir.path();
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let script = dir.join("script.json");
        std::fs::write(
            &script,
            serde_json::to_string_pretty(&self.script()).unwrap(),
        )
        .unwrap();
        if let Compose::Standalone(_) = self.compose {
            let link = bin.join("docker-compose");
            if !link.exists() {
                std::os::unix::fs::symlink(FAKE, link).unwrap();
            }
        }
        let mut command = Command::new(TOOL);
        command
            .args(args)
            .current_dir(dir)
            .env_clear()
            .env("PATH", &bin)
            .env("DOCKER_REROLL_DOCKER", FAKE)
            .env("DOCKER_REROLL_STATE_DIR", self.state_dir())
            .env("DOCKER_REROLL_ENGINE_LOCK", "0")
            .env("FAKE_DOCKER_SCRIPT", &script)
            .env("FAKE_DOCKER_LOG", self.log_path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("calls.jsonl")
    }

    /// Runs the tool to its end.
    pub fn run(&self, args: &[&str]) -> Run {
        self.spawn(self.command(args)).finish()
    }

    pub fn spawn(&self, mut command: Command) -> Running {
        let started = Instant::now();
        let mut child = command.spawn().expect("cannot start docker-reroll");
        let read = |mut pipe: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                let mut text = String::new();
                pipe.read_to_string(&mut text).ok();
                text
            })
        };
        let stdout = read(Box::new(child.stdout.take().unwrap()));
        let stderr = read(Box::new(child.stderr.take().unwrap()));
        Running {
            child,
            stdout,
            stderr,
            started,
            log: self.log_path(),
        }
    }
}

fn member(id: &str, number: u32, hash: &str, looks: &[(&str, Option<&str>)]) -> Member {
    Member {
        id: id.into(),
        number,
        hash: hash.into(),
        looks: looks_of(looks),
    }
}

fn looks_of(looks: &[(&str, Option<&str>)]) -> Vec<(String, Option<String>)> {
    looks
        .iter()
        .map(|(s, h)| (s.to_string(), h.map(str::to_owned)))
        .collect()
}

fn read_calls(log: &Path) -> Vec<Call> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    // Only whole lines: a call may be writing its line right now.
    let whole = &text[..text.rfind('\n').map_or(0, |end| end + 1)];
    whole
        .lines()
        .map(|line| {
            let value: Value = serde_json::from_str(line).expect("a JSON line from the fake");
            let strings = |v: &Value| -> Vec<String> {
                v.as_array()
                    .unwrap()
                    .iter()
                    .map(|s| s.as_str().unwrap().to_owned())
                    .collect()
            };
            let env = value["env"]
                .as_object()
                .unwrap()
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect();
            Call {
                prog: value["prog"].as_str().unwrap().to_owned(),
                args: strings(&value["args"]),
                env,
            }
        })
        .collect()
}

/// The tool, started.
pub struct Running {
    pub child: Child,
    stdout: std::thread::JoinHandle<String>,
    stderr: std::thread::JoinHandle<String>,
    started: Instant,
    log: PathBuf,
}

impl Running {
    /// Waits until the tool made `count` calls whose line starts with `prefix` (panics after
    /// 20s).
    pub fn wait_for_calls(&mut self, prefix: &str, count: usize) {
        let limit = Instant::now() + Duration::from_secs(20);
        let made = || {
            read_calls(&self.log)
                .iter()
                .filter(|c| c.line().starts_with(prefix))
                .count()
        };
        while made() < count {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("docker-reroll ended ({status}) before calling `{prefix}` {count} time(s)");
            }
            assert!(
                Instant::now() < limit,
                "docker-reroll did not call `{prefix}` {count} time(s)"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// `kill -SIGNAL pid`, as a user or a supervisor would.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([format!("-{signal}"), self.child.id().to_string()])
            .status()
            .expect("cannot run kill");
        assert!(status.success());
    }

    /// Waits for the end (kills it and panics after 30s).
    pub fn finish(mut self) -> Run {
        let limit = self.started + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > limit {
                self.child.kill().ok();
                self.child.wait().ok();
                panic!(
                    "docker-reroll ran longer than 30s; calls: {:#?}",
                    read_calls(&self.log)
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let took = self.started.elapsed();
        Run {
            code: status.code().unwrap_or(-1),
            stdout: self.stdout.join().unwrap(),
            stderr: self.stderr.join().unwrap(),
            calls: read_calls(&self.log),
            took,
        }
    }
}

/// One recorded call of the fake.
#[derive(Clone, Debug)]
pub struct Call {
    /// The name it was run as: `fake-docker`, or `docker-compose`.
    pub prog: String,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
}

impl Call {
    /// The leading Docker global flags (`--context=x`).
    pub fn globals(&self) -> Vec<&str> {
        self.args
            .iter()
            .take_while(|a| a.starts_with('-'))
            .map(String::as_str)
            .collect()
    }

    /// The words after the globals; run as `docker-compose`, that name and all arguments.
    pub fn words(&self) -> Vec<&str> {
        if self.prog == "docker-compose" {
            std::iter::once("docker-compose")
                .chain(self.args.iter().map(String::as_str))
                .collect()
        } else {
            self.args
                .iter()
                .skip_while(|a| a.starts_with('-'))
                .map(String::as_str)
                .collect()
        }
    }

    pub fn line(&self) -> String {
        self.words().join(" ")
    }

    /// Whether the call changes containers: the tool must not make one before it is sure.
    pub fn is_mutating(&self) -> bool {
        let words = self.words();
        let changes = [
            "up", "down", "create", "start", "restart", "stop", "kill", "rm", "exec", "scale",
            "run",
        ];
        match words.first() {
            Some(&"compose") | Some(&"docker-compose") => words.iter().any(|w| changes.contains(w)),
            Some(first) => changes.contains(first) || *first == "container",
            None => false,
        }
    }
}

/// A finished run.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub calls: Vec<Call>,
    pub took: Duration,
}

impl Run {
    /// The recorded calls as lines, globals dropped (shown in assertion messages).
    pub fn lines(&self) -> Vec<String> {
        self.calls.iter().map(Call::line).collect()
    }

    pub fn mutating(&self) -> Vec<String> {
        self.calls
            .iter()
            .filter(|c| c.is_mutating())
            .map(Call::line)
            .collect()
    }

    /// The calls whose line starts with `prefix`.
    pub fn called(&self, prefix: &str) -> Vec<String> {
        self.lines()
            .into_iter()
            .filter(|l| l.starts_with(prefix))
            .collect()
    }

    /// Asserts the exit code, showing the whole run if it differs.
    #[track_caller]
    pub fn assert_exit(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "{self}");
        self
    }

    /// Asserts that stderr holds `text`.
    #[track_caller]
    pub fn assert_stderr(&self, text: &str) -> &Self {
        assert!(self.stderr.contains(text), "stderr lacks {text:?}\n{self}");
        self
    }

    /// Asserts that no call stopped, removed or ran a command in one of `ids`.
    #[track_caller]
    pub fn assert_untouched(&self, ids: &[&str]) -> &Self {
        for call in self.calls.iter().filter(|c| c.is_mutating()) {
            for id in ids {
                assert!(
                    !call.args.iter().any(|a| a == id),
                    "{} touched by `{}`\n{self}",
                    short(id),
                    call.line()
                );
            }
        }
        self
    }

    /// The refusal before any change: exit 2, one line on stderr naming `problem` and the fix,
    /// and not one call that changes something.
    #[track_caller]
    pub fn assert_refused(&self, problem: &str, fix: &str) {
        self.assert_exit(2);
        let stderr = self.stderr.trim_end();
        assert_eq!(stderr.lines().count(), 1, "one line on stderr\n{self}");
        assert!(stderr.starts_with("docker-reroll: error: "), "{self}");
        self.assert_stderr(problem).assert_stderr(fix);
        assert_eq!(self.mutating(), Vec::<String>::new(), "no change\n{self}");
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "exit {} after {:.2}s",
            self.code,
            self.took.as_secs_f64()
        )?;
        writeln!(f, "--- calls ---")?;
        for call in &self.calls {
            writeln!(f, "{} {}", call.prog, call.args.join(" "))?;
        }
        writeln!(f, "--- stdout ---\n{}", self.stdout.trim_end())?;
        write!(f, "--- stderr ---\n{}", self.stderr.trim_end())
    }
}

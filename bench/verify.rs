//! Proxy verification against the sleeps it replaces, behind HAProxy and behind Traefik.
//!
//! For each proxy, `REROLL_BENCH_RUNS` pairs of rollouts of its example (2 replicas) under the
//! steady load: one with the README's command (the example's `x-reroll:` names the proxy, so the
//! tool asks its API), one with today's sleeps (`SLEEPS`, the proxy taken out of `x-reroll:`).
//! Meanwhile the benchmark asks the proxy's API itself, every 10 ms, to know when the proxy
//! really routed to every new container (T_join) and to no old one any more (T_drop); the tool's
//! lag is how much later its `proxy_in` / `proxy_out` phases ended. Every time is Unix ms, the
//! clock of the tool's `time_ms` and of Docker's `timeNano`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{MissedTickBehavior, interval, timeout};

use crate::events::{Events, HEALTHY, first_of_each};
use crate::harness::cmd::docker_ok;
use crate::harness::containers;
use crate::harness::readme::documented_command;
use crate::harness::scenario::{APP, Scenario};
use crate::probe::ToolEvents;
use crate::{Config, counts, mark, max, median, ms, roll_under_load, s, table, unix_ms};

/// Replicas of the app in this section.
pub const REPLICAS: usize = 2;
/// How often the benchmark asks the proxy's API (the tool asks every 50 ms).
const POLL: Duration = Duration::from_millis(10);
/// The longest one question to the proxy's API may take.
const ASK_LIMIT: Duration = Duration::from_secs(1);
/// Verification should end at most this long after the proxy's own change (median).
const LAG_TARGET: f64 = 100.0;

/// Today's sleeps, which verification replaces: Docker's unhealthy report and fixed waits stand
/// in for what the proxy does.
pub const SLEEPS: [&str; 7] = [
    "--pre-stop-cmd",
    "docker exec {id} touch /.dead",
    "--pre-stop-wait-until-unhealthy",
    "--wait-after-healthy",
    "2s",
    "--wait-after-unhealthy",
    "2s",
];

/// Takes the proxy out of the example's `x-reroll:` for the sleeps (no flag unsets it); the
/// pre-stop command stays.
const WITHOUT_PROXY: &str =
    "services:\n  app:\n    x-reroll:\n      proxy: !reset null\n      proxy-url: !reset null\n";

/// How the tool learns that the proxy has caught up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// The README's command: the tool asks the proxy's API.
    Verified,
    /// `SLEEPS`: Docker's health and fixed waits.
    Sleeps,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Verified => "verified",
            Mode::Sleeps => "sleeps",
        }
    }

    /// Makes the scenario's `x-reroll:` fit the mode.
    pub fn prepare(self, scenario: &Scenario) {
        match self {
            Mode::Verified => {
                let _ = std::fs::remove_file(scenario.dir().join("compose.override.yaml"));
            }
            Mode::Sleeps => scenario.write_override(WITHOUT_PROXY),
        }
    }

    /// The tool's arguments, service included.
    pub fn args(self, scenario: &Scenario) -> Vec<String> {
        match self {
            Mode::Verified => documented_command(scenario.dir()).args,
            Mode::Sleeps => SLEEPS.iter().chain(&[APP]).map(|a| a.to_string()).collect(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Proxy {
    Haproxy,
    Traefik,
}

impl Proxy {
    pub fn parse(name: &str) -> Proxy {
        match name.trim() {
            "haproxy" => Proxy::Haproxy,
            "traefik" => Proxy::Traefik,
            other => panic!("REROLL_BENCH_PROXIES: unknown proxy {other:?} (haproxy, traefik)"),
        }
    }

    /// Also the name of its example and of its Compose service.
    fn name(self) -> &'static str {
        match self {
            Proxy::Haproxy => "haproxy",
            Proxy::Traefik => "traefik",
        }
    }

    /// The container port of its API.
    fn api_port(self) -> &'static str {
        match self {
            Proxy::Haproxy => "9999",
            Proxy::Traefik => "8080",
        }
    }

    /// The servers the proxy has for the app right now.
    async fn ask(self, api: SocketAddr) -> Result<Vec<Server>, String> {
        match self {
            // Both answers on one connection: one snapshot.
            Proxy::Haproxy => haproxy_servers(
                &exchange(api, "show servers state app;show stat app 4 -1\n").await?,
            ),
            Proxy::Traefik => traefik_servers(
                &exchange(
                    api,
                    "GET /api/http/services/app@docker HTTP/1.0\r\nHost: localhost\r\n\r\n",
                )
                .await?,
            ),
        }
    }
}

/// One server of the app's backend (HAProxy) or service (Traefik).
#[derive(Debug, Clone)]
struct Server {
    addr: IpAddr,
    /// In the rotation: HAProxy's server UP (operational, no admin flag), Traefik's URL listed
    /// and not DOWN.
    routed: bool,
    /// HAProxy's `scur`: requests it still has with the server (Traefik: 0).
    sessions: u32,
}

/// One answer of the proxy's API, or why there was none.
struct Poll {
    sent_ms: f64,
    at_ms: f64,
    servers: Result<Vec<Server>, String>,
}

/// Asks the proxy's API every `POLL` until stopped.
struct Watcher {
    stop: watch::Sender<bool>,
    task: JoinHandle<Vec<Poll>>,
}

impl Watcher {
    fn start(proxy: Proxy, api: SocketAddr) -> Watcher {
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let mut polls = Vec::new();
            let mut ticks = interval(POLL);
            ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
            while !*stopped.borrow() {
                tokio::select! {
                    _ = ticks.tick() => {}
                    _ = stopped.changed() => break,
                }
                let sent_ms = unix_ms();
                let servers = timeout(ASK_LIMIT, proxy.ask(api))
                    .await
                    .unwrap_or_else(|_| Err(format!("no answer within {ASK_LIMIT:?}")));
                polls.push(Poll {
                    sent_ms,
                    at_ms: unix_ms(),
                    servers,
                });
            }
            polls
        });
        Watcher { stop, task }
    }

    async fn stop(self) -> Vec<Poll> {
        let _ = self.stop.send(true);
        self.task.await.expect("the API watcher panicked")
    }
}

/// Sends `request` on a connection of its own and reads until the other side closes.
async fn exchange(api: SocketAddr, request: &str) -> Result<String, String> {
    let mut stream = TcpStream::connect(api).await.map_err(|e| e.to_string())?;
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .await
        .map_err(|e| e.to_string())?;
    Ok(answer)
}

/// `show servers state app` (space-separated, `# ` header) followed by `show stat` (CSV).
fn haproxy_servers(answer: &str) -> Result<Vec<Server>, String> {
    let mut states: Option<Vec<&str>> = None;
    let mut stat: Option<Vec<&str>> = None;
    let mut rows: Vec<(String, IpAddr, bool)> = Vec::new();
    let mut sessions: BTreeMap<String, u32> = BTreeMap::new();
    let at = |header: &[&str], name: &str| header.iter().position(|h| *h == name);
    for line in answer.lines().filter(|l| !l.trim().is_empty()) {
        if let Some(header) = line.strip_prefix("# ") {
            if header.contains(',') {
                stat = Some(header.split(',').collect());
            } else {
                states = Some(header.split_whitespace().collect());
            }
        } else if let Some(header) = &stat {
            let fields: Vec<&str> = line.split(',').collect();
            let field = |name| at(header, name).and_then(|i| fields.get(i).copied());
            if field("pxname") == Some("app")
                && let (Some(server), Some(current)) = (field("svname"), field("scur"))
            {
                sessions.insert(server.to_owned(), current.parse().unwrap_or(0));
            }
        } else if let Some(header) = &states {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let field = |name| at(header, name).and_then(|i| fields.get(i).copied());
            let number = |name| field(name).and_then(|v| v.parse::<u32>().ok());
            let Some(addr) = field("srv_addr").and_then(|a| a.parse::<IpAddr>().ok()) else {
                continue; // an empty slot of the server-template
            };
            let routed = matches!(number("srv_op_state"), Some(1 | 2))
                && number("srv_admin_state") == Some(0);
            let name = field("srv_name").unwrap_or_default().to_owned();
            rows.push((name, addr, routed));
        }
    }
    if states.is_none() {
        return Err(format!(
            "HAProxy answered {:?}",
            answer.lines().next().unwrap_or_default()
        ));
    }
    Ok(rows
        .into_iter()
        .filter(|(_, addr, _)| !addr.is_unspecified())
        .map(|(name, addr, routed)| Server {
            addr,
            routed,
            sessions: sessions.get(&name).copied().unwrap_or(0),
        })
        .collect())
}

/// `GET /api/http/services/app@docker`: its `loadBalancer.servers` URLs and their
/// `serverStatus`. A 404 is a service that vanished with its last server: nothing routed.
fn traefik_servers(answer: &str) -> Result<Vec<Server>, String> {
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((answer, ""));
    let status = head.split_whitespace().nth(1).unwrap_or_default();
    match status {
        "200" => {}
        "404" => return Ok(Vec::new()),
        _ => return Err(format!("Traefik answered {:?}", head.lines().next())),
    }
    let service: Value = serde_json::from_str(body).map_err(|e| e.to_string())?;
    let servers = service["loadBalancer"]["servers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    Ok(servers
        .iter()
        .filter_map(|server| {
            let url = server["url"].as_str()?;
            let host = url.strip_prefix("http://")?.rsplit_once(':')?.0;
            Some(Server {
                addr: host.parse().ok()?,
                routed: service["serverStatus"][url] != "DOWN",
                sessions: 0,
            })
        })
        .collect())
}

/// One rollout. `*_at` are ms since the tool's start (t0).
#[derive(Serialize)]
pub struct Run {
    mode: Mode,
    code: Option<i32>,
    requests: usize,
    failed: usize,
    failures: Vec<String>,
    wall: f64,
    /// Docker's `health_status: healthy` of the last new container.
    healthy_at: Option<f64>,
    /// T_join: the first answer of the proxy's API that routes to every new container.
    join_at: Option<f64>,
    proxy_in: Option<(f64, f64)>,
    pre_stop_at: Option<f64>,
    /// T_drop: the first answer after the pre-stop that routes to no old container and, for
    /// HAProxy, has no request left with one.
    drop_at: Option<f64>,
    proxy_out: Option<(f64, f64)>,
    /// The cutover: the tool starts retiring the old containers.
    retire_at: Option<f64>,
    /// proxy_in's end − T_join (or its start, when the proxy was first).
    lag_in: Option<f64>,
    /// proxy_out's end − T_drop (or its start, when the proxy was first).
    lag_out: Option<f64>,
    polls: usize,
    poll_errors: usize,
    /// Median time between two of the benchmark's questions to the API.
    poll_interval: Option<f64>,
    phases: Vec<(String, f64)>,
}

#[derive(Serialize)]
pub struct ProxySet {
    proxy: Proxy,
    /// /proc/loadavg's 1, 5 and 15 minute averages when this proxy's runs began.
    load: String,
    verified: String,
    sleeps: String,
    runs: Vec<Run>,
}

/// The pairs of rollouts behind `proxy`.
pub async fn bench(config: &Config, proxy: Proxy) -> ProxySet {
    eprintln!(
        "[bench] {}: starting the example with {REPLICAS} replicas",
        proxy.name()
    );
    let scenario = Scenario::start(proxy.name(), &format!("bench{}", proxy.name()), REPLICAS).await;
    let events = Events::watch(&scenario.project, APP).await;
    let published = scenario
        .compose_ok(&["port", proxy.name(), proxy.api_port()], &[])
        .await;
    let api: SocketAddr = published
        .stdout
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("the {} API's port: {:?}", proxy.name(), published.stdout));
    let command = |mode: Mode| {
        format!(
            "APP_VERSION=… docker-reroll {}",
            shell_words::join(mode.args(&scenario))
        )
    };
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut set = ProxySet {
        proxy,
        load: load
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        verified: command(Mode::Verified),
        sleeps: command(Mode::Sleeps),
        runs: Vec::new(),
    };
    for k in 1..=config.runs {
        // Each goes first in turn: neither always runs right after the other.
        let order = if k % 2 == 1 {
            [Mode::Verified, Mode::Sleeps]
        } else {
            [Mode::Sleeps, Mode::Verified]
        };
        for mode in order {
            let version = format!("{}{k}", mode.name());
            let run = rollout(config, &scenario, &events, proxy, api, mode, &version).await;
            eprintln!(
                "[bench] {} {} {k}: exit {:?}, {} of {} failed, cutover {}, proxy joined {} / dropped {} (ms since start), lag {} / {} ms",
                proxy.name(),
                mode.name(),
                run.code,
                run.failed,
                run.requests,
                ms(run.retire_at),
                ms(run.join_at),
                ms(run.drop_at),
                ms(run.lag_in),
                ms(run.lag_out),
            );
            set.runs.push(run);
        }
    }
    set
}

async fn rollout(
    config: &Config,
    scenario: &Scenario,
    events: &Events,
    proxy: Proxy,
    api: SocketAddr,
    mode: Mode,
    version: &str,
) -> Run {
    mode.prepare(scenario);
    let old_addrs = addresses(&running(scenario).await).await;
    let watcher = Watcher::start(proxy, api);
    let (tool, recording) = roll_under_load(config, scenario, &mode.args(scenario), version).await;
    let polls = watcher.stop().await;
    let t0 = tool.started_ms;
    let report = ToolEvents::parse(&tool.stdout);
    let new = report.ids("new");
    // (A rollout that failed has removed its new containers again.)
    let survivors: Vec<String> = running(scenario)
        .await
        .into_iter()
        .filter(|id| new.contains(id))
        .collect();
    let new_addrs = addresses(&survivors).await;
    let healthy = first_of_each(&events.since(t0 - 1.0), &new, HEALTHY).map(|t| max(&t));
    let pre_stop = report.start("pre_stop");
    let join = first_poll(&polls, t0, |servers| {
        all(&new_addrs, |addr| {
            servers.iter().any(|s| s.addr == addr && s.routed)
        })
    });
    let drop = pre_stop.and_then(|from| {
        first_poll(&polls, from, |servers| {
            all(&old_addrs, |addr| {
                servers
                    .iter()
                    .all(|s| s.addr != addr || (!s.routed && s.sessions == 0))
            })
        })
    });
    let phase = |name: &str| Some((report.start(name)?, report.end(name)?));
    let (proxy_in, proxy_out) = (phase("proxy_in"), phase("proxy_out"));
    let lag = |phase: Option<(f64, f64)>, proxy: Option<f64>| {
        let (start, end) = phase?;
        Some(end - proxy?.max(start))
    };
    let since = |t: Option<f64>| t.map(|t| t - t0);
    let gaps = polls.windows(2).map(|w| w[1].sent_ms - w[0].sent_ms);
    Run {
        mode,
        code: tool.code,
        requests: recording.answers.len(),
        failed: recording.failed(),
        failures: recording.tally().failures,
        wall: tool.elapsed.as_secs_f64() * 1000.0,
        healthy_at: since(healthy),
        join_at: since(join),
        proxy_in: proxy_in.map(|(a, b)| (a - t0, b - t0)),
        pre_stop_at: since(pre_stop),
        drop_at: since(drop),
        proxy_out: proxy_out.map(|(a, b)| (a - t0, b - t0)),
        retire_at: since(report.start("retire")),
        lag_in: lag(proxy_in, join),
        lag_out: lag(proxy_out, drop),
        polls: polls.len(),
        poll_errors: polls.iter().filter(|p| p.servers.is_err()).count(),
        poll_interval: median(gaps),
        phases: report.durations(),
    }
}

/// `pred` holds for every container (each a list of addresses: any of them counts); never for
/// none.
fn all(containers: &[Vec<IpAddr>], pred: impl Fn(IpAddr) -> bool) -> bool {
    !containers.is_empty()
        && containers
            .iter()
            .all(|addrs| addrs.iter().any(|&a| pred(a)))
}

/// When the first answer sent at or after `from_ms` that satisfies `pred` arrived (Unix ms).
fn first_poll(polls: &[Poll], from_ms: f64, pred: impl Fn(&[Server]) -> bool) -> Option<f64> {
    polls
        .iter()
        .filter(|p| p.sent_ms >= from_ms)
        .find(|p| p.servers.as_deref().is_ok_and(&pred))
        .map(|p| p.at_ms)
}

/// The app's running containers.
async fn running(scenario: &Scenario) -> Vec<String> {
    containers::list(&scenario.project, APP)
        .await
        .into_iter()
        .filter(|c| c.state == "running")
        .map(|c| c.id)
        .collect()
}

/// Each container's addresses on its networks.
async fn addresses(ids: &[String]) -> Vec<Vec<IpAddr>> {
    if ids.is_empty() {
        return Vec::new();
    }
    let mut args = vec![
        "inspect",
        "--format",
        "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}",
    ];
    args.extend(ids.iter().map(String::as_str));
    docker_ok(&args, std::path::Path::new("/"))
        .await
        .lines()
        .map(|line| {
            line.split_whitespace()
                .filter_map(|a| a.parse().ok())
                .collect()
        })
        .collect()
}

/// The section of docs/benchmarks.md.
pub fn render(sets: &[ProxySet], runs: usize) -> String {
    let mut md = String::new();
    if sets.is_empty() {
        return md;
    }
    let w = &mut md;
    let _ = writeln!(
        w,
        "\n### Proxy verification against sleeps ({REPLICAS} replicas, {runs} rollouts each)\n"
    );
    for set in sets {
        let _ = writeln!(
            w,
            "- {}: verified `{}` (the example's `x-reroll:` names the proxy); sleeps `{}` (the proxy taken out of `x-reroll:`); load average at its start {}",
            set.proxy.name(),
            set.verified,
            set.sleeps,
            set.load
        );
    }
    let _ = writeln!(w);
    table(
        w,
        "| proxy | mode | rollouts done (exit 0) | failed requests (per run) | wall (s) | **cutover**: start → retire (s: median; runs) | verified − sleeps (s) |",
    );
    for set in sets {
        let cutover = |mode: Mode| median(done(set, mode).filter_map(|r| r.retire_at));
        for mode in [Mode::Verified, Mode::Sleeps] {
            let all: Vec<&Run> = set.runs.iter().filter(|r| r.mode == mode).collect();
            let gain = match mode {
                Mode::Verified => {
                    let d = cutover(Mode::Verified)
                        .zip(cutover(Mode::Sleeps))
                        .map(|(v, z)| v - z);
                    format!("**{}**{} (≤ 0)", s(d), mark(d, 0.0))
                }
                Mode::Sleeps => String::new(),
            };
            let _ = writeln!(
                w,
                "| {} | {} | {} of {} | {} of {} | {} | **{}**; {} | {gain} |",
                set.proxy.name(),
                mode.name(),
                done(set, mode).count(),
                all.len(),
                counts(all.iter().map(|r| r.failed)),
                ms(median(all.iter().map(|r| r.requests as f64))),
                s(median(done(set, mode).map(|r| r.wall))),
                s(cutover(mode)),
                each(&all, &|r: &Run| r.retire_at, s),
            );
        }
    }

    let _ = writeln!(
        w,
        "\n#### What the proxy did, and how late verification followed (ms; median, then each run)\n"
    );
    table(
        w,
        &format!(
            "| proxy | mode | proxy joins: last new healthy (Docker) → T_join | proxy drops: pre-stop → T_drop | **lag in**: `proxy_in` end − T_join (≤ {LAG_TARGET:.0}) | **lag out**: `proxy_out` end − T_drop (≤ {LAG_TARGET:.0}) | sleeps' margin in: T_join → pre-stop | sleeps' margin out: T_drop → retire | API polls by the bench: interval, errors |"
        ),
    );
    for set in sets {
        for mode in [Mode::Verified, Mode::Sleeps] {
            let all: Vec<&Run> = set.runs.iter().filter(|r| r.mode == mode).collect();
            let cell = |f: &dyn Fn(&Run) -> Option<f64>| {
                format!(
                    "{}; {}",
                    ms(median(all.iter().filter_map(|r| f(r)))),
                    each(&all, f, ms)
                )
            };
            let target = |f: &dyn Fn(&Run) -> Option<f64>| {
                let m = median(all.iter().filter_map(|r| f(r)));
                format!(
                    "**{}**{}; {}",
                    ms(m),
                    mark(m, LAG_TARGET),
                    each(&all, f, ms)
                )
            };
            let (lags, margins) = match mode {
                Mode::Verified => (
                    [target(&|r| r.lag_in), target(&|r| r.lag_out)],
                    ["".into(), "".into()],
                ),
                Mode::Sleeps => (
                    ["".into(), "".into()],
                    [
                        cell(&|r| Some(r.pre_stop_at? - r.join_at?)),
                        cell(&|r| Some(r.retire_at? - r.drop_at?)),
                    ],
                ),
            };
            let _ = writeln!(
                w,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} ms, {} of {} |",
                set.proxy.name(),
                mode.name(),
                cell(&|r| Some(r.join_at? - r.healthy_at?)),
                cell(&|r| Some(r.drop_at? - r.pre_stop_at?)),
                lags[0],
                lags[1],
                margins[0],
                margins[1],
                ms(median(all.iter().filter_map(|r| r.poll_interval))),
                all.iter().map(|r| r.poll_errors).sum::<usize>(),
                all.iter().map(|r| r.polls).sum::<usize>(),
            );
        }
    }

    let _ = writeln!(w, "\n<details><summary>Every proxy run</summary>\n");
    for set in sets {
        for r in &set.runs {
            let phases: Vec<String> = r
                .phases
                .iter()
                .map(|(p, d)| format!("{p} {d:.0}"))
                .collect();
            let span =
                |p: Option<(f64, f64)>| p.map_or("–".into(), |(a, b)| format!("{a:.0}–{b:.0}"));
            let _ = writeln!(
                w,
                "- {} {}: exit {:?}, {} of {} failed, wall {:.0}; since start: healthy {}, T_join {}, proxy_in {}, pre-stop {}, T_drop {}, proxy_out {}, retire {}; lag {} / {}; {} polls ({} failed); phases: {}{}",
                set.proxy.name(),
                r.mode.name(),
                r.code,
                r.failed,
                r.requests,
                r.wall,
                ms(r.healthy_at),
                ms(r.join_at),
                span(r.proxy_in),
                ms(r.pre_stop_at),
                ms(r.drop_at),
                span(r.proxy_out),
                ms(r.retire_at),
                ms(r.lag_in),
                ms(r.lag_out),
                r.polls,
                r.poll_errors,
                phases.join(", "),
                r.failures
                    .iter()
                    .take(3)
                    .map(|f| format!("; e.g. {f}"))
                    .collect::<String>(),
            );
        }
    }
    let _ = writeln!(w, "\n</details>");
    md
}

/// The runs of `mode` that exited 0: timings are theirs (failed requests count for all).
fn done(set: &ProxySet, mode: Mode) -> impl Iterator<Item = &Run> {
    set.runs
        .iter()
        .filter(move |r| r.mode == mode && r.code == Some(0))
}

fn each(runs: &[&Run], f: &dyn Fn(&Run) -> Option<f64>, show: fn(Option<f64>) -> String) -> String {
    runs.iter()
        .map(|r| show(f(r)))
        .collect::<Vec<_>>()
        .join(", ")
}

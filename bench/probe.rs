//! Runs the tool once and measures what it costs: wall time, CPU time of the tool process alone
//! and with the `docker` commands it waited for, its peak memory, and every docker CLI call it
//! logged with `-v`.
//!
//! CPU comes from `/proc/PID/stat` read while the exited tool is still a zombie (not yet reaped):
//! `utime + stime` is the tool alone, `cutime + cstime` the children it reaped (every `docker` and
//! the Compose plugin under it, the pre-stop `docker exec`s), both in clock ticks (10 ms). The
//! tool alone is usually below one tick, so its main thread's exact run time from
//! `/proc/PID/schedstat` (ns; the tool runs a current-thread runtime) is taken when larger. Peak
//! memory is the tool's `VmHWM`,
//! sampled every 10 ms while it runs (a high-water mark: the last sample is the peak, give or take
//! what happens in its last 10 ms).

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::unix_ms;

pub struct ToolRun {
    /// Unix milliseconds just before the tool was started.
    pub started_ms: f64,
    pub elapsed: Duration,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub cpu_own_ms: f64,
    pub cpu_children_ms: f64,
    pub peak_rss_kb: u64,
}

/// One docker CLI call the tool logged with `-v` (`DEBUG docker … (N ms, exit C)`).
#[derive(Debug, Clone)]
pub struct DockerCall {
    /// The tool's phase when the call ended (`startup` before the first phase).
    pub phase: String,
    pub command: String,
    /// `None` for the `docker events` stream.
    pub ms: Option<u64>,
    /// Run by the pre-stop template rather than by the tool itself.
    pub pre_stop: bool,
}

/// The tool's `--json` events (its stdout): phases and containers, with their Unix times (`time_ms`).
pub struct ToolEvents(Vec<Value>);

impl ToolEvents {
    pub fn parse(stdout: &str) -> ToolEvents {
        ToolEvents(
            stdout
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect(),
        )
    }

    fn of<'a>(&'a self, event: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.0.iter().filter(move |e| e["event"] == event)
    }

    /// Every `phase_start`, in order: (phase, Unix ms).
    pub fn starts(&self) -> Vec<(String, f64)> {
        self.of("phase_start")
            .filter_map(|e| Some((e["phase"].as_str()?.to_owned(), e["time_ms"].as_f64()?)))
            .collect()
    }

    /// When `phase` first started (Unix ms).
    pub fn start(&self, phase: &str) -> Option<f64> {
        self.starts()
            .into_iter()
            .find(|(p, _)| p == phase)
            .map(|(_, t)| t)
    }

    /// When `phase` first ended (Unix ms).
    pub fn end(&self, phase: &str) -> Option<f64> {
        self.of("phase_end")
            .find(|e| e["phase"] == phase)
            .and_then(|e| e["time_ms"].as_f64())
    }

    /// When the phase after the first `phase` started (Unix ms).
    pub fn after(&self, phase: &str) -> Option<f64> {
        let starts = self.starts();
        let i = starts.iter().position(|(p, _)| p == phase)?;
        starts.get(i + 1).map(|(_, t)| *t)
    }

    /// Every `phase_end`: (phase, `duration_ms`).
    pub fn durations(&self) -> Vec<(String, f64)> {
        self.of("phase_end")
            .filter_map(|e| Some((e["phase"].as_str()?.to_owned(), e["duration_ms"].as_f64()?)))
            .collect()
    }

    /// The containers the tool named with `role` (`old`, `new`).
    pub fn ids(&self, role: &str) -> Vec<String> {
        self.of("containers")
            .filter(|e| e["role"] == role)
            .flat_map(|e| e["ids"].as_array().cloned().unwrap_or_default())
            .filter_map(|id| id.as_str().map(str::to_owned))
            .collect()
    }
}

/// Runs `bin` in its own process group; kills the group after `limit`. Blocking.
pub fn run(
    bin: &Path,
    args: &[String],
    dir: &Path,
    envs: &[(&str, &str)],
    limit: Duration,
) -> ToolRun {
    let started_ms = unix_ms();
    let started = Instant::now();
    let mut child = Command::new(bin)
        .args(args)
        .current_dir(dir)
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
    let pid = child.id();
    let stdout = drain(child.stdout.take().expect("piped"));
    let stderr = drain(child.stderr.take().expect("piped"));

    let mut peak_rss_kb = 0;
    let (own, children) = loop {
        if let Some(times) = exited_times(pid) {
            break times;
        }
        if let Some(hwm) = high_water_mark(pid) {
            peak_rss_kb = peak_rss_kb.max(hwm);
        }
        if started.elapsed() > limit {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .status();
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let main_thread_ms = std::fs::read_to_string(format!("/proc/{pid}/schedstat"))
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |ns| ns / 1e6);
    let status = child.wait().expect("cannot wait for the tool");
    let elapsed = started.elapsed();
    let tick = clock_tick_ms();
    ToolRun {
        started_ms,
        elapsed,
        code: status.code(),
        stdout: stdout
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_default(),
        stderr: stderr
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_default(),
        cpu_own_ms: (own as f64 * tick).max(main_thread_ms),
        cpu_children_ms: children as f64 * tick,
        peak_rss_kb,
    }
}

/// Reads a pipe to its end on a thread of its own.
fn drain(mut pipe: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        let _ = tx.send(String::from_utf8_lossy(&bytes).into_owned());
    });
    rx
}

/// `(utime + stime, cutime + cstime)` in clock ticks once `pid` has exited (a zombie).
fn exited_times(pid: u32) -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name in parentheses, starting with field 3 (the state).
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    if fields.first() != Some(&"Z") {
        return None;
    }
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
    Some((field(14)? + field(15)?, field(16)? + field(17)?))
}

fn high_water_mark(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn clock_tick_ms() -> f64 {
    let out = Command::new("getconf").arg("CLK_TCK").output();
    let ticks = out
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .parse::<f64>()
                .ok()
        })
        .unwrap_or(100.0);
    1000.0 / ticks
}

/// The docker calls in the tool's `-v` output, each with the phase it ran in.
pub fn docker_calls(stderr: &str) -> Vec<DockerCall> {
    let mut phase = "startup".to_owned();
    let mut calls = Vec::new();
    for raw in stderr.lines() {
        let line = strip_ansi(raw);
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("DEBUG ") {
            let (pre_stop, command) = match rest.strip_prefix("pre-stop: ") {
                Some(command) => (true, command),
                None => (false, rest),
            };
            if !command.starts_with("docker ") {
                continue;
            }
            let (command, ms) = match command.rsplit_once(" (") {
                Some((cmd, tail)) if tail.ends_with(')') && tail.contains(" ms, exit ") => {
                    (cmd, tail.split(' ').next().and_then(|n| n.parse().ok()))
                }
                _ => (command.trim_end_matches(" (streaming)"), None),
            };
            calls.push(DockerCall {
                phase: phase.clone(),
                command: command.to_owned(),
                ms,
                pre_stop,
            });
        } else if let Some(name) = phase_line(line) {
            phase = name;
        }
    }
    calls
}

/// `0.23s scale      scaling app to 4 containers` → `scale`.
fn phase_line(line: &str) -> Option<String> {
    let (time, rest) = line.split_once(' ')?;
    time.strip_suffix('s')?.parse::<f64>().ok()?;
    let name = rest.split_whitespace().next()?;
    const PHASES: [&str; 11] = [
        "cleanup",
        "scale",
        "health",
        "settle",
        "pre-stop",
        "drain",
        "proxy-wait",
        "retire",
        "verify",
        "rollback",
        "done",
    ];
    PHASES.contains(&name).then(|| name.to_owned())
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters… final byte in @..~
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) && c != '[' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

//! `fake-docker`: a stand-in `docker` (and, under the name `docker-compose`, a standalone Compose)
//! for the CLI tests. It records every call and answers from a script; it never talks to Docker.
//!
//! **Record.** Each call appends one JSON line to `$FAKE_DOCKER_LOG`:
//! `{"prog": "fake-docker", "args": [...], "env": {"DOCKER_HOST": null, "DOCKER_CONTEXT": "x"}}`
//! (`prog` is the file name it was run as, `args` excludes it).
//!
//! **Answer.** `$FAKE_DOCKER_SCRIPT` is a JSON array of rules, tried in order; the first that
//! matches answers the call:
//!
//! ```json
//! {"when": "compose up",          // the call's words start with these words (required)
//!  "stdout": "", "stderr": "", "exit": 0, "sleep_ms": 0,
//!  "times": 1,                    // answers only its first N calls, then is skipped
//!  "if_set": ["up"],              // flags that must be set for the rule to match
//!  "unless_set": ["retired"],     // flags that must not be set
//!  "set": ["up"],                 // flags this rule sets when it answers
//!  "lines": [{"wait_for": "seen", "after_ms": 50, "text": "{...}"}],  // printed after stdout
//!  "stream": true}                // then stay alive until killed, as `docker events` does
//! ```
//!
//! The words matched are the arguments without the leading Docker global flags (every word
//! before the first one not starting with `-`: the tool writes globals as `--flag=value`). Run
//! as `docker-compose`, the words are `docker-compose` followed by all the arguments.
//!
//! `inspect … -- ID…` is answered id by id, as the real one: each id gets the answer of the rule
//! for the words `inspect ID` (a JSON array), the arrays are joined, the exit code is the worst.
//!
//! A call no rule answers exits 99 with a loud stderr, so tests notice.
//!
//! Flags and per-rule counters live in `$FAKE_DOCKER_SCRIPT.state`, updated under a file lock:
//! the tool runs some calls in parallel.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use serde_json::{Value, json};

#[derive(Default)]
struct State {
    flags: BTreeSet<String>,
    /// How many times each rule (by index) answered.
    used: BTreeMap<usize, u64>,
}

impl State {
    fn read(file: &mut File) -> State {
        let mut text = String::new();
        file.rewind().ok();
        file.read_to_string(&mut text).ok();
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let flags = value["flags"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f.as_str().map(str::to_owned))
            .collect();
        let used = value["used"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.parse().ok()?, v.as_u64()?)))
            .collect();
        State { flags, used }
    }

    fn write(&self, file: &mut File) {
        let used: serde_json::Map<String, Value> = self
            .used
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        let text = json!({ "flags": self.flags, "used": used }).to_string();
        file.set_len(0).ok();
        file.rewind().ok();
        file.write_all(text.as_bytes()).ok();
    }
}

struct Answer {
    stdout: String,
    stderr: String,
    exit: i32,
    sleep_ms: u64,
    lines: Vec<Value>,
    stream: bool,
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

/// Picks the rule for `words` and records its use, all under the state lock.
fn answer(rules: &[Value], words: &[String], state_path: &Path) -> Option<Answer> {
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(state_path)
        .expect("fake-docker: cannot open its state file");
    file.lock()
        .expect("fake-docker: cannot lock its state file");
    let mut state = State::read(&mut file);
    let found = rules.iter().enumerate().find(|(index, rule)| {
        let when: Vec<&str> = rule["when"]
            .as_str()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        let used = state.used.get(index).copied().unwrap_or(0);
        words.len() >= when.len()
            && words.iter().zip(&when).all(|(word, want)| word == want)
            && rule["times"].as_u64().is_none_or(|times| used < times)
            && strings(&rule["if_set"])
                .iter()
                .all(|f| state.flags.contains(f))
            && !strings(&rule["unless_set"])
                .iter()
                .any(|f| state.flags.contains(f))
    });
    let (index, rule) = found?;
    *state.used.entry(index).or_default() += 1;
    state.flags.extend(strings(&rule["set"]));
    state.write(&mut file);
    drop(file);
    let text = |key: &str| rule[key].as_str().unwrap_or("").to_owned();
    Some(Answer {
        stdout: text("stdout"),
        stderr: text("stderr"),
        exit: rule["exit"].as_i64().unwrap_or(0) as i32,
        sleep_ms: rule["sleep_ms"].as_u64().unwrap_or(0),
        lines: rule["lines"].as_array().cloned().unwrap_or_default(),
        stream: rule["stream"].as_bool().unwrap_or(false),
    })
}

fn flag_is_set(state_path: &Path, flag: &str) -> bool {
    let Ok(mut file) = File::open(state_path) else {
        return false;
    };
    if file.lock_shared().is_err() {
        return false;
    }
    State::read(&mut file).flags.contains(flag)
}

fn log(args: &[String], prog: &str) {
    let Some(path) = std::env::var_os("FAKE_DOCKER_LOG") else {
        return;
    };
    let env = |name: &str| std::env::var(name).ok();
    let line = json!({
        "prog": prog,
        "args": args,
        "env": {
            "DOCKER_HOST": env("DOCKER_HOST"),
            "DOCKER_CONTEXT": env("DOCKER_CONTEXT"),
            "COMPOSE_REMOVE_ORPHANS": env("COMPOSE_REMOVE_ORPHANS"),
        },
    });
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("fake-docker: cannot open FAKE_DOCKER_LOG");
    file.lock().ok();
    // One write of the whole line: a reader never sees half of it but at the very end.
    file.write_all(format!("{line}\n").as_bytes())
        .expect("fake-docker: cannot write FAKE_DOCKER_LOG");
}

/// Exits once the process that started it is gone, so a streaming fake never outlives a test.
fn sleep_watching_parent(duration: Duration) {
    let parent = std::os::unix::process::parent_id();
    let step = Duration::from_millis(20);
    let mut left = duration;
    while !left.is_zero() {
        if std::os::unix::process::parent_id() != parent {
            std::process::exit(0);
        }
        let nap = left.min(step);
        std::thread::sleep(nap);
        left -= nap;
    }
}

fn main() -> ExitCode {
    let mut argv = std::env::args();
    let prog = argv
        .next()
        .map(|p| {
            Path::new(&p)
                .file_name()
                .map_or(p.clone(), |n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_default();
    let args: Vec<String> = argv.collect();
    log(&args, &prog);

    let words: Vec<String> = if prog == "docker-compose" {
        std::iter::once(prog.clone())
            .chain(args.iter().cloned())
            .collect()
    } else {
        args.iter()
            .skip_while(|a| a.starts_with('-'))
            .cloned()
            .collect()
    };
    let script_path = PathBuf::from(
        std::env::var_os("FAKE_DOCKER_SCRIPT").expect("FAKE_DOCKER_SCRIPT is not set"),
    );
    let rules: Vec<Value> = serde_json::from_str(
        &std::fs::read_to_string(&script_path)
            .expect("fake-docker: cannot read FAKE_DOCKER_SCRIPT"),
    )
    .expect("fake-docker: FAKE_DOCKER_SCRIPT is not a JSON array of rules");
    let mut state_path = script_path.into_os_string();
    state_path.push(".state");
    let state_path = PathBuf::from(state_path);

    let unanswered = |words: &[String]| {
        eprintln!(
            "fake-docker: NO RULE ANSWERS `{}` (full argv: {args:?})",
            words.join(" ")
        );
        ExitCode::from(99)
    };

    // `inspect … -- A B`: one answer per id, joined into one array.
    if words.first().is_some_and(|w| w == "inspect")
        && let Some(dash) = words.iter().position(|w| w == "--")
    {
        let mut found = Vec::new();
        let mut errors = Vec::new();
        let mut exit = 0;
        for id in &words[dash + 1..] {
            let key = vec!["inspect".to_owned(), id.clone()];
            let Some(answer) = answer(&rules, &key, &state_path) else {
                return unanswered(&key);
            };
            std::thread::sleep(Duration::from_millis(answer.sleep_ms));
            if let Ok(Value::Array(items)) = serde_json::from_str(&answer.stdout) {
                found.extend(items);
            }
            if !answer.stderr.is_empty() {
                errors.push(answer.stderr);
            }
            exit = exit.max(answer.exit);
        }
        println!("{}", Value::Array(found));
        if !errors.is_empty() {
            eprintln!("{}", errors.join("\n"));
        }
        return ExitCode::from(exit as u8);
    }

    let Some(answer) = answer(&rules, &words, &state_path) else {
        return unanswered(&words);
    };
    std::thread::sleep(Duration::from_millis(answer.sleep_ms));
    let mut stdout = std::io::stdout();
    let _ = stdout.write_all(answer.stdout.as_bytes());
    eprint!("{}", answer.stderr);
    let _ = stdout.flush();
    for line in &answer.lines {
        if let Some(flag) = line["wait_for"].as_str() {
            while !flag_is_set(&state_path, flag) {
                sleep_watching_parent(Duration::from_millis(20));
            }
        }
        sleep_watching_parent(Duration::from_millis(
            line["after_ms"].as_u64().unwrap_or(0),
        ));
        if writeln!(stdout, "{}", line["text"].as_str().unwrap_or("")).is_err()
            || stdout.flush().is_err()
        {
            return ExitCode::from(0);
        }
    }
    if answer.stream {
        loop {
            sleep_watching_parent(Duration::from_secs(3600));
        }
    }
    ExitCode::from(answer.exit as u8)
}

//! One host's run: this same program started again with `--context HOST --json`, its events
//! relayed with the host named, its stderr passed on prefixed with the host, and the signals
//! this run receives passed on to it.

use std::ffi::OsString;
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::watch;

use crate::docker::command::{ChildEnv, detached};
use crate::exit::Exit;
use crate::model::host::exit_of;
use crate::model::signal::Signal;
use crate::report::Reporter;

/// How a host's run ended.
pub struct ChildEnd {
    pub exit: Exit,
    /// Its last error or final message.
    pub note: String,
}

pub async fn run_child(
    args: Vec<OsString>,
    context: &str,
    reporter: &Reporter,
    mut signals: watch::Receiver<Option<Signal>>,
) -> ChildEnd {
    let program = match std::env::current_exe() {
        Ok(program) => program,
        Err(error) => return failed(format!("cannot find this program to run it: {error}")),
    };
    let mut command = detached(program);
    // The child reads its engine from its own --context: nothing inherited may contradict it.
    ChildEnv {
        set: vec![],
        removed: vec!["DOCKER_HOST", "DOCKER_CONTEXT"],
    }
    .apply(&mut command);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(error) => return failed(format!("cannot start the run for {context}: {error}")),
    };
    let pid = child.id();
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return failed("no output pipes".into());
    };
    let events = async {
        let mut outcome = None;
        let mut note = String::new();
        let mut lines = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if let Some(found) = event.get("outcome").and_then(|o| o.as_str()) {
                outcome = Some(found.to_owned());
                if let Some(message) = event.get("message").and_then(|m| m.as_str()) {
                    note = message.to_owned();
                }
            }
            reporter.relay(context, event);
        }
        (outcome, note)
    };
    let passed_on = async {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            reporter.child_line(context, &line);
        }
    };
    let forwarded = async {
        // Ends when the parent drops the sender, i.e. never before the child exits.
        while signals.changed().await.is_ok() {
            if let (Some(signal), Some(pid)) = (*signals.borrow(), pid) {
                let name = match signal {
                    Signal::Interrupt => "-INT",
                    Signal::Terminate => "-TERM",
                    Signal::HangUp => "-HUP",
                };
                let _ = std::process::Command::new("kill")
                    .args([name, "--", &pid.to_string()])
                    .status();
            }
        }
        std::future::pending::<()>().await
    };
    let run = async {
        let ((outcome, note), (), status) = tokio::join!(events, passed_on, child.wait());
        (outcome, note, status)
    };
    let (outcome, note, status) = tokio::select! {
        finished = run => finished,
        () = forwarded => unreachable!("forwarding never ends"),
    };
    let code = status.ok().and_then(|s| s.code());
    ChildEnd {
        exit: exit_of(code, outcome.as_deref()),
        note,
    }
}

fn failed(note: String) -> ChildEnd {
    ChildEnd {
        exit: Exit::Usage,
        note,
    }
}

//! A terminal a person would use, for the tests: a tmux session on a server of the test's own
//! (its own socket, killed when dropped), commands typed into it, the screen read back with
//! `capture-pane`.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The spinner frames of the progress line (src/report/live.rs): a screen line holding one is the
/// progress line.
pub const SPINNER: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

pub fn is_progress_line(line: &str) -> bool {
    line.contains(SPINNER)
}

/// Whether tmux can be run here; says so loudly when not, and refuses to skip when `CI` is set.
pub fn available() -> bool {
    if Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none_or(|v| v.is_empty()),
        "tmux is missing and CI is set: the terminal tests must run in CI (tests/setup.sh \
         installs tmux)"
    );
    super::harness::report(
        "WARNING: tmux is not installed: SKIPPING the terminal tests (apt-get install tmux). \
         The progress line has not been checked in a terminal.",
    );
    false
}

pub struct Tmux {
    socket: String,
    /// Commands run so far: each prints its exit code under a marker of its own, so that an
    /// earlier command's line still on the screen is never taken for this one's.
    commands: std::cell::Cell<u32>,
}

/// What the screen showed while a command ran: every distinct capture, and the last one.
pub struct Watched {
    pub samples: Vec<String>,
    pub last: String,
    /// The command's exit code, from the `EXIT-n=` line it printed.
    pub exit: i32,
    /// `EXIT-n=`, this command's marker.
    marker: String,
}

impl Tmux {
    /// A `width`×`height` terminal running bash in `dir`, with `env` set.
    pub fn start(name: &str, dir: &Path, width: u16, height: u16, env: &[(&str, &str)]) -> Tmux {
        let tmux = Tmux {
            socket: format!("reroll-test-{name}-{}", std::process::id()),
            commands: std::cell::Cell::new(0),
        };
        let mut args = vec![
            "new-session".to_owned(),
            "-d".to_owned(),
            "-s".to_owned(),
            "test".to_owned(),
            "-x".to_owned(),
            width.to_string(),
            "-y".to_owned(),
            height.to_string(),
            "-c".to_owned(),
            dir.display().to_string(),
        ];
        for (key, value) in env {
            args.push("-e".to_owned());
            args.push(format!("{key}={value}"));
        }
        args.extend(["bash --norc --noprofile".to_owned()]);
        let started = tmux.tmux(&args);
        assert!(
            started.status.success(),
            "tmux new-session failed: {started:?}"
        );
        tmux
    }

    fn tmux<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Output {
        Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .expect("cannot run tmux")
    }

    /// Types `line` and Enter.
    pub fn type_line(&self, line: &str) {
        assert!(
            self.tmux(&["send-keys", "-t", "test", "-l", line])
                .status
                .success()
        );
        assert!(
            self.tmux(&["send-keys", "-t", "test", "Enter"])
                .status
                .success()
        );
    }

    /// Resizes the terminal, as a person drags its window.
    pub fn resize(&self, width: u16, height: u16) {
        let (width, height) = (width.to_string(), height.to_string());
        let resized = self.tmux(&["resize-window", "-t", "test", "-x", &width, "-y", &height]);
        assert!(
            resized.status.success(),
            "tmux resize-window failed: {resized:?}"
        );
    }

    /// Ctrl-C, as a person presses it: the terminal sends SIGINT to the foreground job.
    pub fn ctrl_c(&self) {
        assert!(
            self.tmux(&["send-keys", "-t", "test", "C-c"])
                .status
                .success()
        );
    }

    /// The visible screen; with `history` also the lines scrolled off it, and a line the terminal
    /// wrapped as one.
    pub fn screen(&self, history: bool) -> String {
        let mut args = vec!["capture-pane", "-p", "-t", "test"];
        if history {
            args.extend(["-S", "-", "-J"]);
        }
        let captured = self.tmux(&args);
        assert!(
            captured.status.success(),
            "capture-pane failed: {captured:?}"
        );
        String::from_utf8_lossy(&captured.stdout).into_owned()
    }

    /// Runs `command` and reads the screen every 50 ms until it has printed its exit code;
    /// `on_sample` sees every capture (e.g. to press Ctrl-C at the right moment).
    pub fn watch(
        &self,
        command: &str,
        limit: Duration,
        mut on_sample: impl FnMut(&str),
    ) -> Watched {
        self.commands.set(self.commands.get() + 1);
        let marker = format!("EXIT-{}=", self.commands.get());
        self.type_line(&format!("clear; {command}; echo \"{marker}$?\""));
        let deadline = Instant::now() + limit;
        let mut samples: Vec<String> = Vec::new();
        loop {
            let screen = self.screen(false);
            if samples.last() != Some(&screen) {
                on_sample(&screen);
                samples.push(screen.clone());
            }
            let exit = screen.lines().find_map(|line| {
                line.strip_prefix(marker.as_str())
                    .and_then(|code| code.trim().parse::<i32>().ok())
            });
            if let Some(exit) = exit {
                return Watched {
                    samples,
                    last: self.screen(true),
                    exit,
                    marker,
                };
            }
            assert!(
                Instant::now() < deadline,
                "`{command}` did not finish within {limit:?}; the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]);
    }
}

impl Watched {
    /// The non-blank lines the command printed: between its typed line (or, when `clear` kept the
    /// history, an earlier command's exit line) and its own exit line.
    pub fn output(&self) -> Vec<&str> {
        let lines: Vec<&str> = self.last.lines().collect();
        let end = lines
            .iter()
            .position(|l| l.starts_with(&self.marker))
            .unwrap_or(lines.len());
        let start = lines[..end]
            .iter()
            .rposition(|l| l.contains(&self.marker) || l.starts_with("EXIT-"))
            .map_or(0, |at| at + 1);
        lines[start..end]
            .iter()
            .copied()
            .filter(|l| !l.trim().is_empty())
            .collect()
    }

    /// Checks that the progress line was drawn in place: never two on one screen, always the
    /// bottom line of the output, and that it is gone from the final screen. Answers every
    /// distinct progress line seen.
    pub fn progress_lines(&self) -> Vec<String> {
        let mut seen: Vec<String> = Vec::new();
        for screen in &self.samples {
            let lines: Vec<&str> = screen.lines().filter(|l| !l.trim().is_empty()).collect();
            let progress: Vec<&&str> = lines.iter().filter(|l| is_progress_line(l)).collect();
            assert!(
                progress.len() <= 1,
                "more than one progress line on the screen (not redrawn in place):\n{screen}"
            );
            if let Some(line) = progress.first() {
                assert_eq!(
                    lines.last(),
                    Some(*line),
                    "the progress line is not the bottom line:\n{screen}"
                );
                if seen.last().map(String::as_str) != Some(line.trim_end()) {
                    seen.push(line.trim_end().to_owned());
                }
            }
        }
        let stale: Vec<&str> = self.last.lines().filter(|l| is_progress_line(l)).collect();
        assert!(
            stale.is_empty(),
            "the final screen still shows progress lines {stale:?}:\n{}",
            self.last
        );
        seen
    }
}

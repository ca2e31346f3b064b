//! The live progress line on a terminal: the phase, how many of the watched containers have got
//! where the phase waits for them, the current wait's deadline and the elapsed time, redrawn in
//! place under the report's plain lines (indicatif draws it). Off when stderr is not a terminal,
//! with `--json`, `-q` or `-v`: there the plain lines are the whole report.

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::io::Write as _;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle, TermLike};

use crate::duration::show;

/// How often the line is redrawn, so the clocks on it move while nothing else happens.
const TICK: Duration = Duration::from_millis(100);

/// What the line shows, shared with the drawing thread.
#[derive(Default)]
struct View {
    phase: &'static str,
    /// E.g. (1, 2, "new healthy").
    tally: Option<(usize, usize, &'static str)>,
    /// The current wait: when it started and when it gives up.
    wait: Option<(Instant, Instant)>,
}

pub struct Live {
    started: Instant,
    view: Arc<Mutex<View>>,
    /// Present while the line is on screen.
    bar: Mutex<Option<ProgressBar>>,
}

/// Whether the line belongs on this stderr: a terminal that can redraw in place.
pub fn wanted() -> bool {
    std::io::stderr().is_terminal() && std::env::var("TERM").map_or(true, |term| term != "dumb")
}

impl Live {
    pub fn new(started: Instant) -> Self {
        Live {
            started,
            view: Arc::default(),
            bar: Mutex::new(None),
        }
    }

    fn view(&self) -> MutexGuard<'_, View> {
        self.view.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn bar(&self) -> MutexGuard<'_, Option<ProgressBar>> {
        self.bar.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new phase: its name, no tally or wait yet; puts the line on screen.
    pub fn phase(&self, name: &'static str) {
        *self.view() = View {
            phase: name,
            ..View::default()
        };
        let mut bar = self.bar();
        match &*bar {
            Some(bar) => bar.tick(),
            None => *bar = Some(self.draw()),
        }
    }

    pub fn tally(&self, done: usize, of: usize, what: &'static str) {
        self.view().tally = Some((done, of, what));
    }

    pub fn waiting_until(&self, deadline: Instant) {
        let mut view = self.view();
        if view.wait.is_none_or(|(_, until)| until != deadline) {
            view.wait = Some((Instant::now(), deadline));
        }
    }

    /// Prints a plain line above the live one (or alone, when the line is not on screen).
    /// Answers false when it did not print: the caller prints it itself.
    pub fn println(&self, text: &str) -> bool {
        match &*self.bar() {
            // Not `bar.println`: indicatif pads the lines it prints to the terminal's width, which
            // `Margin` narrows. Written this way, only the progress line is indicatif's.
            Some(bar) => {
                bar.suspend(|| {
                    let _ = writeln!(std::io::stderr().lock(), "{text}");
                });
                true
            }
            None => false,
        }
    }

    /// Takes the line off the screen, leaving only the plain lines above it.
    pub fn clear(&self) {
        if let Some(bar) = self.bar().take() {
            bar.finish_and_clear();
        }
    }

    fn draw(&self) -> ProgressBar {
        let view = Arc::clone(&self.view);
        let started = self.started;
        let line = move |_: &ProgressState, out: &mut dyn std::fmt::Write| {
            let view = view.lock().unwrap_or_else(|e| e.into_inner());
            // Never wider than `Margin` says the terminal is: a line that wraps where indicatif
            // does not expect it would be cleared a line too high or too low.
            let width = usize::from(Margin(console::Term::stderr()).width());
            let line = render(&view, started, Instant::now());
            let _ = out.write_str(&line.chars().take(width).collect::<String>());
        };
        let style = ProgressStyle::with_template("{line}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner())
            .with_key("line", line);
        // 20 redraws a second at most, as indicatif's own stderr target.
        let target =
            ProgressDrawTarget::term_like_with_hz(Box::new(Margin(console::Term::stderr())), 20);
        let bar = ProgressBar::with_draw_target(None, target).with_style(style);
        bar.enable_steady_tick(TICK);
        bar
    }
}

impl Drop for Live {
    /// A run that ends without its finish (an early return) leaves no stale line behind.
    fn drop(&mut self) {
        self.clear();
    }
}

/// Stderr as a terminal a few columns narrower than it is. indicatif pads its line with spaces to
/// the terminal's width, which leaves the cursor in the last column: the terminal's echo of a
/// Ctrl-C (`^C`) then wraps onto a new line, indicatif clears that one instead of its own, and a
/// stale progress line stays on screen. With these columns free the echo stays on the line, and
/// the next redraw clears it.
#[derive(Debug)]
struct Margin(console::Term);

/// Wider than `^C` and the cursor after it.
const MARGIN: u16 = 4;

impl TermLike for Margin {
    fn width(&self) -> u16 {
        self.0.size().1.saturating_sub(MARGIN).max(1)
    }
    fn height(&self) -> u16 {
        self.0.size().0
    }
    fn move_cursor_up(&self, n: usize) -> std::io::Result<()> {
        self.0.move_cursor_up(n)
    }
    fn move_cursor_down(&self, n: usize) -> std::io::Result<()> {
        self.0.move_cursor_down(n)
    }
    fn move_cursor_right(&self, n: usize) -> std::io::Result<()> {
        self.0.move_cursor_right(n)
    }
    fn move_cursor_left(&self, n: usize) -> std::io::Result<()> {
        self.0.move_cursor_left(n)
    }
    fn write_line(&self, s: &str) -> std::io::Result<()> {
        self.0.write_line(s)
    }
    fn write_str(&self, s: &str) -> std::io::Result<()> {
        self.0.write_str(s)
    }
    fn clear_line(&self) -> std::io::Result<()> {
        self.0.clear_line()
    }
    fn flush(&self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// The spinner's frames, one per tick.
const FRAMES: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/// The line, laid out like the plain lines above it (elapsed time, then the phase):
/// `  4.25s health     ⠹ 1/2 new healthy · waited 3.1s of 14.0s`: well under 80 columns, so
/// that it never wraps.
fn render(view: &View, started: Instant, now: Instant) -> String {
    let elapsed = now.saturating_duration_since(started);
    let frame = FRAMES[(elapsed.as_millis() / TICK.as_millis()) as usize % FRAMES.len()];
    let mut line = format!("{:>7} {:<10} {frame}", show(elapsed), view.phase);
    if let Some((done, of, what)) = view.tally {
        let _ = write!(line, " {done}/{of} {what}");
    }
    if let Some((since, until)) = view.wait {
        let waited = now.saturating_duration_since(since);
        let limit = until.saturating_duration_since(since);
        let separator = if view.tally.is_some() { " ·" } else { "" };
        let _ = write!(
            line,
            "{separator} waited {} of {}",
            tenths(waited),
            tenths(limit + Duration::from_millis(50))
        );
    }
    line
}

/// Seconds with one decimal: enough for a wait, which the line shows next to its limit.
fn tenths(duration: Duration) -> String {
    let tenths = duration.as_millis() / 100;
    format!("{}.{}s", tenths / 10, tenths % 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_shows_phase_tally_wait_and_elapsed() {
        let started = Instant::now();
        let view = View {
            phase: "health",
            tally: Some((1, 2, "new healthy")),
            wait: Some((
                started + Duration::from_secs(1),
                started + Duration::from_secs(31),
            )),
        };
        let line = render(&view, started, started + Duration::from_millis(4_250));
        assert!(line.starts_with("  4.25s health     "), "{line:?}");
        assert!(
            line.ends_with(" 1/2 new healthy · waited 3.2s of 30.0s"),
            "{line:?}"
        );
        let bare = View {
            phase: "scale",
            ..View::default()
        };
        let line = render(&bare, started, started);
        assert_eq!(line, "  0.00s scale      ⠋");
    }
}

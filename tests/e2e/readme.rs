//! The `docker reroll …` command an example's README tells users to run, so that the tests run
//! exactly what the documentation promises.

use std::path::Path;

/// The command line of the README's `docker reroll` example.
#[derive(Debug)]
pub struct Documented {
    /// `NAME=value` assignments before the command, e.g. `APP_VERSION=b`.
    pub env: Vec<(String, String)>,
    /// Everything after `docker reroll`.
    pub args: Vec<String>,
}

/// Finds the one line of `dir/README.md` that runs `docker reroll` (or the standalone
/// `docker-reroll`) and splits it like a shell.
pub fn documented_command(dir: &Path) -> Documented {
    let path = dir.join("README.md");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let lines: Vec<&str> = code_lines(&text)
        .filter(|l| l.contains("docker reroll ") || l.contains("docker-reroll "))
        .collect();
    let [line] = lines[..] else {
        panic!(
            "{} should show exactly one `docker reroll` command line, found {lines:?}",
            path.display()
        );
    };
    let words = shell_words::split(line).expect("README command is not valid shell");
    let (at, len) = match words.iter().position(|w| w == "docker-reroll") {
        Some(at) => (at, 1),
        None => (
            words
                .windows(2)
                .position(|w| w[0] == "docker" && w[1] == "reroll")
                .expect("no `docker reroll` in the line"),
            2,
        ),
    };
    let env = words[..at]
        .iter()
        .map(|w| {
            let (k, v) = w
                .split_once('=')
                .expect("only VAR=value may precede the command");
            (k.to_owned(), v.to_owned())
        })
        .collect();
    Documented {
        env,
        args: words[at + len..].to_vec(),
    }
}

/// The lines inside the README's fenced code blocks.
fn code_lines(markdown: &str) -> impl Iterator<Item = &str> {
    let mut in_code = false;
    markdown.lines().filter(move |line| {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            return false;
        }
        in_code
    })
}

//! The exit codes, written once: the `Exit` enum gives each its code and meaning, `--help` and
//! the README's table are made from it (a test holds the README to it); and the error that
//! carries one.

use std::fmt;

/// How a run ended, as the shell sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Exit {
    /// The rollout finished: N new containers serve.
    Done,
    /// The rollout failed and was rolled back: the old containers still serve.
    RolledBack,
    /// The rollout failed part of the way (`failure_action: pause` or `continue`): old and new
    /// containers serve side by side; a next run finishes it.
    Partial,
    /// Bad usage or an unmet precondition: nothing was changed.
    Usage,
    /// The rollout failed and cleanup is incomplete: the output says what is left.
    Incomplete,
    /// The terminal hung up (SIGHUP), after rolling back.
    HungUp,
    /// Interrupted by SIGINT, after rolling back.
    Interrupted,
    /// Interrupted by SIGTERM, after rolling back.
    Terminated,
}

impl Exit {
    /// Every variant, in the order of the table.
    pub const ALL: [Exit; 8] = [
        Exit::Done,
        Exit::RolledBack,
        Exit::Partial,
        Exit::Usage,
        Exit::Incomplete,
        Exit::HungUp,
        Exit::Interrupted,
        Exit::Terminated,
    ];

    pub fn code(self) -> u8 {
        match self {
            Exit::Done => 0,
            Exit::RolledBack | Exit::Partial => 1,
            Exit::Usage => 2,
            Exit::Incomplete => 3,
            Exit::HungUp => 129,
            Exit::Interrupted => 130,
            Exit::Terminated => 143,
        }
    }

    /// What the code tells the user, in the README's words (Markdown).
    pub fn meaning(self) -> &'static str {
        match self {
            Exit::Done => "done: N new containers serve",
            Exit::RolledBack => {
                "failed and rolled back: the old containers still serve, no new container is left"
            }
            Exit::Partial => {
                "with `failure_action: pause` / `continue`, failed part of the way: old and new \
                 containers serve side by side, and the output lists both"
            }
            Exit::Usage => "usage or precondition error: nothing was changed",
            Exit::Incomplete => {
                "failed and cleanup is incomplete: the output says exactly what is left and the \
                 command that fixes it"
            }
            Exit::HungUp => "the terminal hung up (SIGHUP), after rolling back",
            Exit::Interrupted => "interrupted by SIGINT, after rolling back",
            Exit::Terminated => "terminated by SIGTERM, after rolling back",
        }
    }

    /// The documented table: a row a code, with the meanings of the variants that share it.
    pub fn table() -> Vec<(u8, String)> {
        let mut rows: Vec<(u8, String)> = Vec::new();
        for exit in Exit::ALL {
            match rows.last_mut() {
                Some((code, meaning)) if *code == exit.code() => {
                    meaning.push_str("; or, ");
                    meaning.push_str(exit.meaning());
                }
                _ => rows.push((exit.code(), exit.meaning().to_owned())),
            }
        }
        rows
    }

    /// The table as the README has it under "### Exit codes".
    pub fn markdown_table() -> String {
        let mut table = String::from("| code | meaning |\n|---|---|\n");
        for (code, meaning) in Exit::table() {
            table.push_str(&format!("| {code} | {meaning} |\n"));
        }
        table
    }

    /// The table as `--help` ends, wrapped to 100 columns.
    pub fn help_text() -> String {
        const WIDTH: usize = 100;
        const INDENT: &str = "       ";
        let mut text = String::from("Exit codes:");
        for (code, meaning) in Exit::table() {
            let mut line = format!("  {code:<5}");
            for word in meaning.replace('`', "").split_whitespace() {
                if line.len() + 1 + word.len() > WIDTH {
                    text.push('\n');
                    text.push_str(line.trim_end());
                    line = INDENT.to_owned();
                } else if line.len() > INDENT.len() {
                    line.push(' ');
                }
                line.push_str(word);
            }
            text.push('\n');
            text.push_str(&line);
        }
        text
    }
}

/// An error that ends the run with a given exit code. Its message is printed once, by `main`.
#[derive(Debug)]
pub struct Failure {
    pub exit: Exit,
    pub message: String,
}

impl Failure {
    /// A usage or precondition error: exit 2, and the caller guarantees nothing was changed.
    pub fn usage(message: impl Into<String>) -> Self {
        Failure {
            exit: Exit::Usage,
            message: message.into(),
        }
    }

    pub fn new(exit: Exit, message: impl Into<String>) -> Self {
        Failure {
            exit,
            message: message.into(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_is_in_the_table_once_and_codes_ascend() {
        let mut seen = Vec::new();
        for exit in Exit::ALL {
            // No wildcard: a new variant must be placed here, and in ALL.
            match exit {
                Exit::Done
                | Exit::RolledBack
                | Exit::Partial
                | Exit::Usage
                | Exit::Incomplete
                | Exit::HungUp
                | Exit::Interrupted
                | Exit::Terminated => assert!(!seen.contains(&exit), "{exit:?} twice"),
            }
            seen.push(exit);
        }
        let codes: Vec<u8> = Exit::table().iter().map(|(code, _)| *code).collect();
        assert!(codes.is_sorted(), "{codes:?}");
        assert_eq!(codes, [0, 1, 2, 3, 129, 130, 143]);
    }

    #[test]
    fn the_help_text_lists_every_code_within_100_columns() {
        let help = Exit::help_text();
        assert!(help.lines().all(|line| line.len() <= 100), "{help}");
        assert!(!help.contains('`'), "{help}");
        for (code, _) in Exit::table() {
            assert!(help.contains(&format!("\n  {code:<5}")), "{code}\n{help}");
        }
    }
}

//! The README against the code: what it documents must be what the binary does. No Docker needed.

use std::collections::BTreeSet;

use clap::CommandFactory;
use docker_reroll::cli::Cli;
use docker_reroll::exit::Exit;

const README: &str = include_str!("../README.md");

/// The lines of the README's section under `heading` (a whole line), up to the next heading of
/// the same or a higher level.
fn section(heading: &str) -> Vec<&'static str> {
    let level = heading.split(' ').next().unwrap_or_default();
    let mut lines = README.lines().skip_while(|line| *line != heading);
    assert!(lines.next().is_some(), "README.md has no `{heading}`");
    lines
        .take_while(|line| {
            let hashes = line.split(' ').next().unwrap_or_default();
            !(line.starts_with('#')
                && hashes.chars().all(|c| c == '#')
                && hashes.len() <= level.len())
        })
        .collect()
}

/// The first Markdown table of a section, as its lines.
fn first_table(lines: &[&str]) -> String {
    lines
        .iter()
        .skip_while(|line| !line.starts_with('|'))
        .take_while(|line| line.starts_with('|'))
        .map(|line| format!("{line}\n"))
        .collect()
}

#[test]
fn the_readme_exit_codes_are_the_binarys() {
    assert_eq!(
        first_table(&section("### Exit codes")),
        Exit::markdown_table(),
        "README.md's exit-code table differs from src/exit.rs (Exit::meaning): \
         paste Exit::markdown_table() into the README"
    );
}

/// The long flags in a text: each `--name` not inside a word.
fn long_flags(text: &str) -> BTreeSet<String> {
    let mut flags = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("--") {
        let before = rest[..at].chars().next_back();
        let name: String = rest[at + 2..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        let starts = name.starts_with(|c: char| c.is_ascii_alphanumeric());
        if starts && !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-') {
            flags.insert(format!("--{name}"));
        }
        rest = &rest[at + 2 + name.len()..];
    }
    flags
}

/// The long flags `--help` lists: its option lines (`  -f, --file <FILE>  …`,
/// `      --wait <DURATION>  …`), not the descriptions.
fn help_flags() -> BTreeSet<String> {
    let help = Cli::command().render_help().to_string();
    help.lines()
        .filter(|line| {
            let indent = line.len() - line.trim_start().len();
            (indent == 2 || indent == 6) && line.trim_start().starts_with('-')
        })
        .flat_map(|line| {
            let spec = line.trim_start().split("  ").next().unwrap_or_default();
            long_flags(spec)
        })
        .collect()
}

/// The long flags in the first column of the README's options table.
fn readme_flags() -> BTreeSet<String> {
    first_table(&section("## Options"))
        .lines()
        .flat_map(|row| long_flags(row.split(" | ").next().unwrap_or_default()))
        .collect()
}

#[test]
fn the_readme_documents_every_flag_of_help_and_no_other() {
    let help = help_flags();
    let readme = readme_flags();
    assert!(
        help.contains("--file") && help.contains("--tlskey"),
        "{help:?}"
    );
    let undocumented: Vec<_> = help.difference(&readme).collect();
    let unknown: Vec<_> = readme.difference(&help).collect();
    assert!(
        undocumented.is_empty() && unknown.is_empty(),
        "README.md's options table (## Options) and --help differ:\n\
         in --help, not in the README: {undocumented:?}\n\
         in the README, not in --help: {unknown:?}"
    );
}

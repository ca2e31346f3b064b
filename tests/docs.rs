//! The README against the code: what it documents must be what the binary does. No Docker needed.

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

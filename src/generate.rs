//! `--generate`: shell completions and the man page, made from the command line's own definition
//! so that they can never list a flag the binary does not have (install.sh installs them).

use std::io::{self, Write};

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::{Cli, Generate};

/// The name the completions and the man page are for: the standalone command. (Docker completes
/// `docker reroll …` through its own plugin protocol, not through these scripts.)
const BIN: &str = "docker-reroll";

/// Writes what `what` names to `out`.
pub fn write(what: Generate, out: &mut dyn Write) -> io::Result<()> {
    let mut command = Cli::command();
    match what {
        Generate::CompleteBash => complete(Shell::Bash, &mut command, out),
        Generate::CompleteZsh => complete(Shell::Zsh, &mut command, out),
        Generate::CompleteFish => complete(Shell::Fish, &mut command, out),
        Generate::Man => clap_mangen::Man::new(command).render(out),
    }
}

fn complete(shell: Shell, command: &mut clap::Command, out: &mut dyn Write) -> io::Result<()> {
    // clap_complete writes through `&mut dyn Write` too, but panics on a write error; render into
    // memory first so that a closed pipe is an error, not a panic.
    let mut script = Vec::new();
    clap_complete::generate(shell, command, BIN, &mut script);
    out.write_all(&script)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generated(what: Generate) -> String {
        let mut out = Vec::new();
        write(what, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn completions_name_the_flags_and_their_values() {
        for (what, marker) in [
            (Generate::CompleteBash, "complete -F"),
            (Generate::CompleteZsh, "#compdef docker-reroll"),
            (Generate::CompleteFish, "complete -c docker-reroll"),
        ] {
            let script = generated(what);
            assert!(script.contains(marker), "{what:?}: no {marker:?}");
            for flag in [
                "pre-stop-cmd",
                "proxy-url",
                "healthcheck-timeout",
                "generate",
            ] {
                assert!(script.contains(flag), "{what:?} does not complete --{flag}");
            }
            for value in ["haproxy", "stop-first", "complete-fish"] {
                assert!(script.contains(value), "{what:?} does not offer {value}");
            }
        }
    }

    #[test]
    fn the_man_page_documents_the_options_and_exit_codes() {
        let page = generated(Generate::Man);
        assert!(page.starts_with(".ie") || page.contains(".TH"), "{page}");
        assert!(page.contains(".TH docker-reroll 1"), "no title header");
        for text in ["pre\\-stop\\-cmd", "proxy\\-still\\-routing", "130"] {
            assert!(page.contains(text), "the man page lacks {text}");
        }
    }
}

//! `./install.sh` puts the plugin, the completions and the man page where Docker, each shell and
//! `man` look, under a temporary prefix (no Docker engine needed; the built binary is installed,
//! not rebuilt).

use std::io::Write;
use std::path::Path;
use std::process::Command;

const BINARY: &str = env!("CARGO_BIN_EXE_docker-reroll");

fn install_into(root: &Path) -> std::process::Output {
    Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("install.sh"))
        .env("REROLL_BINARY", BINARY)
        .env("PREFIX", root.join("prefix"))
        .env("DOCKER_CONFIG", root.join("docker"))
        .output()
        .expect("bash runs install.sh")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Loud: a shell that is not installed is named in the test output, not silently passed over.
fn has(program: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        // Past the test harness's capture, so that it shows in a passing run too.
        let _ = writeln!(
            std::io::stderr(),
            "[install] WARNING: {program} is not installed: its check is SKIPPED"
        );
    }
    found
}

#[test]
fn install_sh_puts_the_plugin_completions_and_man_page_in_place() {
    let root = tempfile::tempdir().unwrap();
    let output = install_into(root.path());
    let said = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "install.sh failed:\n{said}");
    let plugin = root.path().join("docker/cli-plugins/docker-reroll");
    assert!(
        plugin.is_file(),
        "no plugin at {}:\n{said}",
        plugin.display()
    );
    let share = root.path().join("prefix/share");
    let bash = share.join("bash-completion/completions/docker-reroll");
    let zsh = share.join("zsh/site-functions/_docker-reroll");
    let fish = share.join("fish/vendor_completions.d/docker-reroll.fish");
    let man = share.join("man/man1/docker-reroll.1");
    for file in [&bash, &zsh, &fish, &man] {
        assert!(
            read(file).contains("proxy") && read(file).contains("pre"),
            "{} does not mention the flags",
            file.display()
        );
    }

    // bash: the script loads and completes a flag and a flag's values.
    let script = format!(
        "source {bash}; fn=$(complete -p docker-reroll | sed -n 's/.*-F \\([^ ]*\\).*/\\1/p'); \
         [ -n \"$fn\" ] || exit 9; \
         COMP_WORDS=(docker-reroll --pre-st); COMP_CWORD=1; \"$fn\" docker-reroll --pre-st docker-reroll; \
         echo \"${{COMPREPLY[*]}}\"; \
         COMP_WORDS=(docker-reroll --proxy ''); COMP_CWORD=2; \"$fn\" docker-reroll '' --proxy; \
         echo \"${{COMPREPLY[*]}}\"",
        bash = bash.display()
    );
    let completed = Command::new("bash").args(["-c", &script]).output().unwrap();
    let offered = String::from_utf8_lossy(&completed.stdout);
    assert!(completed.status.success(), "{completed:?}");
    assert!(
        offered.contains("--pre-stop-cmd") && offered.contains("--pre-stop-wait-until-unhealthy"),
        "bash does not complete --pre-st: {offered}"
    );
    assert!(
        offered.contains("haproxy"),
        "bash does not offer --proxy values: {offered}"
    );

    if has("zsh") {
        // As zsh finds it: a `#compdef` file in a directory of fpath, read by compinit.
        let loaded = Command::new("zsh")
            .args([
                "-fc",
                &format!(
                    "fpath=({} $fpath); autoload -Uz compinit; compinit -u -D; \
                     print -r -- $_comps[docker-reroll]; autoload +X _docker-reroll",
                    zsh.parent().unwrap().display()
                ),
            ])
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&loaded.stdout);
        assert!(
            loaded.status.success() && said.trim() == "_docker-reroll",
            "zsh: {loaded:?}"
        );
    }
    if has("fish") {
        let loaded = Command::new("fish")
            .args([
                "-c",
                &format!(
                    "source {}; complete -C 'docker-reroll --proxy-u'",
                    fish.display()
                ),
            ])
            .output()
            .unwrap();
        assert!(
            String::from_utf8_lossy(&loaded.stdout).contains("--proxy-url"),
            "fish: {loaded:?}"
        );
    }
    // man finds the page under the prefix (as it does /usr/local/share/man, or ~/.local/share/man
    // next to a ~/.local/bin on PATH).
    if has("man") {
        let found = Command::new("man")
            .args(["-w", "docker-reroll"])
            .env("MANPATH", share.join("man"))
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&found.stdout).trim(),
            man.display().to_string(),
            "{found:?}"
        );
    }
}

#[test]
fn an_empty_prefix_installs_only_the_plugin() {
    let root = tempfile::tempdir().unwrap();
    let output = Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("install.sh"))
        .arg(root.path().join("plugins"))
        .env("REROLL_BINARY", BINARY)
        .env("PREFIX", "")
        .env("HOME", root.path())
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert!(root.path().join("plugins/docker-reroll").is_file());
    assert!(
        !root.path().join(".local").exists(),
        "PREFIX= still installed under HOME"
    );
}

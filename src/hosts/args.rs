//! The options of a rollout over several hosts (flattened into the command line), and the child
//! command line each host's run gets.

use std::ffi::OsString;

use clap::Args;

use super::template::HostTemplate;

#[derive(Args, Clone, Debug, Default)]
#[command(next_help_heading = "Hosts")]
pub struct HostsArgs {
    /// With several --context: how many hosts roll at once after the first, which always rolls
    /// alone (the barrier) [default: 1].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub hosts_parallel: Option<u32>,
    /// Command run before each host is rolled, e.g. to take it out of an external load balancer;
    /// no shell. Placeholder: {context}. A failure leaves the host untouched and stops.
    #[arg(long, value_name = "TEMPLATE", value_parser = HostTemplate::parse)]
    pub pre_host_cmd: Option<HostTemplate>,
    /// Command run after each host rolled, e.g. to put it back into the load balancer; no shell.
    /// Placeholder: {context}.
    #[arg(long, value_name = "TEMPLATE", value_parser = HostTemplate::parse)]
    pub post_host_cmd: Option<HostTemplate>,
    /// When a host fails, roll the hosts already done back to the images they ran before.
    #[arg(long)]
    pub rollback_hosts: bool,
}

/// Options of the parent alone, with whether each takes a value.
const PARENT_ONLY: [(&str, bool); 5] = [
    ("--hosts-parallel", true),
    ("--pre-host-cmd", true),
    ("--post-host-cmd", true),
    ("--rollback-hosts", false),
    ("--json", false),
];

/// The arguments of one host's run: the parent's (after the program name) without its
/// `--context`s, its host options and, for `drop_project`, its compose files, project name and
/// directory (a rollback names them itself); then `--context HOST --json`.
pub fn child_args(args: &[OsString], context: &str, drop_project: bool) -> Vec<OsString> {
    let mut kept = Vec::new();
    let mut index = 0;
    while index < args.len() {
        let word = args[index].to_string_lossy();
        let mut dropped: Option<bool> = None; // Some(value follows)
        let mut takes_value = |long: &str, short: Option<&str>, value: bool| {
            if word == long || short.is_some_and(|s| word == s) {
                dropped = Some(value);
            } else if word.starts_with(&format!("{long}="))
                || short.is_some_and(|s| value && word.starts_with(s) && word.len() > s.len())
            {
                dropped = Some(false);
            }
        };
        takes_value("--context", Some("-c"), true);
        if drop_project {
            takes_value("--file", Some("-f"), true);
            takes_value("--project-name", Some("-p"), true);
            takes_value("--project-directory", None, true);
        }
        for (long, value) in PARENT_ONLY {
            takes_value(long, None, value);
        }
        if word == "--" {
            kept.extend(args[index..].iter().cloned());
            break;
        }
        match dropped {
            Some(true) => index += 2,
            Some(false) => index += 1,
            None => {
                kept.push(args[index].clone());
                index += 1;
            }
        }
    }
    let mut child: Vec<OsString> = vec!["--context".into(), context.into(), "--json".into()];
    child.extend(kept);
    child
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<OsString> {
        text.split_whitespace().map(OsString::from).collect()
    }

    fn joined(args: Vec<OsString>) -> String {
        args.iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn each_host_gets_its_context_and_none_of_the_parents_options() {
        let args = words(
            "--context a -c b --context=c -cd --hosts-parallel 2 --pre-host-cmd x \
             --rollback-hosts --json -f one.yml --file=two.yml -p shop --wait 5s web",
        );
        assert_eq!(
            joined(child_args(&args, "b", false)),
            "--context b --json -f one.yml --file=two.yml -p shop --wait 5s web"
        );
        assert_eq!(
            joined(child_args(&args, "b", true)),
            "--context b --json --wait 5s web"
        );
    }
}

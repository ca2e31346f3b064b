//! A rollout over several hosts: `--context a --context b …`. Each host is rolled by a run of its
//! own (this program again, `--context HOST --json`: `child`), so that each takes its own lock on
//! its engine and a host's failure is contained in its run. The first host rolls alone and is a
//! barrier: if it fails no other host is touched. The others follow one at a time, or in groups
//! of `--hosts-parallel`; the first failure stops the rollout (a group in flight finishes), and
//! with `--rollback-hosts` the hosts already done are rolled back to the images they ran before.

pub mod args;
pub mod child;
pub mod previous;
pub mod template;

use std::ffi::OsString;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::task::Poll;
use std::time::Instant;

use tokio::sync::watch;

use crate::docker::Docker;
use crate::docker::command::{Globals, user_command};
use crate::docker::globals::DockerGlobals;
use crate::exit::{Exit, Failure};
use crate::interrupt::Interrupts;
use crate::model::host::{HostRow, HostState};
use crate::model::signal::Signal;
use crate::report::Reporter;
use crate::service::project::read_project;
use args::{HostsArgs, child_args};
use child::run_child;
use previous::Previous;

/// What a rollout over hosts needs from the command line.
pub struct HostsRun<'a> {
    pub hosts: &'a HostsArgs,
    /// Docker's global flags, with every `--context`.
    pub globals: &'a DockerGlobals,
    pub project_args: Vec<String>,
    /// This run's arguments after the program name (and after `reroll`, run as a plugin).
    pub args: Vec<OsString>,
}

pub async fn run(
    run: HostsRun<'_>,
    reporter: &Reporter,
    interrupts: &mut Interrupts,
) -> Result<Exit, Failure> {
    let contexts = run.globals.context.clone();
    let group = run.hosts.hosts_parallel.unwrap_or(1) as usize;
    let docker_for = |context: &str| {
        let mut globals = run.globals.clone();
        globals.context = vec![context.to_owned()];
        Docker::new(Globals::resolve(globals), run.project_args.clone())
    };
    // The project is read once, locally: its name is what the old images are recorded under.
    let project = if run.hosts.rollback_hosts {
        let mut docker = docker_for(&contexts[0]);
        Some(read_project(&mut docker).await?.name)
    } else {
        None
    };
    reporter.hosts_order(&contexts, group);
    let scratch = tempfile_dir()?;
    let (signal_sender, signals) = watch::channel(None::<Signal>);
    let mut rows: Vec<HostRow> = contexts
        .iter()
        .map(|context| HostRow {
            context: context.clone(),
            state: HostState::NotStarted,
            took: Default::default(),
            note: String::new(),
        })
        .collect();
    let mut previous: Vec<Option<Previous>> = vec![None; contexts.len()];
    let host = Host {
        run: &run,
        reporter,
        project: project.as_deref(),
        scratch: &scratch,
        signals: &signals,
        docker_for: &docker_for,
    };

    let pass_on = async {
        // Signals reach the hosts' runs; no host starts after one.
        while let Some(signal) = interrupts.receiver.recv().await {
            let _ = signal_sender.send(Some(signal));
        }
        std::future::pending::<()>().await
    };
    let roll = async {
        let mut failed = false;
        // The first host alone (the barrier), then groups.
        for range in groups(contexts.len(), group) {
            if failed || signals.borrow().is_some() {
                break;
            }
            let results: Vec<(HostRow, Option<Previous>)> = join_all(
                range
                    .clone()
                    .map(|index| Box::pin(host.roll(index)) as Pin<Box<dyn Future<Output = _>>>)
                    .collect(),
            )
            .await;
            for (index, (row, recorded)) in range.zip(results) {
                failed |= row.state != HostState::Done;
                reporter.host_finish(&row);
                rows[index] = row;
                previous[index] = recorded;
            }
        }
        if failed && run.hosts.rollback_hosts && signals.borrow().is_none() {
            for index in (0..rows.len()).rev() {
                if rows[index].state != HostState::Done {
                    continue;
                }
                let Some(recorded) = &previous[index] else {
                    continue;
                };
                let row = host.revert(index, &rows[index], recorded).await;
                reporter.host_finish(&row);
                rows[index] = row;
            }
        }
    };
    tokio::select! {
        () = roll => {}
        () = pass_on => unreachable!("passing signals on never ends"),
    }
    let _ = std::fs::remove_dir_all(&scratch);
    // The failed host's exit; a host left on the new version by a failed rollback is cleanup
    // left undone.
    let failed = rows.iter().find_map(|row| match row.state {
        HostState::Failed(exit) => Some(exit),
        _ => None,
    });
    let revert_failed = rows
        .iter()
        .any(|row| matches!(row.state, HostState::RevertFailed(_)));
    let exit = match (failed, revert_failed) {
        (_, true) => Exit::Incomplete,
        (Some(exit), false) => exit,
        (None, false) => signals.borrow().map_or(Exit::Done, Signal::exit),
    };
    reporter.hosts_finish(exit, &rows);
    Ok(exit)
}

/// What every host's run shares.
struct Host<'a> {
    run: &'a HostsRun<'a>,
    reporter: &'a Reporter,
    project: Option<&'a str>,
    scratch: &'a Path,
    signals: &'a watch::Receiver<Option<Signal>>,
    docker_for: &'a dyn Fn(&str) -> Docker,
}

impl Host<'_> {
    /// Rolls one host: record what it runs (for --rollback-hosts), the pre-host command, its
    /// run, the post-host command.
    async fn roll(&self, index: usize) -> (HostRow, Option<Previous>) {
        let context = self.run.globals.context[index].as_str();
        let started = Instant::now();
        let row = |state, note: String| HostRow {
            context: context.to_owned(),
            state,
            took: started.elapsed(),
            note,
        };
        let total = self.run.globals.context.len();
        self.reporter.host_start(context, index, total);
        let docker = (self.docker_for)(context);
        let recorded = match self.project {
            Some(project) => match Previous::record(&docker, project).await {
                Ok(recorded) => Some(recorded),
                Err(why) => {
                    let note = format!("cannot read what it runs now, nothing changed: {why}");
                    return (row(HostState::Failed(Exit::Usage), note), None);
                }
            },
            None => None,
        };
        if let Some(template) = &self.run.hosts.pre_host_cmd
            && let Err(why) = self
                .hook("pre-host", template.render(context), &docker)
                .await
        {
            return (row(HostState::Failed(Exit::Usage), why), recorded);
        }
        let args = child_args(&self.run.args, context, false);
        let end = run_child(args, context, self.reporter, self.signals.clone()).await;
        if end.exit != Exit::Done {
            return (row(HostState::Failed(end.exit), end.note), recorded);
        }
        if let Some(template) = &self.run.hosts.post_host_cmd
            && let Err(why) = self
                .hook("post-host", template.render(context), &docker)
                .await
        {
            return (row(HostState::Failed(Exit::Incomplete), why), recorded);
        }
        (row(HostState::Done, end.note), recorded)
    }

    /// Rolls a host that was done back to the images it ran before.
    async fn revert(&self, index: usize, rolled: &HostRow, recorded: &Previous) -> HostRow {
        let context = self.run.globals.context[index].as_str();
        let started = Instant::now();
        self.reporter.info(&format!(
            "{context}: rolling back to the images it ran before"
        ));
        let mut args = child_args(&self.run.args, context, true);
        let result = recorded.write_override(self.scratch, context);
        let (state, note) = match result {
            Ok(path) => {
                for file in &recorded.config_files {
                    args.extend(["--file".into(), file.into()]);
                }
                args.extend(["--file".into(), path.into_os_string()]);
                if let Some(project) = self.project {
                    args.extend(["--project-name".into(), project.into()]);
                }
                if let Some(dir) = &recorded.working_dir {
                    args.extend(["--project-directory".into(), dir.into()]);
                }
                let end = run_child(args, context, self.reporter, self.signals.clone()).await;
                match end.exit {
                    Exit::Done => (
                        HostState::Reverted,
                        format!(
                            "rolled in {}, then back in {}: its images are the old ones again; \
                             other changes to the compose files stay",
                            crate::duration::show(rolled.took),
                            crate::duration::show(started.elapsed())
                        ),
                    ),
                    exit => (
                        HostState::RevertFailed(exit),
                        format!("it was rolled; rolling it back failed: {}", end.note),
                    ),
                }
            }
            Err(error) => (
                HostState::RevertFailed(Exit::Incomplete),
                format!("cannot write the rollback override: {error}"),
            ),
        };
        HostRow {
            context: context.to_owned(),
            state,
            took: rolled.took + started.elapsed(),
            note,
        }
    }

    async fn hook(&self, what: &str, argv: Vec<String>, docker: &Docker) -> Result<(), String> {
        let shown = shell_words::join(&argv);
        let output = user_command(&argv, &docker.globals().env())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .output()
            .await
            .map_err(|e| format!("the {what} command `{shown}` could not start: {e}"))?;
        if output.status.success() {
            Ok(())
        } else {
            let stderr = String::from_utf8_lossy(&output.stderr);
            Err(format!(
                "the {what} command `{shown}` failed ({}): {}",
                output.status,
                stderr.trim().lines().last().unwrap_or("")
            ))
        }
    }
}

/// The hosts' indexes in the groups they roll in: the first alone (the barrier), then `group` at
/// a time.
fn groups(hosts: usize, group: usize) -> Vec<std::ops::Range<usize>> {
    let mut groups = vec![];
    let mut start = 0;
    while start < hosts {
        let end = if start == 0 {
            1
        } else {
            (start + group.max(1)).min(hosts)
        };
        groups.push(start..end);
        start = end;
    }
    groups
}

/// Runs the futures together and returns their outputs in order.
async fn join_all<T>(mut futures: Vec<Pin<Box<dyn Future<Output = T> + '_>>>) -> Vec<T> {
    let mut outputs: Vec<Option<T>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => *output = Some(value),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

fn tempfile_dir() -> Result<std::path::PathBuf, Failure> {
    let dir = std::env::temp_dir().join(format!("docker-reroll-hosts-{}", std::process::id()));
    std::fs::create_dir_all(&dir)
        .map_err(|e| Failure::usage(format!("cannot create {}: {e}", dir.display())))?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_host_rolls_alone_then_groups_of_n() {
        assert_eq!(groups(1, 3).len(), 1);
        assert_eq!(groups(3, 1), [0..1, 1..2, 2..3]);
        assert_eq!(groups(6, 2), [0..1, 1..3, 3..5, 5..6]);
        assert_eq!(groups(4, 10), [0..1, 1..4]);
    }

    #[tokio::test]
    async fn join_all_runs_together_and_keeps_the_order() {
        let started = Instant::now();
        let slow = |ms: u64, value: u32| -> Pin<Box<dyn Future<Output = u32>>> {
            Box::pin(async move {
                tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
                value
            })
        };
        let outputs = join_all(vec![slow(200, 1), slow(100, 2), slow(150, 3)]).await;
        assert_eq!(outputs, [1, 2, 3]);
        assert!(started.elapsed() < std::time::Duration::from_millis(400));
    }
}

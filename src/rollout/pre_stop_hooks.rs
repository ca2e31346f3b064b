//! Runs a service's Compose `pre_stop:` hooks on the containers about to be stopped: each
//! container's hooks in the order the file gives them, the containers in parallel. `docker stop`
//! skips these hooks, so the rollout runs them, before the `--pre-stop-cmd` template.

use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::timeout;

use crate::docker::Docker;
use crate::duration::show;
use crate::model::hook::ExecHook;
use crate::report::Reporter;
use crate::template::short_id;

/// Runs `hooks` in each of `ids`; a container's first failing hook ends its run. Returns the
/// containers whose hooks failed, each with why.
pub async fn run(
    docker: &Docker,
    hooks: &[ExecHook],
    ids: &[String],
    limit: Duration,
    reporter: &Reporter,
) -> Vec<(String, String)> {
    if hooks.is_empty() {
        return Vec::new();
    }
    let mut running = JoinSet::new();
    for id in ids {
        let commands: Vec<_> = hooks
            .iter()
            .map(|hook| (hook.shown(), docker.exec_hook(id, hook)))
            .collect();
        let id = id.clone();
        running.spawn(async move {
            let mut outputs = Vec::new();
            for (shown, mut command) in commands {
                command.kill_on_drop(true);
                let failure = match timeout(limit, command.output()).await {
                    Err(_) => Some(format!(
                        "pre_stop hook `{shown}` ran longer than {}",
                        show(limit)
                    )),
                    Ok(Err(error)) => Some(format!("cannot run pre_stop hook `{shown}`: {error}")),
                    Ok(Ok(output)) => {
                        outputs.push(format!(
                            "{}{}",
                            String::from_utf8_lossy(&output.stdout),
                            String::from_utf8_lossy(&output.stderr)
                        ));
                        (!output.status.success()).then(|| {
                            format!("pre_stop hook `{shown}` exited with {}", output.status)
                        })
                    }
                };
                if failure.is_some() {
                    return (id, outputs, failure);
                }
            }
            (id, outputs, None)
        });
    }
    let mut failures = Vec::new();
    while let Some(joined) = running.join_next().await {
        let Ok((id, outputs, failure)) = joined else {
            continue;
        };
        for text in outputs {
            reporter.container_output(short_id(&id), &text);
        }
        if let Some(why) = failure {
            failures.push((id, why));
        }
    }
    failures
}

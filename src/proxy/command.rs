//! Any other proxy: a command template the user writes, run once per container. Exit 0 means
//! the proxy routes to that container, any other exit that it does not.

use std::process::Stdio;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::timeout;

use super::ProxyError;
use crate::docker::command::ChildEnv;
use crate::model::routing::{Route, Routing, Target};
use crate::template::{Template, Values};

const LIMIT: Duration = Duration::from_secs(10);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoutesCommand {
    pub template: Template,
    pub service: String,
    pub project: String,
    /// The environment that points child programs at the same engine as every docker call.
    pub env: ChildEnv,
}

impl RoutesCommand {
    pub async fn observe(&self, targets: &[Target]) -> Result<Routing, ProxyError> {
        let mut running = JoinSet::new();
        for target in targets {
            let address = target
                .addresses
                .first()
                .map(ToString::to_string)
                .unwrap_or_default();
            let argv = self.template.render(&Values {
                id: &target.id,
                name: &target.name,
                service: &self.service,
                project: &self.project,
                addr: &address,
            });
            let env = self.env.clone();
            let id = target.id.clone();
            running.spawn(async move {
                let mut command = crate::docker::command::user_command(&argv, &env);
                command.stdout(Stdio::null()).stderr(Stdio::null());
                let status = timeout(LIMIT, command.status()).await;
                (id, shell_words::join(&argv), status)
            });
        }
        let mut routing = Routing {
            routes: Default::default(),
            shown: String::new(),
        };
        let mut shown = Vec::new();
        while let Some(joined) = running.join_next().await {
            let Ok((id, line, status)) = joined else {
                continue;
            };
            let routed = match status {
                Err(_) => {
                    return Err(ProxyError::Unexpected(format!(
                        "`{line}` ran longer than {}s",
                        LIMIT.as_secs()
                    )));
                }
                Ok(Err(error)) => {
                    return Err(ProxyError::Unreachable(format!(
                        "cannot run `{line}`: {error}"
                    )));
                }
                Ok(Ok(status)) => status.success(),
            };
            shown.push(format!(
                "{} {}",
                crate::template::short_id(&id),
                if routed { "routed" } else { "not routed" }
            ));
            let route = if routed { Route::Serving } else { Route::Out };
            routing.routes.insert(id, route);
        }
        shown.sort();
        routing.shown = format!("proxy command `{}`: {}", self.template, shown.join(", "));
        Ok(routing)
    }
}

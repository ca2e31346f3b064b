//! A `docker events` stream of one service's containers, so health changes are acted on as
//! Docker reports them instead of at the next poll.

use std::collections::BTreeMap;
use std::process::Stdio;

use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Child;
use tokio::sync::mpsc;

use super::Docker;
use crate::model::container::Health;

/// What an event says about one container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Health(Health),
    Started,
    Died { exit_code: i64 },
    Destroyed,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub id: String,
    pub change: Change,
}

/// The running `docker events` process; it is killed when this is dropped.
pub struct Subscription {
    _child: Child,
    pub events: mpsc::UnboundedReceiver<Event>,
    /// Feeds `events` as the stream does: how the health pump (the engine module) reports the
    /// statuses of checks it ran itself.
    injector: mpsc::UnboundedSender<Event>,
}

#[derive(Deserialize)]
struct RawEvent {
    #[serde(rename = "Type", default)]
    kind: String,
    #[serde(rename = "Action", default)]
    action: String,
    #[serde(rename = "Actor")]
    actor: RawActor,
}

#[derive(Deserialize)]
struct RawActor {
    #[serde(rename = "ID")]
    id: String,
    #[serde(rename = "Attributes", default)]
    attributes: BTreeMap<String, String>,
}

/// An event as `podman events --format '{{json .}}'` prints it (the engine module).
#[derive(Deserialize)]
struct PodmanEvent {
    #[serde(rename = "ID")]
    id: String,
    #[serde(rename = "Status")]
    status: String,
    #[serde(rename = "Type", default)]
    kind: String,
    #[serde(rename = "ContainerExitCode", default)]
    exit_code: Option<i64>,
}

fn parse_podman(line: &str) -> Option<Event> {
    let raw: PodmanEvent = serde_json::from_str(line).ok()?;
    if raw.kind != "container" {
        return None;
    }
    let change = match raw.status.as_str() {
        // Podman 4.3 names the status from before the check it reports: the health pump reads
        // the new one back instead.
        "health_status" => return None,
        "start" => Change::Started,
        "died" => Change::Died {
            exit_code: raw.exit_code.unwrap_or(-1),
        },
        "remove" => Change::Destroyed,
        _ => return None,
    };
    Some(Event { id: raw.id, change })
}

pub fn parse_line(line: &str) -> Option<Event> {
    let Ok(raw) = serde_json::from_str::<RawEvent>(line) else {
        return parse_podman(line);
    };
    if raw.kind != "container" {
        return None;
    }
    // Docker writes "health_status: healthy"; newer engines may append details after the status.
    let change = if let Some(status) = raw.action.strip_prefix("health_status:") {
        Change::Health(Health::parse(status.split_whitespace().next()?))
    } else {
        match raw.action.as_str() {
            "start" => Change::Started,
            "die" => Change::Died {
                exit_code: raw
                    .actor
                    .attributes
                    .get("exitCode")
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(-1),
            },
            "destroy" => Change::Destroyed,
            _ => return None,
        }
    };
    Some(Event {
        id: raw.actor.id,
        change,
    })
}

impl Docker {
    /// Subscribes to the service's container events. Subscribe before the inspect that gives the
    /// starting point, so no change can fall between the two.
    pub fn subscribe(&self, project: &str, service: &str) -> std::io::Result<Subscription> {
        let mut args: Vec<String> = [
            "events",
            "--format",
            "{{json .}}",
            "--filter",
            "type=container",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        args.extend(super::service::label_filters(project, service));
        let mut command = self.docker(args);
        tracing::debug!(target: "docker", "{} (streaming)", super::command::show(&command));
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let (sender, events) = mpsc::unbounded_channel();
        let injector = sender.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(event) = parse_line(&line) {
                    tracing::trace!(target: "docker", "event {event:?}");
                    if sender.send(event).is_err() {
                        break;
                    }
                }
            }
        });
        Ok(Subscription {
            _child: child,
            events,
            injector,
        })
    }
}

impl Subscription {
    /// A sender into this subscription's events.
    pub fn injector(&self) -> mpsc::UnboundedSender<Event> {
        self.injector.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(action: &str, attributes: &str) -> String {
        format!(
            r#"{{"status":"{action}","id":"abc","Type":"container","Action":"{action}",
                "Actor":{{"ID":"abc","Attributes":{attributes}}},"time":1}}"#
        )
    }

    #[test]
    fn reads_health_lifecycle_and_ignores_the_rest() {
        let cases = [
            (
                event("health_status: healthy", "{}"),
                Some(Change::Health(Health::Healthy)),
            ),
            (
                event("health_status: unhealthy", "{}"),
                Some(Change::Health(Health::Unhealthy)),
            ),
            (event("start", "{}"), Some(Change::Started)),
            (
                event("die", r#"{"exitCode":"3"}"#),
                Some(Change::Died { exit_code: 3 }),
            ),
            (event("destroy", "{}"), Some(Change::Destroyed)),
            (
                r#"{"ID":"abc","Status":"health_status","Type":"container","health_status":"starting"}"#.to_owned(),
                None,
            ),
            (
                r#"{"ContainerExitCode":143,"ID":"abc","Status":"died","Type":"container"}"#.to_owned(),
                Some(Change::Died { exit_code: 143 }),
            ),
            (
                r#"{"ID":"abc","Status":"remove","Type":"container"}"#.to_owned(),
                Some(Change::Destroyed),
            ),
            (
                r#"{"ID":"abc","Status":"exec_died","Type":"container"}"#.to_owned(),
                None,
            ),
            (event("exec_start: touch /.dead", "{}"), None),
            ("not json".to_owned(), None),
        ];
        for (line, expected) in cases {
            assert_eq!(parse_line(&line).map(|e| e.change), expected, "{line}");
        }
    }
}

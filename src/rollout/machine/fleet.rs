//! Where every container of the rollout stands: which new ones exist, which old ones are kept
//! stopped, removed or left serving, and the last status seen of each. The machine and its
//! retreat both read and update it; neither owns the other's state.

use std::collections::BTreeMap;

use crate::model::container::{Container, Health, Healthcheck, State};
use crate::template::short_id;

/// The latest known status of one watched container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub id: String,
    pub state: State,
    pub health: Health,
    pub exit_code: i64,
}

impl Status {
    /// Unhealthy, or not running at all: either way the proxy no longer routes to it.
    pub(super) fn is_drained(&self) -> bool {
        self.health == Health::Unhealthy || self.state != State::Running
    }

    /// What a container that vanished from the engine counts as.
    fn gone(id: &str) -> Status {
        Status {
            id: id.to_owned(),
            state: State::Dead,
            health: Health::None,
            exit_code: -1,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Created {
    pub id: String,
    pub healthcheck: Option<Healthcheck>,
}

pub(super) enum Judgement {
    Passed,
    Pending(String),
    Failed(String),
}

#[derive(Debug, Default)]
pub(super) struct Fleet {
    /// The new containers: adopted from an interrupted run, then created batch by batch.
    pub new: Vec<Created>,
    /// The new containers of the current batch.
    pub batch_new: Vec<String>,
    /// Old containers retired but kept stopped, so that a rollback can start them again.
    pub kept: Vec<String>,
    /// Old containers retired and removed.
    pub removed: Vec<String>,
    /// Old containers left serving because their batch failed and the failure was tolerated.
    pub spared: Vec<String>,
    /// Old containers left serving because the proxy still routed to them when its wait ran out.
    pub held: Vec<String>,
    /// The last known status of every container watched so far.
    statuses: BTreeMap<String, Status>,
}

impl Fleet {
    pub fn adopting(new: Vec<Created>) -> Self {
        Fleet {
            batch_new: new.iter().map(|c| c.id.clone()).collect(),
            new,
            ..Fleet::default()
        }
    }

    pub fn new_ids(&self) -> Vec<String> {
        self.new.iter().map(|c| c.id.clone()).collect()
    }

    pub fn status(&self, id: &str) -> Option<&Status> {
        self.statuses.get(id)
    }

    /// Takes in what was observed of the `watched` containers; one missing from `statuses` is
    /// gone (removed by someone else, or auto-removed after exiting).
    pub fn record(&mut self, watched: &[String], statuses: Vec<Status>) {
        for id in watched {
            let status = statuses
                .iter()
                .find(|s| &s.id == id)
                .cloned()
                .unwrap_or_else(|| Status::gone(id));
            self.statuses.insert(id.clone(), status);
        }
    }

    pub fn is_running(&self, id: &str) -> bool {
        self.status(id).is_some_and(|s| s.state == State::Running)
    }

    pub fn is_healthy(&self, id: &str) -> bool {
        self.status(id).is_some_and(|s| s.health == Health::Healthy)
    }

    pub fn is_unhealthy(&self, id: &str) -> bool {
        self.status(id)
            .is_some_and(|s| s.health == Health::Unhealthy)
    }

    pub fn is_drained(&self, id: &str) -> bool {
        self.status(id).is_some_and(Status::is_drained)
    }

    /// A new container a proxy may route to: running and healthy (or without a healthcheck).
    pub fn serves(&self, id: &str) -> bool {
        let checked = self
            .new
            .iter()
            .any(|c| c.id == id && c.healthcheck.is_some());
        self.is_running(id) && (self.is_healthy(id) || !checked)
    }

    /// The old containers (of `old`) not removed: serving, or kept stopped.
    pub fn old_left(&self, old: &[Container]) -> Vec<String> {
        old.iter()
            .map(|c| c.id.clone())
            .filter(|id| !self.removed.contains(id))
            .collect()
    }

    /// Whether every new container is up. `at_deadline`: containers without a healthcheck pass
    /// only once the wait is over.
    pub fn judge_new(&self, at_deadline: bool) -> Judgement {
        let targets: Vec<(&str, bool)> = self
            .new
            .iter()
            .map(|c| (c.id.as_str(), c.healthcheck.is_some()))
            .collect();
        self.judge(&targets, "new container", at_deadline)
    }

    /// Whether every target (id, has a healthcheck) is running and healthy; `what` names them
    /// in the verdict.
    pub fn judge(&self, targets: &[(&str, bool)], what: &str, at_deadline: bool) -> Judgement {
        let mut pending = Vec::new();
        for &(full_id, checked) in targets {
            let id = short_id(full_id);
            let Some(status) = self.status(full_id) else {
                pending.push(format!("{id} has not been seen yet"));
                continue;
            };
            if status.state != State::Running {
                let how = match status.state {
                    State::Exited | State::Dead => format!("exited with code {}", status.exit_code),
                    other => format!("is {}", other.name()),
                };
                if matches!(
                    status.state,
                    State::Exited | State::Dead | State::Restarting
                ) {
                    return Judgement::Failed(format!("{what} {id} {how}"));
                }
                pending.push(format!("{id} {how}"));
                continue;
            }
            match (checked, status.health) {
                (_, Health::Unhealthy) => {
                    return Judgement::Failed(format!("{what} {id} is unhealthy"));
                }
                (true, Health::Healthy) => {}
                (true, health) => pending.push(format!("{id} is {}", health.name())),
                (false, _) if !at_deadline => pending.push(format!("{id} has no healthcheck")),
                (false, _) => {}
            }
        }
        if pending.is_empty() {
            Judgement::Passed
        } else {
            Judgement::Pending(format!("not healthy in time: {}", pending.join(", ")))
        }
    }
}

/// Containers by their short ids, for the user.
pub(super) fn list(ids: &[String]) -> String {
    ids.iter()
        .map(|id| short_id(id))
        .collect::<Vec<_>>()
        .join(" ")
}

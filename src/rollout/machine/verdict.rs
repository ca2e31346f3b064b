//! The last word of a rollout: the service's containers as listed after it, against what the
//! fleet says should be there and serving.

use super::fleet::{Fleet, list};
use super::protocol::Outcome;
use crate::exit::Exit;
use crate::model::container::{Container, Health};
use crate::plan::Plan;
use crate::template::short_id;

/// Done when exactly the expected containers run healthy; partial when some old ones serve on
/// or the target was not reached; incomplete when something is there that should not be, or
/// missing, or not healthy.
pub(super) fn judge(plan: &Plan, fleet: &Fleet, containers: &[Container]) -> Outcome {
    let new = fleet.new_ids();
    let expected =
        |id: &String| new.contains(id) || fleet.spared.contains(id) || fleet.held.contains(id);
    let mut problems = Vec::new();
    for container in containers {
        let id = short_id(&container.id);
        if !expected(&container.id) {
            problems.push(format!(
                "{id} ({}) should not be there",
                container.state.name()
            ));
        } else if !container.is_running() {
            problems.push(format!("{id} is {}", container.state.name()));
        } else if container.healthcheck.is_some()
            && container.health != Health::Healthy
            && !fleet.held.contains(&container.id)
        {
            problems.push(format!("{id} is {}", container.health.name()));
        }
    }
    let missing = new
        .iter()
        .filter(|id| !containers.iter().any(|c| &c.id == *id))
        .count();
    if missing > 0 {
        problems.push(format!("{missing} new container(s) disappeared"));
    }
    if !problems.is_empty() {
        let extra: Vec<String> = containers
            .iter()
            .filter(|c| !expected(&c.id))
            .map(|c| c.id.clone())
            .collect();
        let fix = if extra.is_empty() {
            "run docker reroll again to replace them".to_owned()
        } else {
            format!("fix: docker rm -f {}", list(&extra))
        };
        return Outcome {
            exit: Exit::Incomplete,
            message: format!(
                "the rollout ended in an unexpected state: {}; {fix}",
                problems.join(", ")
            ),
        };
    }
    let retired = plan.retire.len() - fleet.spared.len() - fleet.held.len();
    let short = (plan.target as usize).saturating_sub(new.len() + fleet.spared.len());
    if fleet.spared.is_empty() && fleet.held.is_empty() && short == 0 {
        return Outcome {
            exit: Exit::Done,
            message: format!(
                "{} new container(s) serve ({}), {retired} old one(s) retired",
                new.len(),
                list(&new)
            ),
        };
    }
    let spared = match fleet.spared.len() {
        0 => String::new(),
        n => format!(
            ", {n} old one(s) kept serving because their replacements failed ({})",
            list(&fleet.spared)
        ),
    };
    let held = match fleet.held.len() {
        0 => String::new(),
        n => format!(
            ", {n} old one(s) kept serving because the proxy still routed to them ({})",
            list(&fleet.held)
        ),
    };
    let missing = match short {
        0 => String::new(),
        n => format!(", {n} fewer than the {} wanted", plan.target),
    };
    Outcome {
        exit: Exit::Partial,
        message: format!(
            "finished with failures: {} new container(s) serve ({}), {retired} old one(s) \
             retired{spared}{held}{missing}; run docker reroll again to finish",
            new.len(),
            list(&new),
        ),
    }
}

//! The steps as the planner's batches: each step adds new containers next to the old ones (none
//! retired), and the last batch brings the rest and retires every old container through the
//! usual drain. A run resuming after a crash starts at the first step above the new containers
//! it found.

use crate::model::canary::{Step, step_counts};
use crate::plan::{Batch, Plan};

/// Rewrites `plan`'s batches for `steps`. A first deploy has nothing to compare with: unchanged.
pub fn apply(plan: &mut Plan, steps: &[Step]) {
    if plan.is_first_deploy() {
        return;
    }
    let adopted = plan.adopted.len() as u32;
    let mut batches = Vec::new();
    let mut reached = adopted;
    for count in step_counts(steps, plan.target) {
        if count <= reached {
            continue;
        }
        batches.push(Batch {
            create: count - reached,
            retire: Vec::new(),
        });
        reached = count;
    }
    batches.push(Batch {
        create: plan.target - reached,
        retire: plan.retire.iter().map(|c| c.id.clone()).collect(),
    });
    plan.batches = batches;
}

/// The pauses of a plan `apply` made: after every batch but the last, with the number of new
/// containers serving then.
pub fn pauses(plan: &Plan) -> Vec<(usize, u32)> {
    let mut serving = plan.adopted.len() as u32;
    plan.batches[..plan.batches.len() - 1]
        .iter()
        .enumerate()
        .map(|(index, batch)| {
            serving += batch.create;
            (index, serving)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::canary::parse_steps;
    use crate::model::container::{Container, Health, State};
    use crate::model::policy::Order;

    fn plan(old: usize, adopted: usize, target: u32) -> Plan {
        let container = |id: String| Container {
            id,
            name: String::new(),
            number: 1,
            state: State::Running,
            exit_code: 0,
            health: Health::Healthy,
            config_hash: String::new(),
            image: String::new(),
            created: String::new(),
            healthcheck: None,
            last_check_output: None,
            addresses: Vec::new(),
            published: Vec::new(),
        };
        let retire: Vec<Container> = (0..old).map(|i| container(format!("o{i}"))).collect();
        Plan {
            leftovers: Vec::new(),
            batches: vec![Batch {
                create: target - adopted as u32,
                retire: retire.iter().map(|c| c.id.clone()).collect(),
            }],
            retire,
            adopted: (0..adopted).map(|i| container(format!("n{i}"))).collect(),
            target,
            order: Order::StartFirst,
            peak: 0,
            recovery: None,
            host_network: false,
        }
    }

    /// (steps, old, adopted, target) → (create per batch, pauses as (batch, new serving)).
    #[test]
    fn steps_become_batches_and_pauses() {
        type Case = (&'static str, usize, usize, u32, Vec<u32>, Vec<(usize, u32)>);
        let cases: [Case; 5] = [
            ("1,50%", 4, 0, 4, vec![1, 1, 2], vec![(0, 1), (1, 2)]),
            ("1,50%,100%", 2, 0, 2, vec![1, 1, 0], vec![(0, 1), (1, 2)]),
            ("1", 3, 0, 3, vec![1, 2], vec![(0, 1)]),
            // Resumed with one new container already serving: the next step is 2.
            ("1,2", 3, 1, 3, vec![1, 1], vec![(0, 2)]),
            ("100%", 2, 2, 2, vec![0], vec![]),
        ];
        for (steps, old, adopted, target, creates, expected) in cases {
            let mut plan = plan(old, adopted, target);
            apply(&mut plan, &parse_steps(steps).unwrap());
            let made: Vec<u32> = plan.batches.iter().map(|b| b.create).collect();
            assert_eq!(made, creates, "{steps} on {old} old, {adopted} adopted");
            let last = plan.batches.last().unwrap();
            assert_eq!(last.retire.len(), old, "only the last batch retires");
            assert_eq!(pauses(&plan), expected, "{steps}");
        }
        let mut first = plan(0, 0, 2);
        apply(&mut first, &parse_steps("1").unwrap());
        assert_eq!(first.batches.len(), 1, "a first deploy is not stepped");
    }
}

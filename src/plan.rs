//! The pure planner: from what was read (containers, config, an interrupted run's journal) to what
//! the rollout will do, or a precondition error before anything changes.

use crate::docker::compose::host_port_capacity;
use crate::journal::Journal;
use crate::model::container::{Container, Health};
use crate::model::policy::Order;
use crate::model::project::ServiceConfig;

/// Everything read before changing anything.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub project: String,
    pub service: String,
    pub config: ServiceConfig,
    /// `docker compose config --hash SERVICE`: the hash new containers will carry.
    pub config_hash: String,
    /// Every container of the service, in every state.
    pub containers: Vec<Container>,
    pub journal: Option<Journal>,
    /// Go to `deploy.replicas` when the file sets it (a stack rollout: the file is the truth, as
    /// for `docker compose up`), rather than keep the number running (one service named).
    pub follow_replicas: bool,
    pub batching: Batching,
}

/// How the containers are replaced: `deploy.update_config`'s `parallelism` and `order`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Batching {
    /// Containers replaced per batch; 0: all at once.
    pub parallelism: u32,
    pub order: Order,
}

/// One step of the rollout: start `create` new containers and retire these old ones (in the
/// order's sequence).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    pub create: u32,
    pub retire: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Exited, created or dead containers: removed first, or `--scale` would restart them
    /// instead of creating new ones.
    pub leftovers: Vec<Container>,
    /// The containers serving now, retired once the new ones are healthy.
    pub retire: Vec<Container>,
    /// New-config containers an interrupted run left running: they count as new.
    pub adopted: Vec<Container>,
    /// How many new containers serve at the end.
    pub target: u32,
    /// The batches, in order; one when everything is replaced at once.
    pub batches: Vec<Batch>,
    pub order: Order,
    /// `network_mode: host`: old and new containers share the host's ports.
    pub host_network: bool,
    /// The most containers of the service running at any moment.
    pub peak: u32,
    /// How an interrupted earlier run was recognised, if one was.
    pub recovery: Option<String>,
}

impl Plan {
    pub fn to_create(&self) -> u32 {
        self.target - self.adopted.len() as u32
    }

    pub fn is_first_deploy(&self) -> bool {
        self.retire.is_empty()
    }

    /// What the user should know before anything starts; `--dry-run` says it too.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.is_first_deploy() {
            return warnings;
        }
        if self.order == Order::StopFirst {
            warnings.push(
                "order stop-first: old containers stop before their replacements start, so the \
                 service has a gap (fewer or no containers serving) in each batch"
                    .to_owned(),
            );
        }
        if self.host_network && self.order == Order::StartFirst {
            warnings.push(
                "network_mode host: the new containers share the host's ports with the old ones, \
                 so a service that listens on a fixed port cannot start beside them (the rollout \
                 then rolls back); give it order stop-first (--order stop-first) if it does"
                    .to_owned(),
            );
        }
        warnings
    }
}

pub fn plan(snapshot: &Snapshot) -> Result<Plan, String> {
    let (running, leftovers): (Vec<Container>, Vec<Container>) = snapshot
        .containers
        .iter()
        .cloned()
        .partition(Container::is_running);

    let (mut retire, mut adopted, target, recovery) = split_old_and_new(snapshot, running);

    // An interrupted run may have left more new containers than wanted: keep the healthiest and
    // newest, retire the rest with the old ones.
    adopted.sort_by_key(|c| (c.health != Health::Healthy, std::cmp::Reverse(c.number)));
    if adopted.len() > target as usize {
        retire.extend(adopted.split_off(target as usize));
    }
    // Containers that do not serve go first: retiring them costs no capacity.
    retire.sort_by_key(|c| (c.health == Health::Healthy, c.number));
    let batches = batches(
        &retire,
        target - adopted.len() as u32,
        snapshot.batching.parallelism,
    );
    let order = snapshot.batching.order;
    let peak = peak((retire.len() + adopted.len()) as u32, &batches, order);

    check_room(snapshot, peak)?;
    Ok(Plan {
        leftovers,
        retire,
        adopted,
        target,
        batches,
        order,
        peak,
        recovery,
        host_network: snapshot.config.host_network,
    })
}

/// Splits the work into batches of `parallelism` (0: one batch). Each old container is paired
/// with a new one; old ones beyond the new ones to create (more were running than wanted, e.g.
/// an interrupted run's new containers) retire first, new ones beyond the old (scaling up) start
/// last. A first deploy has nothing to protect and is never split.
fn batches(retire: &[Container], create: u32, parallelism: u32) -> Vec<Batch> {
    let ids: Vec<String> = retire.iter().map(|c| c.id.clone()).collect();
    let (size, create) = (parallelism as usize, create as usize);
    if size == 0 || ids.is_empty() || size >= ids.len().max(create) {
        return vec![Batch {
            create: create as u32,
            retire: ids,
        }];
    }
    let surplus = ids.len().saturating_sub(create);
    let units: Vec<(u32, Option<&String>)> = ids
        .iter()
        .enumerate()
        .map(|(index, id)| (u32::from(index >= surplus), Some(id)))
        .chain(std::iter::repeat_n(
            (1, None),
            create.saturating_sub(ids.len()),
        ))
        .collect();
    units
        .chunks(size)
        .map(|chunk| Batch {
            create: chunk.iter().map(|(create, _)| create).sum(),
            retire: chunk.iter().filter_map(|(_, id)| id.cloned()).collect(),
        })
        .collect()
}

/// The most containers running at once, from `running` before the first batch.
fn peak(running: u32, batches: &[Batch], order: Order) -> u32 {
    let mut now = running;
    let mut peak = running;
    for batch in batches {
        let retired = batch.retire.len() as u32;
        now = match order {
            Order::StartFirst => {
                peak = peak.max(now + batch.create);
                now + batch.create - retired
            }
            Order::StopFirst => now - retired + batch.create,
        };
        peak = peak.max(now);
    }
    peak
}

type Split = (Vec<Container>, Vec<Container>, u32, Option<String>);

fn split_old_and_new(snapshot: &Snapshot, running: Vec<Container>) -> Split {
    if let Some(journal) = &snapshot.journal
        && running.iter().any(|c| journal.old.contains(&c.id))
    {
        let (mut old, others): (Vec<_>, Vec<_>) = running
            .into_iter()
            .partition(|c| journal.old.contains(&c.id));
        // A new container of a config that changed since then is outdated too.
        let (new, outdated): (Vec<_>, Vec<_>) = others
            .into_iter()
            .partition(|c| c.config_hash == snapshot.config_hash);
        old.extend(outdated);
        let note = format!(
            "an earlier run was interrupted: {} old and {} new container(s) found; converging to {}",
            old.len(),
            new.len(),
            journal.target
        );
        return (old, new, journal.target, Some(note));
    }

    let has_current = running
        .iter()
        .any(|c| c.config_hash == snapshot.config_hash);
    let has_outdated = running
        .iter()
        .any(|c| c.config_hash != snapshot.config_hash);
    if has_current && has_outdated {
        // Old and new configs side by side: an interrupted rollout. The outdated ones were serving.
        let (new, old): (Vec<_>, Vec<_>) = running
            .into_iter()
            .partition(|c| c.config_hash == snapshot.config_hash);
        // Replaced in batches, old and new add up to the target; all at once, the old ones do.
        let target = match snapshot.config.replicas {
            Some(replicas) if replicas > 0 && snapshot.follow_replicas => replicas,
            _ if snapshot.batching.parallelism > 0 => (old.len() + new.len()) as u32,
            _ => old.len() as u32,
        };
        let note = format!(
            "two configurations run side by side ({} old, {} new): finishing an interrupted rollout to {target}",
            old.len(),
            new.len()
        );
        return (old, new, target, Some(note));
    }

    let target = match (
        snapshot.follow_replicas,
        snapshot.config.replicas,
        running.len(),
    ) {
        (true, Some(replicas), _) if replicas > 0 => replicas,
        (_, replicas, 0) => replicas.unwrap_or(1),
        (_, _, running) => running as u32,
    };
    (running, Vec::new(), target, None)
}

/// Scaling needs room for two containers side by side; say so before changing anything.
fn check_room(snapshot: &Snapshot, peak: u32) -> Result<(), String> {
    let service = &snapshot.service;
    if peak <= 1 {
        return Ok(());
    }
    if let Some(name) = &snapshot.config.container_name {
        return Err(format!(
            "service '{service}' sets container_name '{name}', so a second container cannot run beside it: \
             remove container_name from the compose file (Compose then names containers itself)"
        ));
    }
    if let Some(port) = snapshot
        .config
        .published_ports
        .iter()
        .find(|port| host_port_capacity(port) < peak)
    {
        return Err(format!(
            "service '{service}' publishes host port {port}, which {peak} containers cannot share: \
             publish only the container port (e.g. \"80\") and put a reverse proxy in front, give a range \
             of at least {peak} ports, or set deploy.update_config.order: stop-first (--order stop-first; \
             a gap in service while the old container is replaced)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::container::State;

    /// A container from a compact spec: `"a1:running:healthy:h1"` = id a1, state, health, hash.
    fn container(spec: &str) -> Container {
        let parts: Vec<&str> = spec.split(':').collect();
        let state = match parts[1] {
            "running" => State::Running,
            "exited" => State::Exited,
            "created" => State::Created,
            other => panic!("state {other}"),
        };
        Container {
            id: parts[0].into(),
            name: format!("p-web-{}", parts[0]),
            number: parts[0][1..].parse().unwrap(),
            state,
            exit_code: 0,
            health: Health::parse(parts[2]),
            config_hash: parts[3].into(),
            image: String::new(),
            created: String::new(),
            healthcheck: None,
            last_check_output: None,
            addresses: Vec::new(),
            published: Vec::new(),
        }
    }

    fn snapshot(specs: &[&str], journal: Option<(&[&str], u32)>) -> Snapshot {
        Snapshot {
            project: "p".into(),
            service: "web".into(),
            config: ServiceConfig::default(),
            config_hash: "new".into(),
            containers: specs.iter().map(|s| container(s)).collect(),
            journal: journal.map(|(old, target)| Journal {
                old: old.iter().map(|s| s.to_string()).collect(),
                target,
                pid: 0,
            }),
            follow_replicas: false,
            batching: Batching::default(),
        }
    }

    fn ids(containers: &[Container]) -> String {
        containers
            .iter()
            .map(|c| c.id.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// (containers, journal) → (leftovers, retire, adopted, target, peak)
    #[test]
    fn plans() {
        type Case<'a> = (
            &'a [&'a str],
            Option<(&'a [&'a str], u32)>,
            (&'a str, &'a str, &'a str, u32, u32),
        );
        let cases: &[Case] = &[
            // A plain rollout of 1 and of 3.
            (&["a1:running:healthy:old"], None, ("", "a1", "", 1, 2)),
            (
                &[
                    "a1:running:healthy:x",
                    "a2:running:healthy:x",
                    "a3:running:healthy:x",
                ],
                None,
                ("", "a1,a2,a3", "", 3, 6),
            ),
            // Same config (a rebuilt image under the same tag) still rolls.
            (&["a1:running:healthy:new"], None, ("", "a1", "", 1, 2)),
            // First deploy.
            (&[], None, ("", "", "", 1, 1)),
            // An exited old container is removed first and not counted.
            (
                &["a1:running:healthy:old", "a2:exited::old"],
                None,
                ("a2", "a1", "", 1, 2),
            ),
            // Killed between scale and retire, two configs side by side: adopt, never 4N.
            (
                &[
                    "a1:running:healthy:old",
                    "a2:running:healthy:old",
                    "b3:running:starting:new",
                    "b4:running:healthy:new",
                ],
                None,
                ("", "a1,a2", "b4,b3", 2, 4),
            ),
            // The journal of an interrupted run knows the old set even with one config hash.
            (
                &[
                    "a1:running:unhealthy:new",
                    "b2:running:healthy:new",
                    "b3:created::new",
                ],
                Some((&["a1"], 1)),
                ("b3", "a1", "b2", 1, 2),
            ),
            // The file changed again since the interrupted run: its new container is outdated too.
            (
                &["a1:running:unhealthy:old", "b2:running:healthy:older"],
                Some((&["a1"], 1)),
                ("", "a1,b2", "", 1, 3),
            ),
            // More new containers than wanted: the extra, least healthy one is retired too.
            (
                &[
                    "a1:running:healthy:old",
                    "b2:running:healthy:new",
                    "b3:running:unhealthy:new",
                ],
                None,
                ("", "b3,a1", "b2", 1, 3),
            ),
            // A stale journal (its old containers are gone) is ignored.
            (
                &["b2:running:healthy:new"],
                Some((&["a1"], 1)),
                ("", "b2", "", 1, 2),
            ),
        ];
        for (specs, journal, (leftovers, retire, adopted, target, peak)) in cases {
            let plan = plan(&snapshot(specs, *journal)).unwrap();
            assert_eq!(
                (
                    ids(&plan.leftovers).as_str(),
                    ids(&plan.retire).as_str(),
                    ids(&plan.adopted).as_str(),
                    plan.target,
                    plan.peak
                ),
                (*leftovers, *retire, *adopted, *target, *peak),
                "{specs:?} {journal:?}"
            );
            let recognised = journal.is_some_and(|(old, _)| {
                specs
                    .iter()
                    .any(|s| old.contains(&s.split(':').next().unwrap()))
            }) || !plan.adopted.is_empty();
            assert_eq!(plan.recovery.is_some(), recognised, "{specs:?} {journal:?}");
        }
    }

    #[test]
    fn a_stack_follows_deploy_replicas_and_one_named_service_keeps_its_count() {
        let two = ["a1:running:healthy:old", "a2:running:healthy:old"];
        // (follow_replicas, deploy.replicas) → (target, peak)
        let cases = [
            (false, Some(3), (2, 4)),
            (true, Some(3), (3, 5)),
            (true, Some(1), (1, 3)),
            (true, None, (2, 4)),
            (true, Some(0), (2, 4)),
        ];
        for (follow, replicas, (target, peak)) in cases {
            let mut snapshot = snapshot(&two, None);
            snapshot.follow_replicas = follow;
            snapshot.config.replicas = replicas;
            let plan = plan(&snapshot).unwrap();
            assert_eq!(
                (plan.target, plan.peak),
                (target, peak),
                "{follow} {replicas:?}"
            );
        }
    }

    #[test]
    fn refuses_services_that_cannot_run_twice() {
        let mut named = snapshot(&["a1:running:healthy:old"], None);
        named.config.container_name = Some("web".into());
        assert!(plan(&named).unwrap_err().contains("remove container_name"));

        let mut fixed_port = snapshot(&["a1:running:healthy:old"], None);
        fixed_port.config.published_ports = vec!["8080".into()];
        assert!(plan(&fixed_port).unwrap_err().contains("host port 8080"));

        fixed_port.config.published_ports = vec!["8080-8081".into()];
        assert!(
            plan(&fixed_port).is_ok(),
            "a range of two ports fits two containers"
        );

        let mut first_deploy = snapshot(&[], None);
        first_deploy.config.container_name = Some("web".into());
        assert!(
            plan(&first_deploy).is_ok(),
            "one container may have a fixed name"
        );
    }

    /// (old, new to create, parallelism, order) → batches as "create:retired" and the peak.
    #[test]
    fn batches_never_run_more_than_n_plus_parallelism() {
        let old3 = [
            "a1:running:healthy:old",
            "a2:running:healthy:old",
            "a3:running:healthy:old",
        ];
        type Case<'a> = (&'a [&'a str], Option<u32>, u32, Order, &'a str, u32);
        let cases: &[Case] = &[
            (&old3, None, 0, Order::StartFirst, "3:a1,a2,a3", 6),
            (&old3, None, 1, Order::StartFirst, "1:a1 1:a2 1:a3", 4),
            (&old3, None, 2, Order::StartFirst, "2:a1,a2 1:a3", 5),
            (&old3, None, 3, Order::StartFirst, "3:a1,a2,a3", 6),
            (&old3, None, 1, Order::StopFirst, "1:a1 1:a2 1:a3", 3),
            // 3 → 5 and 3 → 1 from the file, one at a time.
            (
                &old3,
                Some(5),
                1,
                Order::StartFirst,
                "1:a1 1:a2 1:a3 1: 1:",
                5,
            ),
            (&old3, Some(1), 1, Order::StartFirst, "0:a1 0:a2 1:a3", 3),
            // A paused run left 1 new and 2 old of 3: each old one still gets its replacement.
            (
                &[
                    "a1:running:healthy:old",
                    "a2:running:healthy:old",
                    "b3:running:healthy:new",
                ],
                Some(3),
                1,
                Order::StartFirst,
                "1:a1 1:a2",
                4,
            ),
            // Killed mid-batch, 2 old and 2 new of 3 run: the surplus old one retires first.
            (
                &[
                    "a1:running:healthy:old",
                    "a2:running:healthy:old",
                    "b3:running:healthy:new",
                    "b4:running:healthy:new",
                ],
                Some(3),
                1,
                Order::StartFirst,
                "0:a1 1:a2",
                4,
            ),
            // A first deploy has nothing to protect: one batch.
            (&[], Some(3), 1, Order::StartFirst, "3:", 3),
            // What does not serve goes first.
            (
                &["a1:running:healthy:old", "a2:running:unhealthy:old"],
                None,
                1,
                Order::StartFirst,
                "1:a2 1:a1",
                3,
            ),
        ];
        for (specs, replicas, parallelism, order, expected, peak) in cases {
            let mut snapshot = snapshot(specs, None);
            snapshot.follow_replicas = true;
            snapshot.config.replicas = *replicas;
            snapshot.batching = Batching {
                parallelism: *parallelism,
                order: *order,
            };
            let plan = plan(&snapshot).unwrap();
            let shown: Vec<String> = plan
                .batches
                .iter()
                .map(|b| format!("{}:{}", b.create, b.retire.join(",")))
                .collect();
            assert_eq!(
                (shown.join(" ").as_str(), plan.peak),
                (*expected, *peak),
                "{specs:?} {replicas:?} {parallelism} {order:?}"
            );
        }
    }

    #[test]
    fn stop_first_fits_a_fixed_host_port() {
        let mut snapshot = snapshot(&["a1:running:healthy:old"], None);
        snapshot.config.published_ports = vec!["8080".into()];
        assert!(plan(&snapshot).is_err());
        snapshot.batching.order = Order::StopFirst;
        assert_eq!(plan(&snapshot).unwrap().peak, 1);
    }
}

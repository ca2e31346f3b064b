//! Stack rollouts (`docker reroll` with no service or several) against the fake `docker`: a
//! project `shop` of three services, each with one running container, of which some changed.

use serde_json::{Value, json};

use super::scenario::{NEW_HASH, OLD_HASH, ORPHAN, Rule, Run, Scenario, container, on};

/// One service of the stack world.
struct Service {
    name: &'static str,
    changed: bool,
    /// Its new container turns unhealthy: its rollout fails and rolls back.
    broken: bool,
    depends_on: &'static [&'static str],
    x_reroll: Option<Value>,
}

fn service(name: &'static str, changed: bool) -> Service {
    Service {
        name,
        changed,
        broken: false,
        depends_on: &[],
        x_reroll: None,
    }
}

/// 64 hex digits for a service's old (`a`) or new (`b`) container.
fn id(kind: char, service: &str) -> String {
    let digit = service.bytes().map(u32::from).sum::<u32>() % 10;
    format!("{kind}{digit}").repeat(32)
}

fn inspected(id: &str, service: &str, hash: &str, health: &str) -> Value {
    let number = if id.starts_with('a') { 1 } else { 2 };
    let mut value = container(id, number, hash, "running", Some(health));
    value["Name"] = json!(format!("/shop-{service}-{number}"));
    value["Config"]["Labels"]["com.docker.compose.service"] = json!(service);
    value
}

/// The fake's script for these services (one `Scenario` carries it, as overrides).
fn world(services: &[Service]) -> Scenario {
    world_after(Scenario::empty(), services)
}

/// The same, after the rules `first` holds: theirs answer first.
fn world_after(first: Scenario, services: &[Service]) -> Scenario {
    let mut config = json!({ "name": "shop", "services": {} });
    let mut hashes = String::new();
    let mut images = String::new();
    let mut rules: Vec<Rule> = Vec::new();
    for s in services {
        let mut entry = json!({ "image": format!("shop/{}:2", s.name) });
        if !s.depends_on.is_empty() {
            let deps: serde_json::Map<String, Value> = s
                .depends_on
                .iter()
                .map(|d| (d.to_string(), json!({ "condition": "service_started" })))
                .collect();
            entry["depends_on"] = Value::Object(deps);
        }
        if let Some(x) = &s.x_reroll {
            entry["x-reroll"] = x.clone();
        }
        config["services"][s.name] = entry;
        hashes.push_str(&format!("{} {NEW_HASH}\n", s.name));
        images.push_str("sha256:feed\n");
        let (old, new) = (id('a', s.name), id('b', s.name));
        let old_hash = if s.changed { OLD_HASH } else { NEW_HASH };
        let ps = format!(
            "ps --all --quiet --no-trunc --filter label=com.docker.compose.project=shop \
             --filter label=com.docker.compose.service={}",
            s.name
        );
        let (up, retired) = (format!("up:{}", s.name), format!("retired:{}", s.name));
        let new_health = if s.broken { "unhealthy" } else { "healthy" };
        rules.extend([
            on(&format!(
                "compose up --detach --no-deps --no-recreate --scale {0}=2 -- {0}",
                s.name
            ))
            .set(&[&up]),
            on(&ps).if_set(&[&retired]).stdout(&format!("{new}\n")),
            on(&ps).if_set(&[&up]).stdout(&format!("{old}\n{new}\n")),
            on(&ps).stdout(&format!("{old}\n")),
            on(&format!("inspect {old}"))
                .stdout(&json!([inspected(&old, s.name, old_hash, "healthy")]).to_string()),
            on(&format!("inspect {new}"))
                .stdout(&json!([inspected(&new, s.name, NEW_HASH, new_health)]).to_string()),
            on(&format!("rm -- {old}")).set(&[&retired]),
        ]);
    }
    rules.insert(0, on("image inspect").stdout(&images));
    rules.insert(0, on("compose config --hash").stdout(&hashes));
    let mut scenario = first;
    for rule in rules {
        scenario = scenario.rule(rule);
    }
    scenario.web_config_replaced(config)
}

/// `api` ← `web` (web depends on api), `cache` unchanged.
fn three() -> Vec<Service> {
    vec![
        Service {
            depends_on: &["api"],
            ..service("web", true)
        },
        service("api", true),
        service("cache", false),
    ]
}

fn ups(run: &Run) -> Vec<String> {
    run.called("compose up")
        .iter()
        .map(|l| l.rsplit(' ').next().unwrap().to_owned())
        .collect()
}

#[test]
fn rolls_the_changed_services_in_depends_on_order_and_skips_the_unchanged() {
    let run = world(&three()).run(&["--json"]);
    run.assert_exit(0)
        .assert_stderr("cache: unchanged, skipped");
    assert_eq!(ups(&run), ["api", "web"], "{run}");
    run.assert_untouched(&[&id('a', "cache"), &id('b', "cache")]);
    assert!(!run.mutating().iter().any(|l| l.contains("cache")), "{run}");
    let events: Vec<Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        events
            .iter()
            .filter(|e| e["event"] == "phase_start")
            .all(|e| e["service"].is_string()),
        "{run}"
    );
    let last = events.last().unwrap();
    assert_eq!(last["event"], "stack_finish", "{run}");
    assert_eq!(last["finished"], json!(["api", "web"]));
}

#[test]
fn named_services_roll_only_when_changed_unless_forced() {
    let run = world(&three()).run(&["cache", "web"]);
    run.assert_exit(0);
    assert_eq!(ups(&run), ["web"], "{run}");
    let forced = world(&three()).run(&["--force-recreate", "cache", "web"]);
    forced.assert_exit(0);
    assert_eq!(ups(&forced), ["cache", "web"], "{forced}");
}

#[test]
fn one_failing_service_stops_the_run_and_the_report_says_what_happened() {
    let mut services = three();
    services[2].changed = true;
    services[2].broken = true; // cache, rolled between api and web
    let run = world(&services).run(&["--json"]);
    run.assert_exit(1)
        .assert_stderr("finished: api; rolled back: cache; not started: web");
    assert_eq!(ups(&run), ["api", "cache"], "{run}");
    run.assert_untouched(&[&id('a', "web")]);
    let last: Value = serde_json::from_str(run.stdout.lines().last().unwrap()).unwrap();
    assert_eq!(last["event"], "stack_finish", "{run}");
    assert_eq!(last["exit_code"], 1);
    assert_eq!(last["rolled_back"], json!(["cache"]));
    assert_eq!(last["not_started"], json!(["web"]));
}

#[test]
fn x_reroll_settings_reach_the_rollout_and_flags_override_them() {
    let touch = format!("{} exec {{id}} touch /.from-file", super::scenario::FAKE);
    let mut services = three();
    services[1].x_reroll = Some(json!({ "pre-stop-cmd": touch, "wait-after-healthy": "0s" }));
    let run = world(&services).run(&[]);
    run.assert_exit(0);
    assert_eq!(
        run.called("exec"),
        [format!("exec {} touch /.from-file", id('a', "api"))],
        "{run}"
    );
    let flag = format!("{} exec {{id}} touch /.from-flag", super::scenario::FAKE);
    let run = world(&services).run(&["--pre-stop-cmd", &flag]);
    run.assert_exit(0);
    assert!(
        run.called("exec")
            .iter()
            .all(|l| l.ends_with("/.from-flag")),
        "{run}"
    );
    assert_eq!(run.called("exec").len(), 2, "api and web\n{run}");
}

#[test]
fn a_dry_run_shows_changes_order_plans_and_settings_and_changes_nothing() {
    let mut services = three();
    services[0].x_reroll = Some(json!({ "drain-timeout": "30s" }));
    let run = world(&services).run(&["--dry-run", "--wait", "20s"]);
    run.assert_exit(0)
        .assert_stderr("in depends_on order: api, cache, web")
        .assert_stderr("cache: unchanged, skipped")
        .assert_stderr("web: its configuration changed")
        .assert_stderr("scale web to 2 containers")
        .assert_stderr("drain-timeout = 30.00s (x-reroll)")
        .assert_stderr("wait = 20.00s (flag)")
        .assert_stderr("wait-after-healthy = 0.00s (default)");
    assert!(run.mutating().is_empty(), "{run}");
}

#[test]
fn a_bad_x_reroll_value_is_refused_before_anything_changes() {
    let mut services = three();
    services[0].x_reroll = Some(json!({ "drain-timeout": "forever" }));
    world(&services).run(&[]).assert_refused(
        "service 'web': x-reroll drain-timeout",
        "fix the compose file",
    );
}

#[test]
fn a_skipped_service_is_never_touched() {
    let mut services = three();
    services[1].x_reroll = Some(json!({ "skip": true }));
    let run = world(&services).run(&[]);
    run.assert_exit(0)
        .assert_stderr("api: x-reroll skip: true, skipped");
    assert_eq!(ups(&run), ["web"], "{run}");
}

#[test]
fn a_signal_lets_the_current_service_finish_and_starts_no_other() {
    let touch = format!("{} exec {{id}} touch /.dead", super::scenario::FAKE);
    let mut services = three();
    // api drains (its old container never turns unhealthy here, so it waits the 3s timeout):
    // the signal arrives past api's point of no return.
    services[1].x_reroll = Some(json!({
        "pre-stop-cmd": touch,
        "pre-stop-wait-until-unhealthy": true,
        "drain-timeout": "3s",
    }));
    let world = world(&services);
    let mut running = world.spawn(world.command(&[]));
    running.wait_for_calls(&format!("exec {}", id('a', "api")), 1);
    running.signal("INT");
    let run = running.finish();
    run.assert_exit(130)
        .assert_stderr("finished: api; rolled back: none; not started: web");
    assert_eq!(ups(&run), ["api"], "{run}");
    run.assert_untouched(&[&id('a', "web")]);
}

fn with_an_orphan(args: &[&str]) -> Run {
    world(&three()).orphan(ORPHAN, "legacy").run(args)
}

#[test]
fn remove_orphans_removes_them_after_every_service_rolled_before_the_end() {
    let run = with_an_orphan(&["--remove-orphans", "--json"]);
    run.assert_exit(0)
        .assert_stderr("service 'legacy' is no longer in the compose file");
    let mutating = run.mutating();
    assert_eq!(
        mutating[mutating.len() - 2..],
        [format!("stop -- {ORPHAN}"), format!("rm -- {ORPHAN}")],
        "after both rollouts\n{run}"
    );
    assert_eq!(ups(&run), ["api", "web"], "{run}");
    let last: Value = serde_json::from_str(run.stdout.lines().last().unwrap()).unwrap();
    assert_eq!(last["event"], "stack_finish", "{run}");
    assert_eq!(last["exit_code"], 0);
}

#[test]
fn orphans_are_only_mentioned_without_the_flag_or_in_a_dry_run() {
    let cases = [
        (
            &["--dry-run", "--remove-orphans"][..],
            "would be stopped and removed after the rollouts",
        ),
        (&[][..], "left alone; --remove-orphans removes it"),
    ];
    for (args, fate) in cases {
        let run = with_an_orphan(args);
        run.assert_exit(0)
            .assert_stderr(&format!("shop-legacy-1 (c1c1c1c1c1c1) {fate}"))
            .assert_untouched(&[ORPHAN]);
        if args.contains(&"--dry-run") {
            assert!(run.mutating().is_empty(), "{run}");
        }
    }
}

/// The canary keys of `x-reroll:` (crate::canary) are for one service rolled alone.
#[test]
fn a_stack_rollout_says_it_ignores_a_services_canary_keys() {
    let mut services = three();
    services[1].x_reroll = Some(json!({ "steps": "1", "bake": "1m" }));
    let run = world(&services).run(&["--dry-run"]);
    run.assert_exit(0).assert_stderr(
        "service 'api': x-reroll steps, bake ignored in a stack rollout (rolled plainly): for its \
         canary, roll it alone with docker reroll api",
    );
}

/// Services with no Compose container that the engine runs in a Swarm stack of the project's
/// name: refused before anything changes, with one `docker service ls` for the whole run.
#[test]
fn services_that_run_in_a_swarm_stack_are_refused_with_one_listing() {
    let none = |service: &str| {
        on(&format!(
            "ps --all --quiet --no-trunc --filter label=com.docker.compose.project=shop \
             --filter label=com.docker.compose.service={service}"
        ))
        .stdout("")
    };
    let swarm = |listed: &str| {
        Scenario::empty()
            .rule(on("service ls --filter label=com.docker.stack.namespace=shop").stdout(listed))
            .rule(none("api"))
            .rule(none("web"))
    };
    // Neither runs in Swarm: two first deploys, one listing.
    let run = world_after(swarm("shop_other\t1/1\n"), &three()).run(&["--dry-run"]);
    run.assert_exit(0);
    assert_eq!(run.called("service ls").len(), 1, "{run}");

    let run = world_after(swarm("shop_api\t1/1\nshop_web\t2/2\n"), &three()).run(&[]);
    run.assert_exit(2)
        .assert_stderr(
            "error: service 'api' has no Compose container but runs as Swarm service 'shop_api'",
        )
        .assert_stderr("roll it with --swarm");
    assert!(run.mutating().is_empty(), "{run}");
    assert_eq!(run.called("service ls").len(), 1, "{run}");
}

//! A service's rollout settings from four layers: the flags actually given on the command line,
//! then the service's `x-reroll:` in the compose file, then its `deploy.update_config`, then the
//! defaults. Each resolved value remembers its layer, for `--dry-run`.

mod update_config;

use std::time::Duration;

use serde_json::Value;

use crate::duration::show;
use crate::model::policy::{FailureAction, Order, StillRouting};
use crate::model::project::ServiceConfig;
use crate::proxy::ProxyKind;
use crate::rollout::Settings;
use crate::template::Template;
pub use update_config::update_config_layer;

/// One layer: a value per setting, or nothing to say about it.
#[derive(Clone, Debug, Default)]
pub struct Layer {
    pub pre_stop_cmd: Option<Template>,
    /// Undoes the pre-stop command on an old container a rollback restarts.
    pub undo_pre_stop_cmd: Option<Template>,
    pub pre_stop_wait_until_unhealthy: Option<bool>,
    pub healthcheck_timeout: Option<Duration>,
    pub wait: Option<Duration>,
    pub wait_after_healthy: Option<Duration>,
    pub drain_timeout: Option<Duration>,
    pub wait_after_unhealthy: Option<Duration>,
    pub parallelism: Option<u32>,
    pub delay: Option<Duration>,
    pub order: Option<Order>,
    pub failure_action: Option<FailureAction>,
    pub max_failure_ratio: Option<f64>,
    pub proxy: Option<ProxyKind>,
    /// The proxy's API: a base URL (Traefik) or a runtime API socket (HAProxy).
    pub proxy_url: Option<String>,
    /// The proxy's name for the service: a Traefik service, a HAProxy backend.
    pub proxy_service: Option<String>,
    pub proxy_cmd: Option<Template>,
    pub proxy_timeout: Option<Duration>,
    pub proxy_still_routing: Option<StillRouting>,
}

/// Which proxy to ask, and how to reach it; checked, not yet connected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxySpec {
    pub kind: ProxyKind,
    pub url: Option<String>,
    pub service: Option<String>,
    pub cmd: Option<Template>,
}

/// What a service's `x-reroll:` says besides its settings.
#[derive(Clone, Debug, Default)]
pub struct XReroll {
    pub settings: Layer,
    /// `skip: true`: stack rollouts never touch the service.
    pub skip: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    Flag,
    XReroll,
    #[serde(rename = "deploy.update_config")]
    UpdateConfig,
    Default,
}

impl Source {
    pub fn name(self) -> &'static str {
        match self {
            Source::Flag => "flag",
            Source::XReroll => "x-reroll",
            Source::UpdateConfig => "deploy.update_config",
            Source::Default => "default",
        }
    }
}

/// The settings one service's rollout runs with.
#[derive(Clone, Debug)]
pub struct Resolved {
    pub settings: Settings,
    pub pre_stop_cmd: Option<Template>,
    /// Run on an old container a rollback restarts after its pre-stop command ran.
    pub undo_pre_stop_cmd: Option<Template>,
    /// The proxy adapter to verify routing with, if any.
    pub proxy: Option<ProxySpec>,
    /// (key, value as shown, where it came from), in the README's order.
    pub sources: Vec<(&'static str, String, Source)>,
}

/// A service's settings as its compose file and the flags decide them.
#[derive(Clone, Debug)]
pub struct ServiceSettings {
    /// `x-reroll: skip: true`: never rolled.
    pub skip: bool,
    pub resolved: Resolved,
}

/// Every layer of one service, read and resolved; errors name the service, the key and the fix.
pub fn service_settings(
    service: &str,
    config: &ServiceConfig,
    flags: &Layer,
) -> Result<ServiceSettings, String> {
    let x_reroll = parse_x_reroll(service, config.x_reroll.as_ref())?;
    let update_config = update_config_layer(service, &config.update_config)?;
    let resolved = resolve_draining(
        service,
        flags,
        &x_reroll.settings,
        &update_config,
        !config.pre_stop.is_empty(),
    )?;
    Ok(ServiceSettings {
        skip: x_reroll.skip,
        resolved,
    })
}

/// Reads `x-reroll:` (as Compose printed it, uninterpolated). Errors name the key and the fix.
pub fn parse_x_reroll(service: &str, value: Option<&Value>) -> Result<XReroll, String> {
    let mut parsed = XReroll::default();
    let Some(value) = value else {
        return Ok(parsed);
    };
    let Some(map) = value.as_object() else {
        return Err(format!(
            "service '{service}': x-reroll must be a mapping of settings: fix the compose file"
        ));
    };
    let layer = &mut parsed.settings;
    for (key, value) in map {
        let bad =
            |why: &str| format!("service '{service}': x-reroll {key}: {why}: fix the compose file");
        if value.as_str().is_some_and(|text| text.contains('$')) {
            // Compose only keeps x- fields in its uninterpolated JSON.
            return Err(bad(
                "variables are not interpolated in x-reroll; write the value itself",
            ));
        }
        let duration = || match value {
            Value::String(text) => crate::duration::parse(text).map_err(|e| bad(&e)),
            Value::Number(n) => n
                .as_u64()
                .map(Duration::from_secs)
                .ok_or_else(|| bad("expected a duration such as 30s, or whole seconds")),
            _ => Err(bad("expected a duration such as 30s, or whole seconds")),
        };
        let switch = || value.as_bool().ok_or_else(|| bad("expected true or false"));
        let text = || {
            value
                .as_str()
                .filter(|text| !text.is_empty())
                .map(str::to_owned)
                .ok_or_else(|| bad("expected a non-empty string"))
        };
        let template = || {
            let text = value
                .as_str()
                .ok_or_else(|| bad("expected a command line"))?;
            Template::parse(text).map_err(|e| bad(&e))
        };
        match key.as_str() {
            "skip" => parsed.skip = switch()?,
            "pre-stop-cmd" => layer.pre_stop_cmd = Some(template()?),
            "undo-pre-stop-cmd" => layer.undo_pre_stop_cmd = Some(template()?),
            "pre-stop-wait-until-unhealthy" => {
                layer.pre_stop_wait_until_unhealthy = Some(switch()?)
            }
            "healthcheck-timeout" => layer.healthcheck_timeout = Some(duration()?),
            "wait" => layer.wait = Some(duration()?),
            "wait-after-healthy" => layer.wait_after_healthy = Some(duration()?),
            "drain-timeout" => layer.drain_timeout = Some(duration()?),
            "wait-after-unhealthy" => layer.wait_after_unhealthy = Some(duration()?),
            "proxy" => {
                let text = value.as_str().unwrap_or_default();
                layer.proxy = Some(
                    ProxyKind::parse(text)
                        .ok_or_else(|| bad("expected one of traefik, haproxy, command"))?,
                );
            }
            "proxy-url" => layer.proxy_url = Some(text()?),
            "proxy-service" => layer.proxy_service = Some(text()?),
            "proxy-cmd" => layer.proxy_cmd = Some(template()?),
            "proxy-timeout" => layer.proxy_timeout = Some(duration()?),
            // Read and checked by crate::canary::args.
            key if crate::canary::args::X_REROLL_KEYS.contains(&key) => {}
            // Read by the engine module (Podman), checked here with the rest.
            "engine" => {
                let text = value.as_str().unwrap_or_default();
                if !["auto", "docker", "podman"].contains(&text) {
                    return Err(bad("expected one of auto, docker, podman"));
                }
            }
            "health-runner" => {
                let text = value.as_str().unwrap_or_default();
                crate::model::policy::HealthRunner::parse(text)
                    .ok_or_else(|| bad("expected one of auto, engine, tool"))?;
            }
            "proxy-still-routing" => {
                let text = value.as_str().unwrap_or_default();
                layer.proxy_still_routing =
                    Some(StillRouting::parse(text).ok_or_else(|| bad("expected keep or stop"))?);
            }
            _ => {
                return Err(bad(
                    "unknown key (known: skip, pre-stop-cmd, undo-pre-stop-cmd, \
                     pre-stop-wait-until-unhealthy, healthcheck-timeout, wait, wait-after-healthy, \
                     drain-timeout, wait-after-unhealthy, proxy, proxy-url, proxy-service, \
                     proxy-cmd, proxy-timeout, proxy-still-routing, engine, health-runner; the batch \
                     settings belong in \
                     deploy.update_config)",
                ));
            }
        }
    }
    Ok(parsed)
}

/// The layers, first to last, and what each resolved value was shown as and came from.
struct Picker<'a> {
    layers: [(&'a Layer, Source); 3],
    sources: Vec<(&'static str, String, Source)>,
}

impl Picker<'_> {
    fn first<T: Clone>(&self, field: fn(&Layer) -> &Option<T>) -> Option<(T, Source)> {
        self.layers
            .iter()
            .find_map(|(layer, source)| field(layer).clone().map(|value| (value, *source)))
    }

    /// The first layer's value for `field`, else `default`; recorded under `key` as `shown`.
    fn value<T: Clone>(
        &mut self,
        key: &'static str,
        field: fn(&Layer) -> &Option<T>,
        default: T,
        shown: impl Fn(&T) -> String,
    ) -> T {
        let (value, source) = self.first(field).unwrap_or((default, Source::Default));
        self.sources.push((key, shown(&value), source));
        value
    }

    /// The first layer's value for `field`, if any; without one, shown as `unset`.
    fn optional<T: Clone>(
        &mut self,
        key: &'static str,
        field: fn(&Layer) -> &Option<T>,
        unset: &str,
        shown: impl Fn(&T) -> String,
    ) -> Option<T> {
        let (value, source) = match self.first(field) {
            Some((value, source)) => (Some(value), source),
            None => (None, Source::Default),
        };
        let text = value.as_ref().map_or_else(|| unset.to_owned(), shown);
        self.sources.push((key, text, source));
        value
    }
}

/// The flags over `x-reroll:` over `deploy.update_config` over the defaults.
pub fn resolve(
    service: &str,
    flags: &Layer,
    x_reroll: &Layer,
    update_config: &Layer,
) -> Result<Resolved, String> {
    resolve_draining(service, flags, x_reroll, update_config, false)
}

/// [`resolve`] for a service that may have its own `pre_stop:` hooks, which drain it as a
/// pre-stop command does (the tool runs them before the command).
pub fn resolve_draining(
    service: &str,
    flags: &Layer,
    x_reroll: &Layer,
    update_config: &Layer,
    pre_stop_hooks: bool,
) -> Result<Resolved, String> {
    let defaults = Settings::default();
    let mut picker = Picker {
        layers: [
            (flags, Source::Flag),
            (x_reroll, Source::XReroll),
            (update_config, Source::UpdateConfig),
        ],
        sources: Vec::new(),
    };
    let derived = "derived from the healthcheck";
    let duration = |d: &Duration| show(*d);
    let command = |t: &Template| t.to_string();
    let healthcheck_timeout = picker.optional(
        "healthcheck-timeout",
        |l| &l.healthcheck_timeout,
        derived,
        duration,
    );
    let wait = picker.value(
        "wait",
        |l| &l.wait,
        defaults.wait_without_healthcheck,
        duration,
    );
    let wait_after_healthy = picker.value(
        "wait-after-healthy",
        |l| &l.wait_after_healthy,
        defaults.wait_after_healthy,
        duration,
    );
    let drain_timeout = picker.optional("drain-timeout", |l| &l.drain_timeout, derived, duration);
    let wait_after_unhealthy = picker.value(
        "wait-after-unhealthy",
        |l| &l.wait_after_unhealthy,
        defaults.wait_after_unhealthy,
        duration,
    );
    let pre_stop_cmd = picker.optional("pre-stop-cmd", |l| &l.pre_stop_cmd, "none", command);
    let wait_until_unhealthy = picker.value(
        "pre-stop-wait-until-unhealthy",
        |l| &l.pre_stop_wait_until_unhealthy,
        defaults.wait_until_unhealthy,
        bool::to_string,
    );
    let undo_pre_stop_cmd = picker.optional(
        "undo-pre-stop-cmd",
        |l| &l.undo_pre_stop_cmd,
        "none",
        command,
    );
    let parallelism = picker.value(
        "parallelism",
        |l| &l.parallelism,
        defaults.parallelism,
        |count| match count {
            0 => "0 (all at once)".to_owned(),
            count => count.to_string(),
        },
    );
    let delay = picker.value("delay", |l| &l.delay, defaults.delay, duration);
    let order = picker.value(
        "order",
        |l| &l.order,
        defaults.order,
        |order| order.name().to_owned(),
    );
    let failure_action = picker.value(
        "failure-action",
        |l| &l.failure_action,
        defaults.failure_action,
        |action| action.name().to_owned(),
    );
    let max_failure_ratio = picker.value(
        "max-failure-ratio",
        |l| &l.max_failure_ratio,
        defaults.max_failure_ratio,
        f64::to_string,
    );
    let proxy = picker.optional("proxy", |l| &l.proxy, "none", |k| k.name().to_owned());
    let proxy_url = picker.optional("proxy-url", |l| &l.proxy_url, "none", String::clone);
    let proxy_service = picker.optional(
        "proxy-service",
        |l| &l.proxy_service,
        "derived",
        String::clone,
    );
    let proxy_cmd = picker.optional("proxy-cmd", |l| &l.proxy_cmd, "none", command);
    let proxy_timeout = picker.value(
        "proxy-timeout",
        |l| &l.proxy_timeout,
        defaults.proxy_timeout,
        duration,
    );
    let still_routing = picker.value(
        "proxy-still-routing",
        |l| &l.proxy_still_routing,
        defaults.still_routing,
        |s| s.name().to_owned(),
    );
    let drains = pre_stop_cmd.is_some() || pre_stop_hooks;
    let proxy = proxy_spec(service, proxy, proxy_url, proxy_service, proxy_cmd, drains)?;
    if wait_until_unhealthy && !drains {
        return Err(format!(
            "service '{service}': waiting until unhealthy needs a pre-stop command that makes the \
             old containers unhealthy: give --pre-stop-cmd (or x-reroll pre-stop-cmd, or a pre_stop: \
             hook)"
        ));
    }
    if undo_pre_stop_cmd.is_some() && !drains {
        return Err(format!(
            "service '{service}': an undo-pre-stop command needs a pre-stop command to undo: give \
             --pre-stop-cmd (or x-reroll pre-stop-cmd), or drop the undo command"
        ));
    }
    Ok(Resolved {
        settings: Settings {
            healthcheck_timeout,
            wait_without_healthcheck: wait,
            wait_after_healthy,
            pre_stop: drains,
            undo_pre_stop: undo_pre_stop_cmd.is_some(),
            wait_until_unhealthy,
            drain_timeout,
            wait_after_unhealthy,
            parallelism,
            delay,
            order,
            failure_action,
            max_failure_ratio,
            verify_proxy: proxy.is_some(),
            proxy_timeout,
            still_routing,
        },
        pre_stop_cmd,
        undo_pre_stop_cmd,
        proxy,
        sources: picker.sources,
    })
}

/// The proxy settings, checked against each other: every error names the flag and the fix.
fn proxy_spec(
    service: &str,
    kind: Option<ProxyKind>,
    url: Option<String>,
    name: Option<String>,
    cmd: Option<Template>,
    pre_stop: bool,
) -> Result<Option<ProxySpec>, String> {
    let kind = match (kind, &cmd) {
        (Some(kind), _) => kind,
        (None, Some(_)) => ProxyKind::Command,
        (None, None) => {
            if url.is_some() || name.is_some() {
                return Err(format!(
                    "service '{service}': --proxy-url and --proxy-service need a proxy kind: \
                     give --proxy traefik or --proxy haproxy (or x-reroll proxy)"
                ));
            }
            return Ok(None);
        }
    };
    let fail = |why: String| Err(format!("service '{service}': {why}"));
    match kind {
        ProxyKind::Traefik => match &url {
            None => {
                return fail(
                    "--proxy traefik needs the Traefik API's address: give --proxy-url \
                     http://127.0.0.1:8080 (Traefik with --api.insecure=true), or x-reroll proxy-url"
                        .into(),
                );
            }
            Some(url) => {
                crate::proxy::http::BaseUrl::parse(url).map_err(|e| format!("--proxy-url: {e}"))?;
            }
        },
        ProxyKind::Haproxy => match &url {
            None => {
                return fail(
                    "--proxy haproxy needs HAProxy's runtime API: give --proxy-url \
                     tcp://127.0.0.1:9999 or unix:///run/haproxy.sock (a `stats socket` with \
                     level admin or operator), or x-reroll proxy-url"
                        .into(),
                );
            }
            Some(url) => {
                crate::proxy::haproxy::Socket::parse(url)
                    .map_err(|e| format!("--proxy-url: {e}"))?;
            }
        },
        ProxyKind::Command => {
            if cmd.is_none() {
                return fail(
                    "--proxy command needs --proxy-cmd, a command that exits 0 while the proxy \
                     routes to a container, e.g. 'docker exec {project}-nginx-1 sh /etc/nginx/reroll/routes.sh {addr}' (examples/nginx)"
                        .into(),
                );
            }
        }
    }
    if !pre_stop {
        return fail(format!(
            "--proxy {} waits for the proxy to drop the old containers, which it does once their \
             health check fails: give --pre-stop-cmd that makes it fail, e.g. 'docker exec {{id}} \
             touch /.dead' (or x-reroll pre-stop-cmd, or a pre_stop: hook)",
            kind.name()
        ));
    }
    Ok(Some(ProxySpec {
        kind,
        url,
        service: name,
        cmd,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::project::UpdateConfig;
    use serde_json::json;

    #[test]
    fn flags_override_the_file_which_overrides_the_defaults() {
        let file = parse_x_reroll(
            "web",
            Some(&json!({"wait-after-healthy": "2s", "drain-timeout": 30, "pre-stop-cmd": "touch {id}"})),
        )
        .unwrap();
        let flags = Layer {
            wait_after_healthy: Some(Duration::from_secs(5)),
            ..Layer::default()
        };
        let resolved = resolve("web", &flags, &file.settings, &Layer::default()).unwrap();
        assert_eq!(resolved.settings.wait_after_healthy, Duration::from_secs(5));
        assert_eq!(
            resolved.settings.drain_timeout,
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            resolved.settings.wait_without_healthcheck,
            Duration::from_secs(10)
        );
        assert!(resolved.settings.pre_stop);
        let source = |key| resolved.sources.iter().find(|s| s.0 == key).unwrap().2;
        assert_eq!(source("wait-after-healthy"), Source::Flag);
        assert_eq!(source("drain-timeout"), Source::XReroll);
        assert_eq!(source("wait"), Source::Default);
        assert_eq!(source("pre-stop-cmd"), Source::XReroll);
    }

    #[test]
    fn bad_values_name_the_service_and_the_key() {
        let cases = [
            (json!({"wait": "soon"}), "x-reroll wait"),
            (json!({"drain-timeout": true}), "x-reroll drain-timeout"),
            (json!({"skip": "yes"}), "x-reroll skip"),
            (json!({"engine": "kubernetes"}), "x-reroll engine"),
            (
                json!({"pre-stop-cmd": "touch {nope}"}),
                "x-reroll pre-stop-cmd",
            ),
            (json!({"wait": "${WAIT}"}), "not interpolated"),
            (json!({"parallelism": 2}), "unknown key"),
            (json!("fast"), "must be a mapping"),
        ];
        for (value, expected) in cases {
            let error = parse_x_reroll("api", Some(&value)).unwrap_err();
            assert!(error.contains("service 'api'"), "{error}");
            assert!(error.contains(expected), "{value}: {error}");
        }
        assert!(
            parse_x_reroll("api", Some(&json!({"skip": true})))
                .unwrap()
                .skip
        );
    }

    #[test]
    fn waiting_until_unhealthy_needs_a_pre_stop_from_some_layer() {
        let wants_drain = Layer {
            pre_stop_wait_until_unhealthy: Some(true),
            ..Layer::default()
        };
        assert!(resolve("web", &wants_drain, &Layer::default(), &Layer::default()).is_err());
        let file = Layer {
            pre_stop_cmd: Some(Template::parse("touch {id}").unwrap()),
            ..Layer::default()
        };
        assert!(resolve("web", &wants_drain, &file, &Layer::default()).is_ok());
    }

    #[test]
    fn proxy_settings_are_checked_against_each_other() {
        let drain = Layer {
            pre_stop_cmd: template("docker exec {id} touch /.dead"),
            ..Layer::default()
        };
        let x_reroll = |value: Value| parse_x_reroll("web", Some(&value)).unwrap().settings;
        let cases = [
            (
                json!({"proxy": "traefik"}),
                "give --proxy-url http://127.0.0.1:8080",
            ),
            (
                json!({"proxy": "haproxy"}),
                "give --proxy-url tcp://127.0.0.1:9999",
            ),
            (json!({"proxy": "command"}), "needs --proxy-cmd"),
            (json!({"proxy-url": "http://x:1"}), "need a proxy kind"),
            (
                json!({"proxy": "traefik", "proxy-url": "127.0.0.1:8080"}),
                "--proxy-url: '127.0.0.1:8080' is not an http:// URL",
            ),
            (
                json!({"proxy": "haproxy", "proxy-url": "http://h:1"}),
                "--proxy-url: 'http://h:1' is not a HAProxy runtime API address",
            ),
        ];
        for (value, expected) in cases {
            let error =
                resolve("web", &drain, &x_reroll(value.clone()), &Layer::default()).unwrap_err();
            assert!(
                error.contains("service 'web'") || error.contains("--proxy-url"),
                "{error}"
            );
            assert!(error.contains(expected), "{value}: {error}");
        }
        let traefik = x_reroll(
            json!({"proxy": "traefik", "proxy-url": "http://127.0.0.1:8081",
                                     "proxy-timeout": "10s", "proxy-still-routing": "stop"}),
        );
        let error = resolve("web", &Layer::default(), &traefik, &Layer::default()).unwrap_err();
        assert!(error.contains("give --pre-stop-cmd"), "{error}");
        let resolved = resolve("web", &drain, &traefik, &Layer::default()).unwrap();
        assert!(resolved.settings.verify_proxy);
        assert_eq!(resolved.settings.proxy_timeout, Duration::from_secs(10));
        assert_eq!(resolved.settings.still_routing, StillRouting::Stop);
        assert_eq!(resolved.proxy.unwrap().kind, ProxyKind::Traefik);
        let command = Layer {
            proxy_cmd: template("curl -fs http://{addr}/"),
            ..drain.clone()
        };
        let resolved = resolve("web", &command, &Layer::default(), &Layer::default()).unwrap();
        assert_eq!(
            resolved.proxy.unwrap().kind,
            ProxyKind::Command,
            "implied by --proxy-cmd"
        );
        for (value, expected) in [
            (
                json!({"proxy": "nginx"}),
                "expected one of traefik, haproxy, command",
            ),
            (
                json!({"proxy-still-routing": "maybe"}),
                "expected keep or stop",
            ),
            (json!({"proxy-url": ""}), "expected a non-empty string"),
        ] {
            let error = parse_x_reroll("web", Some(&value)).unwrap_err();
            assert!(error.contains(expected), "{value}: {error}");
        }
    }

    fn template(text: &str) -> Option<Template> {
        Some(Template::parse(text).unwrap())
    }

    #[test]
    fn each_setting_comes_from_the_first_layer_that_has_it() {
        let flags = Layer {
            parallelism: Some(3),
            order: Some(Order::StopFirst),
            ..Layer::default()
        };
        let x_reroll = Layer {
            wait_after_healthy: Some(Duration::from_secs(2)),
            pre_stop_cmd: template("touch {id}"),
            undo_pre_stop_cmd: template("rm -f {id}"),
            ..Layer::default()
        };
        let update_config = Layer {
            parallelism: Some(1),
            delay: Some(Duration::from_secs(5)),
            wait_after_healthy: Some(Duration::from_millis(1500)),
            order: Some(Order::StartFirst),
            failure_action: Some(FailureAction::Pause),
            max_failure_ratio: Some(0.3),
            ..Layer::default()
        };
        let resolved = resolve("web", &flags, &x_reroll, &update_config).unwrap();
        let expected = [
            (
                "healthcheck-timeout",
                "derived from the healthcheck",
                Source::Default,
            ),
            ("wait", "10.00s", Source::Default),
            ("wait-after-healthy", "2.00s", Source::XReroll),
            (
                "drain-timeout",
                "derived from the healthcheck",
                Source::Default,
            ),
            ("wait-after-unhealthy", "0.00s", Source::Default),
            ("pre-stop-cmd", "touch {id}", Source::XReroll),
            ("pre-stop-wait-until-unhealthy", "false", Source::Default),
            ("undo-pre-stop-cmd", "rm -f {id}", Source::XReroll),
            ("parallelism", "3", Source::Flag),
            ("delay", "5.00s", Source::UpdateConfig),
            ("order", "stop-first", Source::Flag),
            ("failure-action", "pause", Source::UpdateConfig),
            ("max-failure-ratio", "0.3", Source::UpdateConfig),
            ("proxy", "none", Source::Default),
            ("proxy-url", "none", Source::Default),
            ("proxy-service", "derived", Source::Default),
            ("proxy-cmd", "none", Source::Default),
            ("proxy-timeout", "30.00s", Source::Default),
            ("proxy-still-routing", "keep", Source::Default),
        ];
        let shown: Vec<(&str, &str, Source)> = resolved
            .sources
            .iter()
            .map(|(key, value, source)| (*key, value.as_str(), *source))
            .collect();
        assert_eq!(shown, expected);
        let settings = &resolved.settings;
        assert_eq!(
            (
                settings.parallelism,
                settings.order,
                settings.failure_action
            ),
            (3, Order::StopFirst, FailureAction::Pause)
        );
        assert_eq!(settings.delay, Duration::from_secs(5));
        assert_eq!(settings.max_failure_ratio, 0.3);
        assert!(settings.undo_pre_stop && settings.pre_stop);
        assert_eq!(resolved.undo_pre_stop_cmd, template("rm -f {id}"));
    }

    #[test]
    fn update_config_fills_what_flags_and_x_reroll_leave_open() {
        let watching = |millis| Layer {
            wait_after_healthy: Some(Duration::from_millis(millis)),
            ..Layer::default()
        };
        let none = Layer::default;
        let cases = [
            (none(), none(), "0.00s", Source::Default),
            (none(), watching(1500), "1.50s", Source::UpdateConfig),
            (watching(4000), watching(1500), "4.00s", Source::XReroll),
            (watching(4000), none(), "4.00s", Source::XReroll),
        ];
        for (x_reroll, update_config, shown, source) in cases {
            let resolved = resolve("web", &none(), &x_reroll, &update_config).unwrap();
            let found = resolved
                .sources
                .iter()
                .find(|s| s.0 == "wait-after-healthy")
                .unwrap();
            assert_eq!((found.1.as_str(), found.2), (shown, source));
        }
    }

    #[test]
    fn defaults_roll_everything_at_once_start_first_and_roll_back() {
        let resolved = resolve(
            "web",
            &Layer::default(),
            &Layer::default(),
            &Layer::default(),
        )
        .unwrap();
        assert_eq!(resolved.settings, Settings::default());
        let shown = |key| {
            resolved
                .sources
                .iter()
                .find(|s| s.0 == key)
                .map(|s| (s.1.clone(), s.2))
                .unwrap()
        };
        assert_eq!(
            shown("parallelism"),
            ("0 (all at once)".into(), Source::Default)
        );
        assert_eq!(shown("order"), ("start-first".into(), Source::Default));
        assert_eq!(
            shown("failure-action"),
            ("rollback".into(), Source::Default)
        );
        assert_eq!(shown("max-failure-ratio"), ("0".into(), Source::Default));
        assert_eq!(shown("undo-pre-stop-cmd"), ("none".into(), Source::Default));
    }

    #[test]
    fn undoing_the_pre_stop_needs_a_pre_stop_from_some_layer() {
        let undo = Layer {
            undo_pre_stop_cmd: template("rm -f /.dead"),
            ..Layer::default()
        };
        let error = resolve("web", &undo, &Layer::default(), &Layer::default()).unwrap_err();
        assert!(error.contains("service 'web'"), "{error}");
        assert!(error.contains("--pre-stop-cmd"), "{error}");
        assert_eq!(error.lines().count(), 1);
        let pre_stop = Layer {
            pre_stop_cmd: template("touch /.dead"),
            ..Layer::default()
        };
        let resolved = resolve("web", &undo, &pre_stop, &Layer::default()).unwrap();
        assert!(resolved.settings.undo_pre_stop);
    }

    #[test]
    fn x_reroll_takes_an_undo_command_but_not_the_batch_keys() {
        let parsed = parse_x_reroll(
            "web",
            Some(&json!({"pre-stop-cmd": "touch {id}", "undo-pre-stop-cmd": "rm -f {id}"})),
        )
        .unwrap();
        assert_eq!(parsed.settings.undo_pre_stop_cmd, template("rm -f {id}"));
        for key in [
            "parallelism",
            "delay",
            "order",
            "failure-action",
            "max-failure-ratio",
        ] {
            let error = parse_x_reroll("web", Some(&json!({ key: 1 }))).unwrap_err();
            assert!(error.contains("unknown key"), "{key}: {error}");
            assert!(error.contains("deploy.update_config"), "{key}: {error}");
        }
    }

    #[test]
    fn a_service_reads_x_reroll_and_update_config_together() {
        let config = ServiceConfig {
            x_reroll: Some(json!({"skip": true, "wait": "3s"})),
            update_config: UpdateConfig {
                parallelism: Some(2),
                monitor: Some("1m30s".into()),
                ..UpdateConfig::default()
            },
            ..ServiceConfig::default()
        };
        let decided = service_settings("web", &config, &Layer::default()).unwrap();
        assert!(decided.skip);
        let settings = &decided.resolved.settings;
        assert_eq!(settings.parallelism, 2);
        assert_eq!(settings.wait_after_healthy, Duration::from_secs(90));
        assert_eq!(settings.wait_without_healthcheck, Duration::from_secs(3));
        let bad = ServiceConfig {
            update_config: UpdateConfig {
                failure_action: Some("retry".into()),
                ..UpdateConfig::default()
            },
            ..ServiceConfig::default()
        };
        let error = service_settings("web", &bad, &Layer::default()).unwrap_err();
        assert!(
            error.contains("deploy.update_config.failure_action"),
            "{error}"
        );
    }
}

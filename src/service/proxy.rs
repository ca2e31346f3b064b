//! The proxy a service's rollout asks: located (a service of the project names its container),
//! built from the settings, and checked before anything changes.

use std::time::Duration;

use tokio::time::Instant;

use crate::docker::{Docker, unreachable_or};
use crate::duration::show;
use crate::exit::Failure;
use crate::interrupt::Interrupts;
use crate::model::container::{Container, Health};
use crate::model::project::ServiceConfig;
use crate::model::routing::Target;
use crate::proxy::{Naming, Proxy, ProxyError};
use crate::report::Reporter;
use crate::service_settings::ProxySpec;

pub async fn connect_proxy(
    spec: &ProxySpec,
    project: &str,
    service: &str,
    config: &ServiceConfig,
    docker: &Docker,
) -> Result<Proxy, Failure> {
    let naming = Naming {
        service,
        project,
        labels: &config.labels,
    };
    let url = match &spec.url {
        Some(url) => Some(locate_proxy(url, project, docker).await?),
        None => None,
    };
    Proxy::build(
        spec.kind,
        url.as_deref(),
        spec.service.as_deref(),
        spec.cmd.as_ref(),
        &naming,
        docker.globals().env(),
    )
    .map_err(Failure::usage)
}

/// `tcp://haproxy:9999` or `http://traefik:8080/`, where the host is a service of the project:
/// that service's running container, through the host port it publishes for that port, else its
/// address on its network. So a compose file can name its proxy without fixing a host port.
async fn locate_proxy(url: &str, project: &str, docker: &Docker) -> Result<String, Failure> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Ok(url.to_owned());
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let Some((host, port)) = authority.rsplit_once(':') else {
        return Ok(url.to_owned());
    };
    let names_a_service = !host.is_empty()
        && host != "localhost"
        && host.parse::<std::net::IpAddr>().is_err()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    let Ok(port) = port.parse::<u16>() else {
        return Ok(url.to_owned());
    };
    if !names_a_service {
        return Ok(url.to_owned());
    }
    let containers = docker
        .containers(project, host)
        .await
        .map_err(unreachable_or("listing the proxy's containers"))?;
    let Some(proxy) = containers.iter().find(|c| c.is_running()) else {
        return Err(Failure::usage(format!(
            "--proxy-url {url} names service '{host}', which has no running container in project \
             '{project}': start it (docker compose up -d {host}), or give the proxy's address"
        )));
    };
    let at = match proxy.published.iter().find(|(p, _)| *p == port) {
        Some((_, at)) => at.to_string(),
        None => match proxy.addresses.first() {
            Some(std::net::IpAddr::V6(ip)) => format!("[{ip}]:{port}"),
            Some(ip) => format!("{ip}:{port}"),
            None => {
                return Err(Failure::usage(format!(
                    "--proxy-url {url}: service '{host}' neither publishes port {port} nor has an \
                     address: publish it (ports: [\"127.0.0.1::{port}\"]) or give the proxy's address"
                )));
            }
        },
    };
    Ok(format!("{scheme}://{at}{path}"))
}

/// How long the check waits for a proxy that knows nothing of the service's running containers
/// yet (no such service, or none of them routed): they may have started moments ago (`docker compose up -d && docker reroll
/// web`), and a proxy takes them in on its own schedule (Traefik's provider throttle: 2 s).
const SETTLE: Duration = Duration::from_secs(10);
const SETTLE_POLL: Duration = Duration::from_millis(250);

/// Before anything changes: the proxy answers, knows the service, and routes to its running
/// containers. Otherwise every wait on it would time out, so the settings must be wrong, unless
/// the proxy only has not taken the containers in yet: that is waited for, up to [`SETTLE`].
pub async fn check_proxy(
    proxy: &Proxy,
    service: &str,
    containers: &[Container],
    reporter: &Reporter,
    interrupts: &mut Interrupts,
) -> Result<(), Failure> {
    let deadline = Instant::now() + SETTLE;
    let mut announced = false;
    loop {
        let not_yet = match judge_proxy(proxy, service, containers).await {
            Check::Ready => return Ok(()),
            Check::Wrong(failure) => return Err(failure),
            Check::NotYet(why) => why,
        };
        if Instant::now() >= deadline {
            return Err(Failure::usage(format!(
                "{not_yet} (asked for {}): check --proxy-service (or x-reroll proxy-service), \
                 and that the proxy reaches the containers' network",
                show(SETTLE)
            )));
        }
        if !announced {
            reporter.info(&format!(
                "{}; waiting up to {} for the proxy to take the running containers in",
                not_yet,
                show(SETTLE)
            ));
            announced = true;
        }
        tokio::time::sleep(SETTLE_POLL).await;
        if let Some(signal) = interrupts.pending() {
            return Err(Failure::new(
                signal.exit(),
                "stopped while waiting for the proxy: nothing was changed",
            ));
        }
    }
}

/// One look at the proxy before the rollout.
enum Check {
    Ready,
    /// Settings that cannot work: refused at once.
    Wrong(Failure),
    /// The proxy knows nothing of the running containers yet: may change by itself.
    NotYet(String),
}

async fn judge_proxy(proxy: &Proxy, service: &str, containers: &[Container]) -> Check {
    let serving: Vec<Target> = containers
        .iter()
        .filter(|c| c.is_running() && matches!(c.health, Health::Healthy | Health::None))
        .map(Container::target)
        .collect();
    let ids: Vec<String> = serving.iter().map(|t| t.id.clone()).collect();
    let routing = match proxy.observe(&serving).await {
        Ok(routing) => routing,
        // Traefik knows a service only while it has servers: none on a first deploy.
        Err(ProxyError::UnknownService { .. }) if serving.is_empty() => return Check::Ready,
        // Traefik also knows it only once its provider took a container in.
        Err(error @ ProxyError::UnknownService { .. }) => {
            return Check::NotYet(format!(
                "{error}, with {} container(s) of service '{service}' running",
                ids.len()
            ));
        }
        Err(error @ ProxyError::Unreachable(_)) => {
            return Check::Wrong(Failure::usage(format!(
                "{error}: check --proxy-url (or x-reroll proxy-url) and that the proxy runs"
            )));
        }
        Err(error) => {
            return Check::Wrong(Failure::usage(format!(
                "{error}: check --proxy and --proxy-url"
            )));
        }
    };
    if !ids.is_empty() && routing.still_routed(&ids).is_empty() {
        return Check::NotYet(format!(
            "{} routes to none of the {} running container(s) of service '{service}' ({})",
            proxy.describe(),
            ids.len(),
            routing.shown
        ));
    }
    Check::Ready
}

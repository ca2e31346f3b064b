//! The proxy a service's rollout asks: located (a service of the project names its container),
//! built from the settings, and checked before anything changes.

use crate::docker::{Docker, unreachable_or};
use crate::exit::Failure;
use crate::model::container::{Container, Health};
use crate::model::project::ServiceConfig;
use crate::model::routing::Target;
use crate::proxy::{Naming, Proxy, ProxyError};
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

/// Before anything changes: the proxy answers, knows the service, and routes to its running
/// containers. Otherwise every wait on it would time out, so the settings must be wrong.
pub async fn check_proxy(
    proxy: &Proxy,
    service: &str,
    containers: &[Container],
) -> Result<(), Failure> {
    let serving: Vec<Target> = containers
        .iter()
        .filter(|c| c.is_running() && matches!(c.health, Health::Healthy | Health::None))
        .map(Container::target)
        .collect();
    let ids: Vec<String> = serving.iter().map(|t| t.id.clone()).collect();
    let routing = match proxy.observe(&serving).await {
        Ok(routing) => routing,
        // Traefik knows a service only while it has servers: none on a first deploy.
        Err(ProxyError::UnknownService { .. }) if serving.is_empty() => return Ok(()),
        Err(error @ ProxyError::UnknownService { .. }) => {
            return Err(Failure::usage(format!(
                "{error}: give the proxy's name for service '{service}' with --proxy-service (or x-reroll proxy-service)"
            )));
        }
        Err(error @ ProxyError::Unreachable(_)) => {
            return Err(Failure::usage(format!(
                "{error}: check --proxy-url (or x-reroll proxy-url) and that the proxy runs"
            )));
        }
        Err(error) => {
            return Err(Failure::usage(format!(
                "{error}: check --proxy and --proxy-url"
            )));
        }
    };
    if !ids.is_empty() && routing.still_routed(&ids).is_empty() {
        return Err(Failure::usage(format!(
            "{} routes to none of the {} running container(s) of service '{service}' ({}): check \
             --proxy-service (or x-reroll proxy-service), and that the proxy reaches the containers' network",
            proxy.describe(),
            ids.len(),
            routing.shown
        )));
    }
    Ok(())
}

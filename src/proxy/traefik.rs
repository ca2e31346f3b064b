//! Traefik, through its API (`--api.insecure=true`, or a router to `api@internal`):
//! `GET /api/http/services/<name>` lists the servers a service balances over, as URLs, and the
//! status of each when Traefik health-checks them itself. A server absent from that list gets no
//! new request: the API's configuration and the routers are switched together.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Deserialize;

use super::ProxyError;
use super::http::{BaseUrl, get};
use crate::model::routing::{Route, Routing, Target};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Traefik {
    pub api: BaseUrl,
    /// The service's full name, provider included (`app@docker`).
    pub service: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Service {
    #[serde(default)]
    load_balancer: Option<LoadBalancer>,
    #[serde(default)]
    server_status: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct LoadBalancer {
    #[serde(default)]
    servers: Vec<Server>,
}

#[derive(Deserialize)]
struct Server {
    #[serde(default)]
    url: String,
}

#[derive(Deserialize)]
struct Named {
    name: String,
}

/// `app` → `app@docker`: names without a provider are the Docker provider's.
pub fn full_service_name(name: &str) -> String {
    if name.contains('@') {
        name.to_owned()
    } else {
        format!("{name}@docker")
    }
}

/// The service Traefik's Docker provider makes of a Compose service's labels: the one named in
/// `traefik.http.services.<name>.…`, else one named after the service and project. Several
/// named: the user has to say which (`Err` lists them).
pub fn service_from_labels(
    labels: &BTreeMap<String, String>,
    service: &str,
    project: &str,
) -> Result<String, Vec<String>> {
    let mut named: Vec<String> = labels
        .keys()
        .filter_map(|key| key.strip_prefix("traefik.http.services."))
        .filter_map(|rest| rest.split('.').next())
        .map(str::to_owned)
        .collect();
    named.dedup();
    match named.as_slice() {
        [] => Ok(format!("{service}-{project}@docker")),
        [one] => Ok(format!("{one}@docker")),
        _ => Err(named),
    }
}

impl Traefik {
    pub async fn observe(&self, targets: &[Target]) -> Result<Routing, ProxyError> {
        let path = format!("/api/http/services/{}", self.service);
        let response = get(&self.api, &path)
            .await
            .map_err(|why| ProxyError::Unreachable(format!("the Traefik API: {why}")))?;
        match response.status {
            200 => {}
            404 => {
                return Err(ProxyError::UnknownService {
                    name: self.service.clone(),
                    known: self.known_services().await,
                });
            }
            status => {
                return Err(ProxyError::Unexpected(format!(
                    "the Traefik API answered {status} to GET {path}"
                )));
            }
        }
        let service: Service = serde_json::from_str(&response.body).map_err(|e| {
            ProxyError::Unexpected(format!("cannot read the Traefik API's {path}: {e}"))
        })?;
        Ok(routing(&self.service, &service, targets))
    }

    async fn known_services(&self) -> Vec<String> {
        let Ok(response) = get(&self.api, "/api/http/services").await else {
            return Vec::new();
        };
        serde_json::from_str::<Vec<Named>>(&response.body)
            .map(|services| services.into_iter().map(|s| s.name).collect())
            .unwrap_or_default()
    }
}

fn routing(name: &str, service: &Service, targets: &[Target]) -> Routing {
    let servers: Vec<(&str, Option<IpAddr>)> = service
        .load_balancer
        .iter()
        .flat_map(|lb| &lb.servers)
        .map(|server| (server.url.as_str(), host_of(&server.url)))
        .collect();
    let up = |url: &str| {
        // Without Traefik's own health check there is no status: listed means in rotation.
        service
            .server_status
            .get(url)
            .is_none_or(|status| status == "UP")
    };
    let routes = targets
        .iter()
        .map(|target| {
            let serving = servers.iter().any(|(url, host)| {
                host.is_some_and(|ip| target.addresses.contains(&ip)) && up(url)
            });
            let route = if serving { Route::Serving } else { Route::Out };
            (target.id.clone(), route)
        })
        .collect();
    let listed: Vec<String> = servers
        .iter()
        .map(|(url, _)| match service.server_status.get(*url) {
            Some(status) => format!("{url} {status}"),
            None => (*url).to_owned(),
        })
        .collect();
    Routing {
        routes,
        shown: format!(
            "traefik service {name}: {}",
            if listed.is_empty() {
                "no servers".to_owned()
            } else {
                listed.join(", ")
            }
        ),
    }
}

/// The IP address in `http://172.20.0.3:80` or `http://[fd00::3]:80`.
fn host_of(url: &str) -> Option<IpAddr> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split('/').next()?;
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next()?.parse().ok();
    }
    authority.split(':').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(id: &str, ip: &str) -> Target {
        Target {
            id: id.into(),
            name: format!("p-app-{id}"),
            addresses: vec![ip.parse().unwrap()],
        }
    }

    #[test]
    fn listed_servers_serve_unless_traefik_marks_them_down() {
        let json = r#"{"loadBalancer": {"servers": [{"url": "http://172.20.0.3:80"},
            {"url": "http://172.20.0.4:80"}, {"url": "http://[fd00::5]:80"}]},
            "serverStatus": {"http://172.20.0.4:80": "DOWN"}, "status": "enabled"}"#;
        let service: Service = serde_json::from_str(json).unwrap();
        let targets = [
            target("a", "172.20.0.3"),
            target("b", "172.20.0.4"),
            target("c", "172.20.0.9"),
            target("d", "fd00::5"),
        ];
        let routing = routing("app@docker", &service, &targets);
        let routes: Vec<Route> = ["a", "b", "c", "d"].map(|id| routing.route(id)).to_vec();
        assert_eq!(
            routes,
            [Route::Serving, Route::Out, Route::Out, Route::Serving]
        );
        assert_eq!(
            routing.shown,
            "traefik service app@docker: http://172.20.0.3:80, http://172.20.0.4:80 DOWN, http://[fd00::5]:80"
        );
    }

    #[test]
    fn service_names_come_from_the_labels() {
        let labels = |keys: &[&str]| {
            keys.iter()
                .map(|k| (k.to_string(), "x".to_string()))
                .collect::<BTreeMap<_, _>>()
        };
        let one = labels(&[
            "traefik.http.services.web.loadbalancer.server.port",
            "traefik.http.routers.web.rule",
        ]);
        assert_eq!(
            service_from_labels(&one, "app", "shop"),
            Ok("web@docker".into())
        );
        let none = labels(&["traefik.http.routers.web.rule"]);
        assert_eq!(
            service_from_labels(&none, "app", "shop"),
            Ok("app-shop@docker".into())
        );
        let two = labels(&[
            "traefik.http.services.a.loadbalancer.server.port",
            "traefik.http.services.b.loadbalancer.server.port",
        ]);
        assert_eq!(
            service_from_labels(&two, "app", "shop"),
            Err(vec!["a".into(), "b".into()])
        );
        assert_eq!(full_service_name("web"), "web@docker");
        assert_eq!(full_service_name("web@file"), "web@file");
    }
}

//! The answers a proxy counted for each container, for the canary's proxy check: HAProxy's
//! `show stat` has `hrsp_1xx` … `hrsp_5xx` and `hrsp_other` per server. The counters run since
//! HAProxy started and a `server-template` slot can serve several containers over time, so the
//! caller takes differences over a window in which the slot keeps its container.

use std::collections::BTreeMap;

use super::haproxy::{Haproxy, parse_states};
use super::{Proxy, ProxyError};
use crate::model::routing::Target;

/// Answers and 5xx answers counted for one server so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Answered {
    pub total: u64,
    pub server_errors: u64,
}

impl Proxy {
    /// Whether this proxy counts answers per container.
    pub fn counts_answers(&self) -> bool {
        matches!(self, Proxy::Haproxy(_))
    }

    /// The answers counted so far for each of `targets`, by container id (a container with
    /// several servers adds them up), keyed also by the server's name so that a caller can tell
    /// a slot that changed hands.
    pub async fn answered(
        &self,
        targets: &[Target],
    ) -> Result<BTreeMap<String, Answered>, ProxyError> {
        match self {
            Proxy::Haproxy(haproxy) => haproxy.answered(targets).await,
            _ => Ok(BTreeMap::new()),
        }
    }
}

impl Haproxy {
    async fn answered(&self, targets: &[Target]) -> Result<BTreeMap<String, Answered>, ProxyError> {
        let stat = self
            .ask(&format!("show stat {} 4 -1", self.backend))
            .await?;
        let states = self
            .ask(&format!("show servers state {}", self.backend))
            .await?;
        let servers = parse_states(&states).map_err(ProxyError::Unexpected)?;
        let counts = parse_answers(&stat, &self.backend);
        let mut by_target = BTreeMap::new();
        for target in targets {
            for (server, answered) in &counts {
                let address = servers
                    .iter()
                    .find(|s| &s.name == server)
                    .and_then(|s| s.address);
                if address.is_some_and(|a| target.addresses.contains(&a)) {
                    let sum: &mut Answered = by_target
                        .entry(format!("{}@{server}", target.id))
                        .or_default();
                    sum.total += answered.total;
                    sum.server_errors += answered.server_errors;
                }
            }
        }
        Ok(by_target)
    }
}

/// The `hrsp_*` counters of each server of `backend`, from `show stat`'s CSV.
fn parse_answers(text: &str, backend: &str) -> BTreeMap<String, Answered> {
    let mut lines = text.lines();
    let Some(header) = lines.next().and_then(|l| l.strip_prefix("# ")) else {
        return BTreeMap::new();
    };
    let columns: Vec<&str> = header.split(',').collect();
    let at = |name: &str| columns.iter().position(|c| *c == name);
    let (Some(proxy), Some(server)) = (at("pxname"), at("svname")) else {
        return BTreeMap::new();
    };
    let classes: Vec<Option<usize>> = [
        "hrsp_1xx",
        "hrsp_2xx",
        "hrsp_3xx",
        "hrsp_4xx",
        "hrsp_5xx",
        "hrsp_other",
    ]
    .iter()
    .map(|name| at(name))
    .collect();
    lines
        .map(|line| line.split(',').collect::<Vec<_>>())
        .filter(|fields| fields.get(proxy) == Some(&backend))
        .filter(|fields| !matches!(fields.get(server), Some(&"BACKEND" | &"FRONTEND")))
        .filter_map(|fields| {
            let count = |index: Option<usize>| -> u64 {
                index
                    .and_then(|i| fields.get(i))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0)
            };
            let answered = Answered {
                total: classes.iter().map(|&c| count(c)).sum(),
                server_errors: count(classes[4]),
            };
            Some((fields.get(server)?.to_string(), answered))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_each_servers_answers_and_its_5xx() {
        let stat = "# pxname,svname,qcur,scur,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other\n\
                    app,app1,0,0,0,90,0,0,10,0\n\
                    app,app2,0,1,0,50,2,1,0,0\n\
                    app,BACKEND,0,1,0,140,2,1,10,0\n\
                    web,app1,0,0,0,7,0,0,7,0\n";
        let counts = parse_answers(stat, "app");
        assert_eq!(counts.len(), 2);
        assert_eq!(
            counts["app1"],
            Answered {
                total: 100,
                server_errors: 10
            }
        );
        assert_eq!(
            counts["app2"],
            Answered {
                total: 53,
                server_errors: 0
            }
        );
    }
}

//! What a reverse proxy does with one container, as its adapter read it: the machine waits on
//! these instead of guessing the proxy's timing with sleeps.

use std::collections::BTreeMap;
use std::net::IpAddr;

/// One container as a proxy knows it: by its addresses on the container networks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub id: String,
    pub name: String,
    pub addresses: Vec<IpAddr>,
}

/// Whether a proxy sends requests to a container.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// In rotation: new requests go to it.
    Serving,
    /// Out of rotation, but requests it was given are still in flight (where the proxy tells).
    Finishing { in_flight: u32 },
    /// Out of rotation, nothing in flight that the proxy knows of.
    Out,
}

/// What the proxy showed for the watched containers, and the same as a person reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Routing {
    pub routes: BTreeMap<String, Route>,
    /// E.g. `traefik service app@docker: http://172.20.0.3:80 UP`: for messages.
    pub shown: String,
}

impl Routing {
    pub fn route(&self, id: &str) -> Route {
        self.routes.get(id).copied().unwrap_or(Route::Out)
    }

    /// Every one of `ids` is in rotation.
    pub fn serves_all(&self, ids: &[String]) -> bool {
        ids.iter().all(|id| self.route(id) == Route::Serving)
    }

    /// The ones of `ids` the proxy still sends to or still has requests in flight with.
    pub fn still_routed(&self, ids: &[String]) -> Vec<String> {
        ids.iter()
            .filter(|id| self.route(id) != Route::Out)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_containers_are_out_and_finishing_ones_still_routed() {
        let routing = Routing {
            routes: BTreeMap::from([
                ("a".to_owned(), Route::Serving),
                ("b".to_owned(), Route::Finishing { in_flight: 2 }),
            ]),
            shown: String::new(),
        };
        let ids = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(routing.serves_all(&ids(&["a"])));
        assert!(!routing.serves_all(&ids(&["a", "b"])));
        assert_eq!(
            routing.still_routed(&ids(&["a", "b", "c"])),
            ids(&["a", "b"])
        );
    }
}

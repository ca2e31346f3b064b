//! The order of a stack rollout: a service goes after the services it `depends_on`, and ties go
//! by name, so the same project always rolls in the same order.

use std::collections::{BTreeMap, BTreeSet};

/// `depends_on` of every service of the project → the order of `selected`. Dependencies outside
/// `selected` still order it (a → b → c with only a and c selected: c first). A cycle is an
/// error naming the services on it.
pub fn rollout_order(
    depends_on: &BTreeMap<String, Vec<String>>,
    selected: &BTreeSet<String>,
) -> Result<Vec<String>, String> {
    // Kahn's algorithm over the whole project, smallest name first among the ready ones.
    let mut waiting_on: BTreeMap<&str, BTreeSet<&str>> = depends_on
        .iter()
        .map(|(service, deps)| {
            let known = deps
                .iter()
                .map(String::as_str)
                .filter(|dep| depends_on.contains_key(*dep) && *dep != service.as_str());
            (service.as_str(), known.collect())
        })
        .collect();
    let mut order = Vec::new();
    while !waiting_on.is_empty() {
        let Some(ready) = waiting_on
            .iter()
            .find(|(_, deps)| deps.is_empty())
            .map(|(service, _)| *service)
        else {
            let cycle: Vec<&str> = waiting_on.keys().copied().collect();
            return Err(format!(
                "depends_on has a cycle among services {}: break it in the compose file",
                cycle.join(", ")
            ));
        };
        waiting_on.remove(ready);
        for deps in waiting_on.values_mut() {
            deps.remove(ready);
        }
        if selected.contains(ready) {
            order.push(ready.to_owned());
        }
    }
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `"a:b,c d"` = a depends on b and c; d depends on nothing.
    fn graph(spec: &str) -> BTreeMap<String, Vec<String>> {
        spec.split_whitespace()
            .map(|entry| {
                let (name, deps) = entry.split_once(':').unwrap_or((entry, ""));
                let deps = deps.split(',').filter(|d| !d.is_empty()).map(String::from);
                (name.to_owned(), deps.collect())
            })
            .collect()
    }

    #[test]
    fn orders_dependencies_first_then_by_name() {
        let cases = [
            ("web api db", "api db web", "api db web"),
            ("web:api api:db db", "api db web", "db api web"),
            (
                "web:db worker:db db cache",
                "cache db web worker",
                "cache db web worker",
            ),
            // Only some selected: the unselected one still orders the others.
            ("a:b b:c c", "a c", "c a"),
            // A dependency that is not a service of the project (inactive profile) is ignored.
            ("web:ghost", "web", "web"),
        ];
        for (spec, selected, expected) in cases {
            let selected = selected.split_whitespace().map(String::from).collect();
            let order = rollout_order(&graph(spec), &selected).unwrap();
            assert_eq!(order.join(" "), expected, "{spec}");
        }
    }

    #[test]
    fn a_cycle_is_an_error_naming_it() {
        let selected = ["a", "b", "c", "d"].map(String::from).into();
        let error = rollout_order(&graph("a:b b:c c:a d"), &selected).unwrap_err();
        assert!(error.contains("cycle among services a, b, c"), "{error}");
        assert!(error.contains("break it"), "{error}");
    }
}

//! The rollout's data model, owned by no adapter: what the planner, the machine and the report
//! decide on and speak of. Adapters (`docker`, `proxy`) translate what they read into these types.

pub mod canary;
pub mod container;
pub mod hook;
pub mod host;
pub mod lock_holder;
pub mod orphan;
pub mod policy;
pub mod project;
pub mod routing;
pub mod signal;
pub mod swarm;

//! The rollout's data model, owned by no adapter: what the planner and the machine decide on.
//! Adapters (`docker`, `proxy`) translate what they read into these types.

pub mod routing;

//! The rollout: a sans-IO state machine that decides (`machine`), and a thin async driver that
//! carries its actions out against Docker and feeds back what it observed (`driver`).

pub mod driver;
pub mod machine;
pub mod pre_stop_hooks;
pub mod settings;

pub use machine::{Action, Input, Machine, Outcome, Phase, Status};
pub use settings::Settings;

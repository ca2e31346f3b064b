//! The signals that stop a run, and the exit code each stands for.

use crate::exit::Exit;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    Interrupt,
    Terminate,
    /// The terminal went away (an SSH session dropped, a CI runner closed it).
    HangUp,
}

impl Signal {
    /// The exit code of a run this signal stopped.
    pub fn exit(self) -> Exit {
        match self {
            Signal::Interrupt => Exit::Interrupted,
            Signal::Terminate => Exit::Terminated,
            Signal::HangUp => Exit::HungUp,
        }
    }
}

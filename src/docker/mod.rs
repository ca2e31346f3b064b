//! Everything that talks to Docker: one command builder, and parsers for what Docker answers.

pub mod command;
pub mod compose;
pub mod container;
pub mod events;
pub mod globals;
pub mod image;
pub mod service;

pub use command::{Docker, DockerError};

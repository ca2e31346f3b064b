//! Progressive delivery (`--steps`, `--probe`, `--bake`, and the `promote`, `abort`, `status` and
//! `rollback` commands): the settings and their refusals (`args`), the steps as batches
//! (`steps`), the checks' I/O (`probe`), the files another process talks through (`control`),
//! and the commands (`commands`). The decisions live in `rollout::machine::canary`.

pub mod args;
pub mod commands;
pub mod control;
pub mod history;
pub mod probe;
pub mod steps;

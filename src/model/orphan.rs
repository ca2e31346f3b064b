//! What becomes of a project's orphans (containers of services the file no longer has).

/// What becomes of the orphans, as the report says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fate {
    /// No `--remove-orphans`.
    LeftAlone,
    /// `--remove-orphans --dry-run`.
    WouldBeRemoved,
    /// `--remove-orphans`, but a rollout failed or a signal came: nothing more is changed.
    KeptAfterFailure,
    Removed,
    /// `docker stop` or `docker rm` failed.
    NotRemoved,
}

impl Fate {
    pub fn describe(self) -> &'static str {
        match self {
            Fate::LeftAlone => "left alone; --remove-orphans removes it",
            Fate::WouldBeRemoved => "would be stopped and removed after the rollouts",
            Fate::KeptAfterFailure => "left alone, as the rollouts did not all finish",
            Fate::Removed => "stopped and removed",
            Fate::NotRemoved => "could not be removed",
        }
    }
}

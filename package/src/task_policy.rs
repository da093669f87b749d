//! How a manifest task behaves around its schedule: what happens to ticks
//! missed while no host was up (`missed`), whether a tick may start while
//! the previous run still runs (`concurrency`), and the shortest time
//! between two runs (`min_interval_secs`, the base rate limit against a
//! cron that fires too often). The fields live on
//! [`Task`](crate::manifest::Task); their rules live here.

use serde::{Deserialize, Serialize};

use crate::manifest::{ManifestError, Task};

/// `missed`: ticks that passed while no host ran the task.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Missed {
    /// Forget them; the next tick runs as usual.
    #[default]
    Skip,
    /// Run once at start-up for the latest missed tick, however many passed.
    RunOnce,
}

/// `concurrency`: a tick that comes while the previous run still runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Concurrency {
    /// Record the tick `skipped_overlap` and do not run it.
    #[default]
    Skip,
    /// Wait for the running one to finish, then run (one waiting tick per
    /// host at most; further ticks are skipped).
    Queue,
}

/// Longest `min_interval_secs`: one day.
pub const MAX_MIN_INTERVAL_SECS: u32 = 86_400;

/// Checks the policy fields of `tasks[index]`.
pub fn validate(index: usize, task: &Task) -> Result<(), ManifestError> {
    if task.min_interval_secs > MAX_MIN_INTERVAL_SECS {
        return Err(ManifestError::invalid(
            format!("tasks[{index}].min_interval_secs"),
            format!(
                "{} is out of range: expected 0 (no limit) to {MAX_MIN_INTERVAL_SECS} seconds",
                task.min_interval_secs
            ),
        ));
    }
    Ok(())
}

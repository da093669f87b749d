//! `tasks` in `config.json`: how long the run history of scheduled tasks is
//! kept (by age and by count per task), and the host id the scheduler
//! stamps on the runs and claims it makes (`server.host_id`, resolved
//! here so there is one rule for it).

use serde::{Deserialize, Serialize};

/// `tasks`: pruning of `plinth_task_runs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TaskHistory {
    /// Runs older than this many days are deleted.
    pub keep_days: u32,
    /// Per task, only this many of the newest runs are kept.
    pub keep_per_task: u32,
}

impl Default for TaskHistory {
    fn default() -> Self {
        Self {
            keep_days: 30,
            keep_per_task: 1000,
        }
    }
}

impl TaskHistory {
    /// The first key that is out of range, with why.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if self.keep_days < 1 {
            return Err(("tasks.keep_days", "must be at least 1 (day)".into()));
        }
        if self.keep_per_task < 10 {
            return Err((
                "tasks.keep_per_task",
                format!(
                    "{} is too small: keep at least 10 runs per task",
                    self.keep_per_task
                ),
            ));
        }
        Ok(())
    }
}

/// The id this host records on task runs: `server.host_id` when set,
/// otherwise `<hostname>:<pid>` (unique per process, so two hosts on one
/// machine differ too).
pub fn resolve_host_id(configured: &str) -> String {
    if !configured.trim().is_empty() {
        return configured.trim().to_owned();
    }
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".to_owned());
    format!("{hostname}:{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configured_id_wins_and_the_default_names_the_process() {
        assert_eq!(resolve_host_id(" web-1 "), "web-1");
        let id = resolve_host_id("");
        assert!(id.ends_with(&format!(":{}", std::process::id())), "{id}");
        assert!(TaskHistory::default().check().is_ok());
        let short = TaskHistory {
            keep_per_task: 3,
            ..TaskHistory::default()
        };
        assert_eq!(short.check().map_err(|e| e.0), Err("tasks.keep_per_task"));
    }
}

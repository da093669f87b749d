//! Runs the tasks plugins declare in their manifests (`[[tasks]]`) on their
//! cron schedules, and records every run in `plinth_task_runs`.
//!
//! The schedule is re-read from the registry every second, so installing,
//! upgrading or removing a plugin changes what runs without a restart. A
//! task still running when its next time comes is skipped for that time, not
//! run twice.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::Host;
use crate::db::now_ms;
use crate::db::store::{self, TaskRun};
use crate::runtime::LoadedComponent;

/// Identifies one scheduled task of one plugin version.
type TaskKey = (String, String, String);

#[derive(Debug, Clone, Default)]
pub struct Scheduler {
    running: Arc<Mutex<HashSet<TaskKey>>>,
}

impl Scheduler {
    pub fn new() -> Self {
        Self::default()
    }

    /// Loops until aborted.
    pub async fn run(self, host: Host) {
        let mut next: HashMap<TaskKey, DateTime<Utc>> = HashMap::new();
        let mut interval = tokio::time::interval(Duration::from_secs(1));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            interval.tick().await;
            let now = Utc::now();
            let mut seen = HashSet::new();
            for plugin in host.registry.all() {
                for task in &plugin.manifest.tasks {
                    let key = (
                        plugin.name().to_owned(),
                        plugin.version(),
                        task.name.clone(),
                    );
                    seen.insert(key.clone());
                    let Ok(schedule) = cron::Schedule::from_str(&task.cron) else {
                        continue;
                    };
                    let due = *next
                        .entry(key.clone())
                        .or_insert_with(|| schedule.after(&now).next().unwrap_or(now));
                    if due > now {
                        continue;
                    }
                    if let Some(following) = schedule.after(&now).next() {
                        next.insert(key.clone(), following);
                    }
                    let timeout = Duration::from_secs(u64::from(task.timeout_secs));
                    self.spawn_run(&host, plugin.component.clone(), key, timeout);
                }
            }
            next.retain(|key, _| seen.contains(key));
        }
    }

    /// Runs a task now, unless it is already running. Returns whether it
    /// was started.
    pub fn spawn_run(
        &self,
        host: &Host,
        component: LoadedComponent,
        key: TaskKey,
        timeout: Duration,
    ) -> bool {
        let LoadedComponent::Plinth(component) = component else {
            return false;
        };
        {
            let Ok(mut running) = self.running.lock() else {
                return false;
            };
            if !running.insert(key.clone()) {
                tracing::warn!(plugin = %key.0, task = %key.2, "task still running; this run is skipped");
                return false;
            }
        }
        let running = self.running.clone();
        let db = host.db.clone();
        tokio::spawn(async move {
            let (plugin, version, task) = key.clone();
            let started_at = now_ms();
            let result = component.run_task(&task, timeout).await;
            let (outcome, message) = match result {
                Ok(Ok(())) => ("ok", None),
                Ok(Err(message)) => ("error", Some(message)),
                Err(error) => ("crashed", Some(error.to_string())),
            };
            if outcome == "ok" {
                tracing::info!(%plugin, %task, "task finished");
            } else {
                tracing::warn!(%plugin, %task, outcome, message = message.as_deref().unwrap_or(""), "task failed");
            }
            let run = TaskRun {
                plugin,
                version,
                task,
                started_at,
                finished_at: Some(now_ms()),
                outcome: outcome.into(),
                message,
            };
            if let Err(e) = store::record_task_run(&db, &run).await {
                tracing::error!(error = %e, "cannot record a task run");
            }
            if let Ok(mut running) = running.lock() {
                running.remove(&key);
            }
        });
        true
    }
}

//! Runs the tasks plugins declare in their manifests (`[[tasks]]`) on their
//! cron schedules, each tick on exactly one of the hosts sharing the
//! database, and records every tick in `plinth_task_runs`.
//!
//! Every second each host looks at the serving plugins (so installing,
//! upgrading or removing a plugin changes what runs without a restart) and,
//! for each task whose tick has come and that is not paused, tries to claim
//! the tick ([`task_runs::claim`]): the unique key lets one host win, the
//! others drop it. The winner then applies the task's `concurrency`: while
//! another run of the task is live (on any host, judged by leases in the
//! database clock) the tick is recorded `skipped_overlap`, or waits for
//! `queue`. A run is cut off at its timeout (`timed_out`); a run whose plugin
//! was removed or disabled meanwhile is stopped (`cancelled`); an upgraded
//! plugin's run finishes on the version that started it. Rows a dead host
//! left `running` become `interrupted` at start-up (own rows; on SQLite,
//! which one host uses, all) and once their lease has passed (any host).

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use plinth_package::manifest::Task;
use plinth_package::task_policy::{Concurrency, Missed};
use tokio::sync::Notify;

use crate::Host;
use crate::db::task_runs::{self, Outcome, Tick};
use crate::db::{Db, DbError, Dialect};
use crate::events::EventBus;
use crate::registry::LoadedPlugin;
use crate::runtime::{CallError, LoadedComponent, PlinthComponent};

/// Added to a task's timeout for its lease, so a run that is being cut off
/// is not yet taken for dead.
const LEASE_GRACE: Duration = Duration::from_secs(30);

/// How often a queued tick looks again whether the run before it finished.
const QUEUE_POLL: Duration = Duration::from_millis(200);

/// How often the history is pruned and expired leases are swept.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// Ticks looked at when searching for the latest missed one; beyond this
/// (a long downtime of a very frequent task) the search stops there.
const MISSED_SEARCH_LIMIT: usize = 100_000;

/// (plugin, task): what runs at most once at a time on one host.
type TaskKey = (String, String);

/// Why a run could not be started by hand.
#[derive(Debug, thiserror::Error)]
pub enum RunNowError {
    #[error("no serving plugin {plugin} declares a task {task}")]
    NotFound { plugin: String, task: String },
    #[error("task {task} of {plugin} is running; wait for it to finish")]
    AlreadyRunning { plugin: String, task: String },
    #[error("plugin {0} is a wasi-http component, which has no tasks")]
    NoTasks(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// A tick this host has claimed and not finished yet.
#[derive(Debug)]
struct InFlight {
    scheduled_at: i64,
    /// Notified to stop the run (its plugin is gone).
    cancel: Arc<Notify>,
}

#[derive(Debug, Clone)]
pub struct Scheduler {
    host_id: Arc<str>,
    /// Where a failed run is announced (`plinth.task.failed`).
    events: EventBus,
    /// Per task, the running tick and at most one queued behind it.
    in_flight: Arc<Mutex<HashMap<TaskKey, Vec<InFlight>>>>,
}

/// One tick of one task, claimed or about to be.
struct Job {
    tick: Tick,
    version: String,
    component: Arc<PlinthComponent>,
    timeout: Duration,
    concurrency: Concurrency,
}

impl Job {
    fn new(plugin: &LoadedPlugin, task: &Task, scheduled_at: i64) -> Option<Self> {
        let LoadedComponent::Plinth(component) = plugin.component.clone() else {
            return None;
        };
        Some(Self {
            tick: Tick {
                plugin: plugin.name().to_owned(),
                task: task.name.clone(),
                scheduled_at,
            },
            version: plugin.version(),
            component,
            timeout: Duration::from_secs(u64::from(task.timeout_secs)),
            concurrency: task.concurrency,
        })
    }

    fn key(&self) -> TaskKey {
        (self.tick.plugin.clone(), self.tick.task.clone())
    }

    fn lease_ms(&self) -> i64 {
        (self.timeout + LEASE_GRACE).as_millis() as i64
    }
}

impl Scheduler {
    /// A scheduler stamping `host_id` on the runs it claims.
    pub fn new(host_id: impl Into<String>, events: EventBus) -> Self {
        Self {
            host_id: Arc::from(host_id.into()),
            events,
            in_flight: Arc::default(),
        }
    }

    pub fn host_id(&self) -> &str {
        &self.host_id
    }

    /// Whether this host is running (or has queued) the task.
    pub fn is_running_here(&self, plugin: &str, task: &str) -> bool {
        self.in_flight
            .lock()
            .is_ok_and(|m| m.contains_key(&(plugin.to_owned(), task.to_owned())))
    }

    /// Marks the runs a stopped host left `running` as `interrupted`.
    /// Called at start-up before the scheduler or any caller can start a
    /// run, so it never catches one of this life's runs.
    pub async fn settle_orphans(&self, db: &Db) {
        match self
            .sweep_orphans(db, db.dialect() == Dialect::Sqlite)
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::warn!(
                runs = n,
                "task runs left running by a stopped host marked interrupted"
            ),
            Err(e) => tracing::error!(error = %e, "cannot mark orphaned task runs"),
        }
    }

    /// Loops until aborted.
    pub async fn run(self, host: Host) {
        let db = host.db.clone();
        let mut next: HashMap<TaskKey, DateTime<Utc>> = HashMap::new();
        let mut last_sweep = tokio::time::Instant::now();
        loop {
            sleep_to_next_second().await;
            let now = Utc::now();
            if last_sweep.elapsed() >= SWEEP_EVERY {
                last_sweep = tokio::time::Instant::now();
                self.sweep(&host).await;
            }
            let paused = match task_runs::paused(&db).await {
                Ok(paused) => paused,
                Err(e) => {
                    // Without the flags, running could defy a pause.
                    tracing::warn!(error = %e, "cannot read paused tasks; skipping this second");
                    continue;
                }
            };
            let mut seen = Vec::new();
            for plugin in host.registry.all() {
                for task in &plugin.manifest.tasks {
                    let key = (plugin.name().to_owned(), task.name.clone());
                    seen.push(key.clone());
                    let Ok(schedule) = cron::Schedule::from_str(&task.cron) else {
                        continue;
                    };
                    let is_paused = paused.contains(&key);
                    let due = match next.get(&key) {
                        Some(due) => *due,
                        None => {
                            let first = schedule.after(&now).next().unwrap_or(now);
                            next.insert(key.clone(), first);
                            if task.missed == Missed::RunOnce && !is_paused {
                                self.spawn_missed(&db, &plugin, task, &schedule, now);
                            }
                            continue;
                        }
                    };
                    if due > now {
                        continue;
                    }
                    if let Some(following) = schedule.after(&now).next() {
                        next.insert(key.clone(), following);
                    }
                    if is_paused {
                        continue;
                    }
                    if let Some(job) = Job::new(&plugin, task, due.timestamp_millis()) {
                        let min_interval = i64::from(task.min_interval_secs) * 1000;
                        tokio::spawn(self.clone().scheduled(db.clone(), job, min_interval));
                    }
                }
            }
            next.retain(|key, _| seen.contains(key));
            self.cancel_gone(&host);
        }
    }

    /// Runs a task now, outside its schedule (and whether or not it is
    /// paused), unless a run of it is live on any host. Returns the
    /// run's `scheduled_at` (the database time it was asked for).
    pub async fn run_now(&self, host: &Host, plugin: &str, task: &str) -> Result<i64, RunNowError> {
        let not_found = || RunNowError::NotFound {
            plugin: plugin.to_owned(),
            task: task.to_owned(),
        };
        let running = || RunNowError::AlreadyRunning {
            plugin: plugin.to_owned(),
            task: task.to_owned(),
        };
        let loaded = host.registry.by_name(plugin).ok_or_else(not_found)?;
        let spec = loaded
            .manifest
            .tasks
            .iter()
            .find(|t| t.name == task)
            .ok_or_else(not_found)?;
        if self.is_running_here(plugin, task)
            || task_runs::is_running(&host.db, plugin, task).await?
        {
            return Err(running());
        }
        let at = task_runs::database_now(&host.db).await?;
        let job = Job::new(&loaded, spec, at).ok_or_else(|| RunNowError::NoTasks(plugin.into()))?;
        if !task_runs::claim(
            &host.db,
            &job.tick,
            &job.version,
            &self.host_id,
            job.lease_ms(),
        )
        .await?
        {
            return Err(running());
        }
        tokio::spawn(self.clone().claimed(host.db.clone(), job));
        Ok(at)
    }

    /// Marks orphaned `running` rows `interrupted`: expired leases, this
    /// host's own rows, and with `everyone` every running row.
    async fn sweep_orphans(&self, db: &Db, everyone: bool) -> Result<u64, DbError> {
        // One host per SQLite file: nothing else can be running them.
        let whose = if everyone { None } else { Some(&*self.host_id) };
        task_runs::mark_interrupted(db, whose, true).await
    }

    /// The minute's housekeeping: expired leases and old history.
    async fn sweep(&self, host: &Host) {
        if let Err(e) = task_runs::mark_interrupted(&host.db, None, false).await {
            tracing::warn!(error = %e, "cannot sweep expired task leases");
        }
        let keep = &host.config.tasks;
        let max_age = i64::from(keep.keep_days) * 86_400_000;
        match task_runs::prune(&host.db, max_age, i64::from(keep.keep_per_task)).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(runs = n, "old task runs pruned"),
            Err(e) => tracing::warn!(error = %e, "cannot prune task runs"),
        }
    }

    /// `missed = "run-once"`: claims the latest tick between the last one
    /// recorded and now, if any passed while no host was up.
    fn spawn_missed(
        &self,
        db: &Db,
        plugin: &LoadedPlugin,
        task: &Task,
        schedule: &cron::Schedule,
        now: DateTime<Utc>,
    ) {
        let (db, this) = (db.clone(), self.clone());
        let schedule = schedule.clone();
        let Some(job) = Job::new(plugin, task, 0) else {
            return;
        };
        tokio::spawn(async move {
            let last = match task_runs::last_scheduled(&db, &job.tick.plugin, &job.tick.task).await
            {
                Ok(Some(last)) => last,
                // Never ran: nothing was missed.
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot look for missed ticks");
                    return;
                }
            };
            let Some(last) = Utc.timestamp_millis_opt(last).single() else {
                return;
            };
            let missed = schedule
                .after(&last)
                .take(MISSED_SEARCH_LIMIT)
                .take_while(|t| *t < now)
                .last();
            if let Some(missed) = missed {
                tracing::info!(plugin = %job.tick.plugin, task = %job.tick.task, tick = %missed, "running the latest tick missed while down");
                let job = Job {
                    tick: Tick {
                        scheduled_at: missed.timestamp_millis(),
                        ..job.tick
                    },
                    ..job
                };
                this.scheduled(db, job, 0).await;
            }
        });
    }

    /// A scheduled tick: honours `min_interval`, claims, then runs.
    async fn scheduled(self, db: Db, job: Job, min_interval_ms: i64) {
        if min_interval_ms > 0 {
            let last = task_runs::last_started(&db, &job.tick.plugin, &job.tick.task).await;
            let now = task_runs::database_now(&db).await;
            if let (Ok(Some(last)), Ok(now)) = (last, now)
                && now - last < min_interval_ms
            {
                tracing::debug!(plugin = %job.tick.plugin, task = %job.tick.task, "tick within min_interval_secs of the last run; not run");
                return;
            }
        }
        match task_runs::claim(&db, &job.tick, &job.version, &self.host_id, job.lease_ms()).await {
            Ok(true) => self.claimed(db, job).await,
            Ok(false) => {} // another host has this tick
            Err(e) => {
                tracing::warn!(plugin = %job.tick.plugin, task = %job.tick.task, error = %e, "cannot claim a task tick")
            }
        }
    }

    /// Runs a tick this host has claimed, recording how it ended.
    async fn claimed(self, db: Db, job: Job) {
        let key = job.key();
        let cancel = Arc::new(Notify::new());
        let Some(queued) = self.enter(&key, &job, &cancel) else {
            let message = "the previous run of this task was still running here";
            self.finish(&db, &job, Outcome::SkippedOverlap, Some(message))
                .await;
            return;
        };
        let (outcome, message) = match self.wait_or_skip(&db, &job, &cancel).await {
            Some((outcome, message)) => (outcome, Some(message)),
            None => {
                if queued && let Err(e) = task_runs::start(&db, &job.tick, job.lease_ms()).await {
                    tracing::warn!(error = %e, "cannot renew a task lease");
                }
                tokio::select! {
                    result = tokio::time::timeout(job.timeout, job.component.run_task(&job.tick.task, job.timeout)) => judge(result, job.timeout),
                    () = cancel.notified() => (Outcome::Cancelled, Some(cancelled(&job))),
                }
            }
        };
        self.finish(&db, &job, outcome, message.as_deref()).await;
        self.leave(&key, job.tick.scheduled_at);
    }

    /// With `Some`, the tick is not run and ends so; with `None` it may run.
    /// The database decides, as the runs of other hosts are only there.
    async fn wait_or_skip(&self, db: &Db, job: &Job, cancel: &Notify) -> Option<(Outcome, String)> {
        let failed = |e: DbError| {
            Some((
                Outcome::Failed,
                format!("cannot check for a running run: {e}"),
            ))
        };
        if job.concurrency == Concurrency::Skip {
            // Only an earlier tick counts: two hosts claiming neighbouring
            // ticks at once must not both skip.
            return match task_runs::another_running(db, &job.tick, true).await {
                Ok(false) => None,
                Ok(true) => Some((
                    Outcome::SkippedOverlap,
                    "the previous run of this task was still running on another host".into(),
                )),
                Err(e) => failed(e),
            };
        }
        loop {
            match task_runs::another_running(db, &job.tick, true).await {
                Ok(false) => return None,
                Ok(true) => {}
                Err(e) => return failed(e),
            }
            // Keep the lease of the waiting tick alive meanwhile.
            let _ = task_runs::start(db, &job.tick, job.lease_ms()).await;
            tokio::select! {
                () = tokio::time::sleep(QUEUE_POLL) => {}
                () = cancel.notified() => return Some((Outcome::Cancelled, cancelled(job))),
            }
        }
    }

    async fn finish(&self, db: &Db, job: &Job, outcome: Outcome, message: Option<&str>) {
        let (plugin, task) = (&job.tick.plugin, &job.tick.task);
        match outcome {
            Outcome::Ok => tracing::info!(%plugin, %task, "task finished"),
            Outcome::SkippedOverlap => {
                tracing::info!(%plugin, %task, "task tick skipped: still running")
            }
            other => {
                tracing::warn!(%plugin, %task, outcome = other.as_str(), message = message.unwrap_or(""), "task did not finish")
            }
        }
        if let Err(e) = task_runs::finish(db, &job.tick, outcome, message).await {
            tracing::error!(%plugin, %task, error = %e, "cannot record a task run");
        }
        if matches!(outcome, Outcome::Failed | Outcome::TimedOut) {
            let payload = serde_json::json!({
                "plugin": plugin,
                "version": job.version,
                "task": task,
                "scheduled_at": job.tick.scheduled_at,
                "outcome": outcome.as_str(),
                "message": message.unwrap_or(""),
            });
            crate::events::publish_host_event(&self.events, "plinth.task.failed", &payload).await;
        }
    }

    /// Takes a place for the tick on this host: `Some(false)` first in
    /// line, `Some(true)` waiting behind the one running here (queue, one
    /// waiting tick per host), `None` when there is no place.
    fn enter(&self, key: &TaskKey, job: &Job, cancel: &Arc<Notify>) -> Option<bool> {
        let mut map = self.in_flight.lock().ok()?;
        let ticks = map.entry(key.clone()).or_default();
        let queue = job.concurrency == Concurrency::Queue;
        let has_place = ticks.is_empty() || (queue && ticks.len() == 1);
        if !has_place {
            return None;
        }
        ticks.push(InFlight {
            scheduled_at: job.tick.scheduled_at,
            cancel: cancel.clone(),
        });
        Some(ticks.len() > 1)
    }

    fn leave(&self, key: &TaskKey, scheduled_at: i64) {
        let Ok(mut map) = self.in_flight.lock() else {
            return;
        };
        if let Some(ticks) = map.get_mut(key) {
            ticks.retain(|f| f.scheduled_at != scheduled_at);
            if ticks.is_empty() {
                map.remove(key);
            }
        }
    }

    /// Stops the runs of plugins that no longer serve (removed, disabled).
    fn cancel_gone(&self, host: &Host) {
        let Ok(map) = self.in_flight.lock() else {
            return;
        };
        for ((plugin, _), ticks) in map.iter() {
            if host.registry.by_name(plugin).is_none() {
                for flight in ticks {
                    flight.cancel.notify_one();
                }
            }
        }
    }
}

fn cancelled(job: &Job) -> String {
    format!(
        "plugin {} was removed or disabled while the task ran",
        job.tick.plugin
    )
}

/// The outcome of a finished call.
fn judge(
    result: Result<Result<Result<(), String>, CallError>, tokio::time::error::Elapsed>,
    timeout: Duration,
) -> (Outcome, Option<String>) {
    match result {
        Ok(Ok(Ok(()))) => (Outcome::Ok, None),
        Ok(Ok(Err(message))) => (Outcome::Failed, Some(message)),
        Ok(Err(e @ (CallError::CpuBudget { .. } | CallError::Timeout { .. }))) => {
            (Outcome::TimedOut, Some(e.to_string()))
        }
        Ok(Err(e)) => (Outcome::Failed, Some(e.to_string())),
        Err(_) => (
            Outcome::TimedOut,
            Some(format!("cut off at its timeout of {} s", timeout.as_secs())),
        ),
    }
}

/// Sleeps to just after the next whole second, plus up to 50 ms of jitter
/// so hosts sharing a database take turns winning claims instead of the
/// one whose clock runs ahead always winning.
async fn sleep_to_next_second() {
    let now = Utc::now();
    let into_second = now.timestamp_subsec_millis();
    let jitter = rand::random_range(0..50u64);
    let wait = 1000 - u64::from(into_second.min(999)) + 5 + jitter;
    tokio::time::sleep(Duration::from_millis(wait)).await;
}

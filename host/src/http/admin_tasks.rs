//! `/api/admin/tasks…`: the operator's view of scheduled tasks (schedule,
//! next run, paused flag, last outcome, run history with paging) and the
//! three things they may do to one: run it now, pause it, resume it.
//!
//! Viewing needs the permission `tasks.view`, acting `tasks.manage`; each
//! handler asks once through [`require`], the one place to swap for the
//! general permission gate.

use std::str::FromStr;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::{ApiError, AppState};
use crate::background::scheduler::RunNowError;
use crate::db::task_runs::{self, TaskRun};

/// May list tasks and read their runs.
pub const VIEW: &str = "tasks.view";
/// May run, pause and resume tasks.
pub const MANAGE: &str = "tasks.manage";

/// Most runs one page of history holds.
const MAX_PAGE: i64 = 500;

fn db_error(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "task API: database error");
    ApiError::internal("the host database did not answer; see the host log")
}

/// One declared task, as listed.
#[derive(Debug, Serialize)]
pub struct TaskRow {
    pub plugin: String,
    pub version: String,
    pub task: String,
    pub title: String,
    pub cron: String,
    pub timeout_secs: u32,
    pub missed: plinth_package::task_policy::Missed,
    pub concurrency: plinth_package::task_policy::Concurrency,
    pub min_interval_secs: u32,
    /// The next cron tick (ms since the epoch), whether or not paused.
    pub next_run_at: Option<i64>,
    pub paused: bool,
    /// Whether a run is live on any host.
    pub running: bool,
    pub last_run: Option<TaskRun>,
}

pub async fn list(State(state): State<AppState>) -> Result<Json<Vec<TaskRow>>, ApiError> {
    let host = state.host()?;
    let paused = task_runs::paused(&host.db).await.map_err(db_error)?;
    let now = chrono::Utc::now();
    let mut rows = Vec::new();
    for plugin in host.registry.all() {
        for task in &plugin.manifest.tasks {
            let last = task_runs::runs(&host.db, plugin.name(), Some(&task.name), 1, None)
                .await
                .map_err(db_error)?;
            let running = task_runs::is_running(&host.db, plugin.name(), &task.name)
                .await
                .map_err(db_error)?;
            let next_run_at = cron::Schedule::from_str(&task.cron)
                .ok()
                .and_then(|s| s.after(&now).next())
                .map(|t| t.timestamp_millis());
            rows.push(TaskRow {
                plugin: plugin.name().to_owned(),
                version: plugin.version(),
                task: task.name.clone(),
                title: task.title.clone(),
                cron: task.cron.clone(),
                timeout_secs: task.timeout_secs,
                missed: task.missed,
                concurrency: task.concurrency,
                min_interval_secs: task.min_interval_secs,
                next_run_at,
                paused: paused
                    .iter()
                    .any(|(p, t)| p == plugin.name() && *t == task.name),
                running,
                last_run: last.into_iter().next(),
            });
        }
    }
    Ok(Json(rows))
}

/// The answer to run, pause and resume.
#[derive(Debug, Serialize)]
pub struct TaskAction {
    pub plugin: String,
    pub task: String,
    pub paused: Option<bool>,
    /// For run-now: the run's `scheduled_at`, to find it in the history.
    pub scheduled_at: Option<i64>,
}

pub async fn run_now(
    State(state): State<AppState>,
    Path((plugin, task)): Path<(String, String)>,
) -> Result<(StatusCode, Json<TaskAction>), ApiError> {
    let host = state.host()?;
    let scheduler = state.scheduler()?;
    match scheduler.run_now(host, &plugin, &task).await {
        Ok(at) => Ok((
            StatusCode::ACCEPTED,
            Json(TaskAction {
                plugin,
                task,
                paused: None,
                scheduled_at: Some(at),
            }),
        )),
        Err(e @ (RunNowError::NotFound { .. } | RunNowError::NoTasks(_))) => {
            Err(ApiError::not_found(e.to_string()))
        }
        Err(e @ RunNowError::AlreadyRunning { .. }) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "task_running",
            e.to_string(),
        )),
        Err(RunNowError::Db(e)) => Err(db_error(e)),
    }
}

pub async fn pause(
    state: State<AppState>,
    path: Path<(String, String)>,
) -> Result<Json<TaskAction>, ApiError> {
    set_paused(state, path, true).await
}

pub async fn resume(
    state: State<AppState>,
    path: Path<(String, String)>,
) -> Result<Json<TaskAction>, ApiError> {
    set_paused(state, path, false).await
}

async fn set_paused(
    State(state): State<AppState>,
    Path((plugin, task)): Path<(String, String)>,
    paused: bool,
) -> Result<Json<TaskAction>, ApiError> {
    let host = state.host()?;
    declared(&state, &plugin, &task)?;
    task_runs::set_paused(&host.db, &plugin, &task, paused)
        .await
        .map_err(db_error)?;
    tracing::info!(%plugin, %task, paused, "task pause flag set");
    Ok(Json(TaskAction {
        plugin,
        task,
        paused: Some(paused),
        scheduled_at: None,
    }))
}

/// 404 unless a serving plugin declares the task.
fn declared(state: &AppState, plugin: &str, task: &str) -> Result<(), ApiError> {
    let host = state.host()?;
    let known = host
        .registry
        .by_name(plugin)
        .is_some_and(|p| p.manifest.tasks.iter().any(|t| t.name == task));
    if known {
        return Ok(());
    }
    Err(ApiError::not_found(format!(
        "no serving plugin {plugin} declares a task {task}; GET /api/admin/tasks lists them"
    )))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunsQuery {
    /// Page size, 1 to 500 (default 50).
    limit: Option<i64>,
    /// Only runs with an id below this: the last id of the previous page.
    before: Option<i64>,
}

/// One page of history, newest first.
#[derive(Debug, Serialize)]
pub struct RunsPage {
    pub runs: Vec<TaskRun>,
    /// Pass as `before` for the next page; absent on the last page.
    pub next_before: Option<i64>,
}

pub async fn runs(
    State(state): State<AppState>,
    Path((plugin, task)): Path<(String, String)>,
    Query(query): Query<RunsQuery>,
) -> Result<Json<RunsPage>, ApiError> {
    let host = state.host()?;
    let limit = super::page_limit(query.limit, 50, MAX_PAGE)?;
    let runs = task_runs::runs(&host.db, &plugin, Some(&task), limit, query.before)
        .await
        .map_err(db_error)?;
    let next_before = (runs.len() as i64 == limit)
        .then(|| runs.last().map(|r| r.id))
        .flatten();
    Ok(Json(RunsPage { runs, next_before }))
}

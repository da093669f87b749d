//! The drop-in folder, a developer's loop: a package copied into
//! `data/dropin/` is installed (or upgrades the installed version) by the
//! same pipeline as every other install, and the outcome is logged.
//!
//! `notify` reports new and changed files; a file is taken once its size
//! has stayed the same for one tick, so a package still being copied is
//! not read half-written. Afterwards it moves to `dropin/installed/` or
//! `dropin/failed/`, beside a `.log` file saying what happened.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

use crate::Host;
use crate::install::{InstallMode, install_package};

const TICK: Duration = Duration::from_millis(300);

/// Watches the drop-in folder until aborted.
pub async fn watch(host: Host) {
    let dir = host.data.dropin();
    if let Err(e) = std::fs::create_dir_all(&dir) {
        tracing::warn!(dir = %dir.display(), error = %e, "drop-in folder unavailable; drop-in installs are off");
        return;
    }
    let (tx, mut rx) = mpsc::channel::<PathBuf>(256);
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event {
            for path in event.paths {
                let _ = tx.try_send(path);
            }
        }
    });
    let mut watcher = match watcher {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch the drop-in folder; drop-in installs are off");
            return;
        }
    };
    if let Err(e) = watcher.watch(&dir, RecursiveMode::NonRecursive) {
        tracing::warn!(dir = %dir.display(), error = %e, "cannot watch the drop-in folder; drop-in installs are off");
        return;
    }
    tracing::info!(dir = %dir.display(), "watching the drop-in folder");

    // Packages already there when the host started count too.
    let mut pending: HashMap<PathBuf, Option<u64>> = HashMap::new();
    for path in zips_in(&dir) {
        pending.insert(path, None);
    }
    let mut tick = tokio::time::interval(TICK);
    loop {
        tokio::select! {
            Some(path) = rx.recv() => {
                if is_package(&path) && path.parent() == Some(dir.as_path()) {
                    pending.entry(path).or_insert(None);
                }
            }
            _ = tick.tick() => {
                let mut ready = Vec::new();
                for (path, last_size) in pending.iter_mut() {
                    let size = std::fs::metadata(path).ok().map(|m| m.len());
                    match size {
                        None => ready.push((path.clone(), false)),
                        Some(size) if *last_size == Some(size) => ready.push((path.clone(), true)),
                        Some(size) => *last_size = Some(size),
                    }
                }
                for (path, exists) in ready {
                    pending.remove(&path);
                    if exists {
                        take(&host, &path).await;
                    }
                }
            }
        }
    }
}

fn is_package(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "zip") && path.is_file()
}

fn zips_in(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| is_package(p))
                .collect()
        })
        .unwrap_or_default()
}

async fn take(host: &Host, path: &Path) {
    let file = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) => {
            tracing::warn!(file, error = %e, "drop-in: cannot read the package");
            return;
        }
    };
    let outcome = {
        let guard = host.operations.lock().await;
        install_package(host, &guard, &bytes, InstallMode::Auto).await
    };
    let (to_dir, line) = match outcome {
        Ok(report) => {
            tracing::info!(file, outcome = %report.summary(), "drop-in: installed");
            (
                host.data.dropin_installed(),
                format!("ok: {}\n", report.summary()),
            )
        }
        Err(e) => {
            tracing::warn!(file, error = %e, "drop-in: refused");
            (host.data.dropin_failed(), format!("refused: {e}\n"))
        }
    };
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3f");
    let target = to_dir.join(format!("{stamp}-{file}"));
    let moved = std::fs::create_dir_all(&to_dir).and_then(|()| std::fs::rename(path, &target));
    if let Err(e) = moved {
        tracing::warn!(file, error = %e, "drop-in: cannot move the package out of the way; removing it");
        let _ = std::fs::remove_file(path);
    }
    let _ = std::fs::write(target.with_extension("zip.log"), line);
}

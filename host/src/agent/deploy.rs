//! The worker that applies offers, one at a time, in the order received.
//!
//! Before a byte is downloaded an offer must pass, in order: its format,
//! the signature against the pinned vendor key (before the manifest is even
//! parsed), the customer, the validity window (an expired offer, frozen or
//! replayed later, is refused), the id the offer claims, replay (a
//! deployment already acted on is not applied again, and one issued before
//! the newest acted-on deployment is refused), downgrade (every version
//! only moves up) and size (no package over the host's package limit).
//! Then each package, in the manifest's dependency order: download, check
//! size and sha256, check the archive names the same plugin and version,
//! install through the pipeline. When one fails, the packages this
//! deployment already changed are rolled back (an upgrade to its previous
//! version, a fresh install removed with its data kept), so the host never
//! runs half a deployment. Partial downloads are removed when a deployment
//! ends, and at start-up unless the newest deployment is still being
//! applied.
//!
//! A panic while applying one offer is caught: that deployment is reported
//! failed, the view counts it, and the worker takes the next offer.

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::FutureExt as _;
use plinth_package::protocol::{PackageState, StatusReport};
use plinth_package::{DeploymentManifest, DeploymentPackage, Expectations, Limits};
use semver::Version;

use super::AgentHost as Host;
use super::bounded::bounded;
use super::download::{self, DownloadError, DownloadRequest};
use super::queue::OfferReceiver;
use super::{AgentSettings, IncomingOffer};
use crate::db::agent_ledger::{self, outcome};
use crate::db::{DbError, now_ms};
use crate::host::OperationGuard;
use crate::install::{self, InstallMode};

/// How often download progress is reported.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);

pub(super) async fn run(host: Host, settings: Arc<AgentSettings>, mut offers: OfferReceiver) {
    let client = match download::client(&settings.limits) {
        Ok(client) => client,
        Err(e) => {
            let error = format!(
                "the upgrade agent cannot build its HTTP client ({e}); offers will not be applied until the host restarts"
            );
            tracing::error!(%error);
            host.agent.set_error(&error);
            return;
        }
    };
    remove_stale_parts(&host).await;
    while let Some(offer) = offers.recv().await {
        let id = offer.deployment_id.clone();
        let applied = AssertUnwindSafe(apply_offer(&host, &settings, &client, offer))
            .catch_unwind()
            .await;
        match applied {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::error!(deployment_id = %id, error = %e, "upgrade agent: the database failed while applying an offer; the vendor will offer it again on reconnect");
            }
            Err(panic) => {
                let reason = format!(
                    "the agent failed inside while applying this deployment ({}); it was abandoned and the agent went on with the next offer",
                    super::panic_text(&*panic)
                );
                tracing::error!(deployment_id = %id, %reason, "upgrade agent: deploy worker failure");
                host.agent.update(|s| s.worker_failures += 1);
                host.agent.set_error(&reason);
                host.agent.set_cancelled(None);
                let reporter = Reporter {
                    host: &host,
                    deployment_id: &id,
                };
                if let Err(e) = reporter.finish(PackageState::Failure { reason }).await {
                    tracing::error!(deployment_id = %id, error = %e, "upgrade agent: cannot record a worker failure");
                }
                mark_view(&host, &id, outcome::FAILURE);
            }
        }
    }
}

/// At start-up: partial downloads are kept only while the newest
/// deployment is still being applied (its offer resumes them).
async fn remove_stale_parts(host: &Host) {
    let resumable = agent_ledger::newest_acted_on(&host.db)
        .await
        .ok()
        .flatten()
        .is_some_and(|entry| entry.outcome == outcome::APPLYING);
    if !resumable {
        let removed = download::remove_all_parts(&host.data.downloads()).await;
        if removed > 0 {
            tracing::info!(
                removed,
                "upgrade agent: removed partial downloads of ended deployments"
            );
        }
    }
}

/// Numbers and queues the status reports of one deployment.
struct Reporter<'a> {
    host: &'a Host,
    deployment_id: &'a str,
}

impl Reporter<'_> {
    async fn report(
        &self,
        package: Option<(&str, &Version)>,
        state: PackageState,
    ) -> Result<(), DbError> {
        // Reasons may carry vendor text; what is kept and sent is bounded.
        let state = match state {
            PackageState::Failure { reason } => PackageState::Failure {
                reason: bounded(&reason),
            },
            PackageState::RolledBack { reason } => PackageState::RolledBack {
                reason: bounded(&reason),
            },
            other => other,
        };
        let seq = agent_ledger::next_seq(&self.host.db, self.deployment_id).await?;
        let report = StatusReport {
            seq,
            deployment_id: self.deployment_id.to_owned(),
            package: package.map(|(name, _)| name.to_owned()),
            version: package.map(|(_, version)| version.clone()),
            state,
            at_ms: now_ms(),
        };
        self.host
            .agent
            .package_progress(self.deployment_id, &report);
        self.host.agent.outbox().push(report);
        Ok(())
    }

    async fn package(
        &self,
        package: &DeploymentPackage,
        state: PackageState,
    ) -> Result<(), DbError> {
        self.report(Some((&package.name, &package.version)), state)
            .await
    }

    /// The deployment's final outcome, in the ledger, the view and a report.
    async fn finish(&self, state: PackageState) -> Result<(), DbError> {
        let (outcome, reason) = match &state {
            PackageState::Success => (outcome::SUCCESS, None),
            PackageState::Failure { reason } | PackageState::RolledBack { reason } => {
                (outcome::FAILURE, Some(bounded(reason)))
            }
            _ => (outcome::APPLYING, None),
        };
        agent_ledger::record_outcome(
            &self.host.db,
            self.deployment_id,
            outcome,
            reason.as_deref(),
        )
        .await?;
        self.report(None, state).await
    }

    /// Refuses the whole offer before anything was downloaded.
    async fn refuse(&self, reason: String) -> Result<(), DbError> {
        let reason = bounded(&reason);
        tracing::warn!(deployment_id = %self.deployment_id, %reason, "upgrade agent: offer refused");
        agent_ledger::record_outcome(
            &self.host.db,
            self.deployment_id,
            outcome::REFUSED,
            Some(&reason),
        )
        .await?;
        self.report(None, PackageState::Failure { reason }).await?;
        self.host.agent.update(|s| {
            if let Some(offer) = s.last_offer.as_mut()
                && offer.deployment_id == self.deployment_id
            {
                offer.outcome = outcome::REFUSED.to_owned();
            }
        });
        Ok(())
    }
}

async fn apply_offer(
    host: &Host,
    settings: &AgentSettings,
    client: &reqwest::Client,
    offer: IncomingOffer,
) -> Result<(), DbError> {
    // The connection refused ids the ledger cannot hold.
    let id = offer.deployment_id.as_str();
    agent_ledger::record_received(&host.db, id).await?;
    let reporter = Reporter {
        host,
        deployment_id: id,
    };

    // Acted on before: report what became of it rather than applying it
    // again. An interrupted one (`applying`) is simply resumed below.
    if let Some(entry) = agent_ledger::entry(&host.db, id).await?
        && entry.acted_on()
        && entry.outcome != outcome::APPLYING
    {
        tracing::info!(deployment_id = %id, outcome = %entry.outcome, "upgrade agent: offer already applied; reporting its outcome again");
        let state = match entry.outcome.as_str() {
            outcome::SUCCESS => PackageState::Success,
            _ => PackageState::Failure {
                reason: entry
                    .reason
                    .unwrap_or_else(|| format!("already applied with outcome {}", entry.outcome)),
            },
        };
        host.agent.update(|s| {
            if let Some(offer) = s.last_offer.as_mut()
                && offer.deployment_id == id
            {
                offer.outcome = entry.outcome.clone();
            }
        });
        return reporter.report(None, state).await;
    }

    let deployment = match &offer.deployment {
        Ok(deployment) => deployment,
        Err(reason) => return reporter.refuse(reason.clone()).await,
    };
    let manifest = match check_offer(host, settings, id, deployment).await? {
        Ok(manifest) => manifest,
        Err(reason) => return reporter.refuse(reason).await,
    };
    agent_ledger::record_verified(
        &host.db,
        id,
        &manifest.customer,
        manifest.issued_at,
        manifest.expires_at,
    )
    .await?;
    host.agent.update(|s| {
        if let Some(view) = s.last_offer.as_mut()
            && view.deployment_id == id
        {
            view.issued_at = Some(manifest.issued_at);
            view.expires_at = Some(manifest.expires_at);
            view.outcome = outcome::APPLYING.to_owned();
            view.packages = super::progress_rows(&manifest.packages);
        }
    });
    tracing::info!(deployment_id = %id, packages = manifest.packages.len(), "upgrade agent: applying deployment");
    let applied = apply_packages(host, settings, client, &reporter, &manifest).await;
    // Ended, however it went: its partial downloads are of no more use.
    download::remove_parts(&host.data.downloads(), &manifest.packages).await;
    applied
}

/// Every check before download. `Ok(Err(reason))` refuses the offer.
async fn check_offer(
    host: &Host,
    settings: &AgentSettings,
    offered_id: &str,
    deployment: &plinth_package::SignedDeployment,
) -> Result<Result<DeploymentManifest, String>, DbError> {
    let now = now_ms() / 1000;
    let expect = Expectations {
        customer: &settings.customer,
        now,
        max_clock_skew_secs: plinth_package::deployment::DEFAULT_MAX_CLOCK_SKEW_SECS,
    };
    let manifest = match deployment.verify(&settings.public_key, &expect) {
        Ok(manifest) => manifest,
        Err(e) => return Ok(Err(e.to_string())),
    };
    if manifest.deployment_id != offered_id {
        return Ok(Err(format!(
            "the offer calls itself {:?} but its signed manifest is {:?}; ask the vendor to push again",
            offered_id,
            bounded(&manifest.deployment_id)
        )));
    }
    if let Some(newest) = agent_ledger::newest_acted_on(&host.db).await?
        && newest.deployment_id != manifest.deployment_id
        && newest.issued_at > manifest.issued_at
    {
        return Ok(Err(format!(
            "replayed or out-of-date deployment: it was issued at {} but deployment {} issued at {} was already applied; ask the vendor to push a current deployment",
            manifest.issued_at, newest.deployment_id, newest.issued_at
        )));
    }
    let limit = Limits::default().max_package_bytes;
    if let Some(package) = manifest.packages.iter().find(|p| p.size > limit) {
        return Ok(Err(format!(
            "{} {} is {} bytes, over this host's package limit of {limit} bytes; nothing was downloaded",
            package.name, package.version, package.size
        )));
    }
    let installed = super::installed_versions(host).await?;
    for package in &manifest.packages {
        if let Some(current) = installed.get(&package.name)
            && *current > package.version
        {
            return Ok(Err(format!(
                "the deployment would move {} down from {current} to {}; versions only move up (an operator rolls back with `plinth plugin rollback {}`)",
                package.name, package.version, package.name
            )));
        }
    }
    Ok(Ok(manifest))
}

/// What this deployment did to a plugin, so it can be undone.
enum Change {
    Installed,
    Upgraded,
}

async fn apply_packages(
    host: &Host,
    settings: &AgentSettings,
    client: &reqwest::Client,
    reporter: &Reporter<'_>,
    manifest: &DeploymentManifest,
) -> Result<(), DbError> {
    let id = reporter.deployment_id;
    // Every package is downloaded and verified before the operation lock is
    // taken: a slow download never holds up an operator's admin call, and a
    // download that fails leaves everything as it was.
    let installed = super::installed_versions(host).await?;
    let mut fetched: Vec<(&DeploymentPackage, Option<PathBuf>)> = Vec::new();
    for (index, package) in manifest.packages.iter().enumerate() {
        if installed.get(&package.name) == Some(&package.version) {
            fetched.push((package, None));
            continue;
        }
        match fetch_one(host, settings, client, reporter, package).await? {
            Ok(path) => fetched.push((package, Some(path))),
            Err(failure) => {
                return fail(host, reporter, manifest, index, package, failure, None).await;
            }
        }
    }
    // One guard for every install of the deployment, undo included: no
    // admin call or drop-in install lands between two of its packages.
    let guard = host.operations.lock().await;
    let mut changed: Vec<(&DeploymentPackage, Change)> = Vec::new();
    for (index, (package, path)) in fetched.iter().enumerate() {
        let installed = super::installed_versions(host).await?;
        let before = installed.get(&package.name);
        if before == Some(&package.version) {
            reporter.package(package, PackageState::Success).await?;
            continue;
        }
        let change = if before.is_some() {
            Change::Upgraded
        } else {
            Change::Installed
        };
        let result = match path {
            Some(path) => install_fetched(host, &guard, reporter, package, path).await?,
            // Installed when the deployment arrived, gone since: fetch it now.
            None => match fetch_one(host, settings, client, reporter, package).await? {
                Ok(path) => install_fetched(host, &guard, reporter, package, &path).await?,
                Err(failure) => Err(failure),
            },
        };
        match result {
            Ok(()) => {
                reporter.package(package, PackageState::Success).await?;
                changed.push((package, change));
            }
            Err(failure) => {
                let undo_with = Some((&guard, changed.as_slice()));
                return fail(host, reporter, manifest, index, package, failure, undo_with).await;
            }
        }
    }
    tracing::info!(deployment_id = %id, "upgrade agent: deployment applied");
    reporter.finish(PackageState::Success).await
}

/// Reports `package` (the `index`th of the deployment) failed and those
/// after it not attempted, undoes what the deployment already changed
/// (`undo_with`, when installs had begun) and finishes the deployment.
async fn fail(
    host: &Host,
    reporter: &Reporter<'_>,
    manifest: &DeploymentManifest,
    index: usize,
    package: &DeploymentPackage,
    failure: Failure,
    undo_with: Option<(&OperationGuard, &[(&DeploymentPackage, Change)])>,
) -> Result<(), DbError> {
    let id = reporter.deployment_id;
    let cancelled = matches!(failure, Failure::Cancelled(_));
    let reason = failure.reason();
    reporter
        .package(
            package,
            PackageState::Failure {
                reason: reason.clone(),
            },
        )
        .await?;
    let culprit = format!("{} {}", package.name, package.version);
    for later in manifest.packages.get(index + 1..).unwrap_or_default() {
        reporter
            .package(
                later,
                PackageState::Failure {
                    reason: format!("not attempted: {culprit} failed before it"),
                },
            )
            .await?;
    }
    if cancelled {
        agent_ledger::record_outcome(&host.db, id, outcome::CANCELLED, Some(&reason)).await?;
        host.agent.set_cancelled(None);
        return reporter
            .report(None, PackageState::Failure { reason })
            .await
            .map(|()| mark_view(host, id, outcome::CANCELLED));
    }
    if let Some((guard, changed)) = undo_with {
        undo(host, guard, reporter, changed, &culprit).await?;
    }
    reporter
        .finish(PackageState::Failure {
            reason: format!("{culprit}: {reason}"),
        })
        .await
}

fn mark_view(host: &Host, id: &str, outcome: &str) {
    host.agent.update(|s| {
        if let Some(view) = s.last_offer.as_mut()
            && view.deployment_id == id
        {
            view.outcome = outcome.to_owned();
        }
    });
}

/// Rolls back, newest first, what the deployment changed before it failed.
async fn undo(
    host: &Host,
    guard: &OperationGuard,
    reporter: &Reporter<'_>,
    changed: &[(&DeploymentPackage, Change)],
    culprit: &str,
) -> Result<(), DbError> {
    for (package, change) in changed.iter().rev() {
        let result = match change {
            Change::Upgraded => install::rollback(host, guard, &package.name).await,
            Change::Installed => install::remove(host, guard, &package.name, false).await,
        };
        let state = match result {
            Ok(report) => {
                tracing::warn!(plugin = %package.name, undone = %report.summary(), "upgrade agent: rolled back");
                PackageState::RolledBack {
                    reason: format!("undone because {culprit} failed"),
                }
            }
            Err(e) => PackageState::Failure {
                reason: format!(
                    "installed, but could not be undone after {culprit} failed: {e}; it stays at {}",
                    package.version
                ),
            },
        };
        reporter.package(package, state).await?;
    }
    Ok(())
}

/// Why one package did not install.
enum Failure {
    Cancelled(String),
    Other(String),
}

impl Failure {
    fn reason(&self) -> String {
        match self {
            Failure::Cancelled(reason) | Failure::Other(reason) => reason.clone(),
        }
    }
}

/// Downloads `package` and checks the archive is what the deployment names;
/// the verified file's path.
async fn fetch_one(
    host: &Host,
    settings: &AgentSettings,
    client: &reqwest::Client,
    reporter: &Reporter<'_>,
    package: &DeploymentPackage,
) -> Result<Result<PathBuf, Failure>, DbError> {
    let id = reporter.deployment_id;
    let dir = host.data.downloads();
    let request = DownloadRequest {
        client,
        http_base: &settings.http_base,
        token: &settings.token,
        dir: &dir,
        attempts: settings.download_attempts,
        limits: &settings.limits,
    };
    reporter
        .package(
            package,
            PackageState::Downloading {
                bytes: 0,
                total: package.size,
            },
        )
        .await?;
    let received = AtomicU64::new(0);
    let agent = host.agent.clone();
    let fetch = download::fetch(
        &request,
        package,
        |bytes| received.store(bytes, Ordering::Relaxed),
        |reason| agent.package_retry(id, &package.name, reason),
        || agent.is_cancelled(id),
    );
    tokio::pin!(fetch);
    let mut tick = tokio::time::interval(PROGRESS_EVERY);
    tick.tick().await;
    let mut reported = 0;
    let fetched = loop {
        tokio::select! {
            result = &mut fetch => break result,
            _ = tick.tick() => {
                let bytes = received.load(Ordering::Relaxed);
                if bytes != reported {
                    reported = bytes;
                    reporter
                        .package(package, PackageState::Downloading { bytes, total: package.size })
                        .await?;
                }
            }
        }
    };
    let path = match fetched {
        Ok(path) => path,
        Err(DownloadError::Cancelled) => {
            return Ok(Err(Failure::Cancelled(
                "cancelled by the vendor during the download".into(),
            )));
        }
        Err(e) => return Ok(Err(Failure::Other(e.to_string()))),
    };
    reporter
        .package(
            package,
            PackageState::Downloading {
                bytes: package.size,
                total: package.size,
            },
        )
        .await?;
    // Size and sha256 were checked as the bytes arrived; what is left to
    // verify is what the archive says it is.
    reporter.package(package, PackageState::Verifying).await?;
    let bytes = match install::read_package_file(&path).await {
        Ok(bytes) => bytes,
        Err(e) => {
            let _ = tokio::fs::remove_file(&path).await;
            return Ok(Err(Failure::Other(format!("reading the download: {e}"))));
        }
    };
    match plinth_package::read_manifest(&bytes, &Limits::default()) {
        Ok(inside) if inside.name == package.name && inside.version == package.version => {
            Ok(Ok(path))
        }
        Ok(inside) => {
            let _ = tokio::fs::remove_file(&path).await;
            Ok(Err(Failure::Other(format!(
                "the archive holds {} {}, not the {} {} the deployment names; ask the vendor to republish it",
                inside.name, inside.version, package.name, package.version
            ))))
        }
        Err(e) => {
            let _ = tokio::fs::remove_file(&path).await;
            Ok(Err(Failure::Other(format!("the package is unusable: {e}"))))
        }
    }
}

/// Installs the verified download at `path` under `guard`, and removes it.
async fn install_fetched(
    host: &Host,
    guard: &OperationGuard,
    reporter: &Reporter<'_>,
    package: &DeploymentPackage,
    path: &Path,
) -> Result<Result<(), Failure>, DbError> {
    let id = reporter.deployment_id;
    let bytes = install::read_package_file(path).await;
    let _ = tokio::fs::remove_file(path).await;
    let bytes = match bytes {
        Ok(bytes) => bytes,
        Err(e) => return Ok(Err(Failure::Other(format!("reading the download: {e}")))),
    };
    if host.agent.is_cancelled(id) {
        return Ok(Err(Failure::Cancelled(
            "cancelled by the vendor before the install started".into(),
        )));
    }
    reporter.package(package, PackageState::Installing).await?;
    match install::install_package(host, guard, &bytes, InstallMode::Auto).await {
        Ok(report) => {
            tracing::info!(deployment_id = %id, done = %report.summary(), "upgrade agent: package installed");
            Ok(Ok(()))
        }
        Err(e) => Ok(Err(Failure::Other(e.to_string()))),
    }
}

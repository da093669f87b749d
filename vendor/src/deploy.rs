//! Making deployments: solve each customer's plan, sign it as a
//! [`DeploymentManifest`] and record it, together with an `offer` event the
//! running server delivers; cancel a customer's open deployment; and
//! reissue an expired one under a new id.
//!
//! Recording is all a push does: CLI commands run in their own process, so
//! delivery to connected agents is the server's job (see
//! [`crate::http::deliver`]).

use plinth_package::protocol::package_path;
use plinth_package::{DeploymentManifest, DeploymentPackage, VendorKey};
use rand::RngCore as _;

use crate::Vendor;
use crate::db::customers::{self as customer_rows, Customer};
use crate::db::deployments::{self, DeploymentRow, NewDeployment};
use crate::db::{DbError, now_secs};
use crate::error::VendorError;
use crate::plan::{self, Plan, Unsatisfiable};

/// Default validity of a deployment: one day.
pub const DEFAULT_TTL_SECS: i64 = 86_400;

/// What happened for one customer in a push.
#[derive(Debug, Clone)]
pub enum PushResult {
    Pushed {
        customer: String,
        deployment_id: String,
        plan: Plan,
    },
    /// The plan is unsatisfiable; nothing was pushed.
    Unsatisfiable(Unsatisfiable),
    /// The customer has no assignments; nothing was pushed.
    NothingAssigned { customer: String },
}

impl PushResult {
    pub fn pushed(&self) -> bool {
        matches!(self, PushResult::Pushed { .. })
    }

    /// One line for the operator.
    pub fn line(&self) -> String {
        match self {
            PushResult::Pushed {
                customer,
                deployment_id,
                plan,
            } => format!("{customer}: pushed deployment {deployment_id}: {plan}"),
            PushResult::Unsatisfiable(u) => {
                format!(
                    "{}: NOT pushed, no plan: {}",
                    u.customer,
                    u.reason.replace('\n', " ")
                )
            }
            PushResult::NothingAssigned { customer } => format!(
                "{customer}: NOT pushed, no assignments (plinth-vendor assign {customer} <plugin> <range>)"
            ),
        }
    }
}

/// A fresh deployment id: the UTC time (sortable, readable) and 64 random
/// bits (unique across processes).
pub fn new_deployment_id() -> String {
    let mut random = [0u8; 8];
    rand::rng().fill_bytes(&mut random);
    format!(
        "{}-{}",
        chrono::Utc::now().format("%Y%m%dT%H%M%SZ"),
        hex::encode(random)
    )
}

fn manifest_for(plan: &Plan, ttl_secs: i64) -> DeploymentManifest {
    let issued_at = now_secs();
    DeploymentManifest {
        customer: plan.customer.clone(),
        deployment_id: new_deployment_id(),
        issued_at,
        expires_at: issued_at.saturating_add(ttl_secs.max(1)),
        packages: plan
            .packages
            .iter()
            .map(|p| DeploymentPackage {
                name: p.name.clone(),
                version: p.version.clone(),
                size: p.size,
                sha256: p.sha256.clone(),
                url: package_path(&p.name, &p.version),
            })
            .collect(),
    }
}

fn sign(
    key: &VendorKey,
    customer_id: i64,
    manifest: DeploymentManifest,
) -> Result<NewDeployment, VendorError> {
    let signed = key.sign(&manifest).map_err(|source| VendorError::Sign {
        customer: manifest.customer.clone(),
        source,
    })?;
    Ok(NewDeployment {
        customer_id,
        manifest,
        signed,
    })
}

impl Vendor {
    /// Pushes to one customer, or to every customer with assignments.
    /// Unsatisfiable plans are reported and skipped; the others are signed
    /// and recorded.
    pub async fn push(
        &self,
        key: &VendorKey,
        customer: Option<&str>,
        ttl_secs: i64,
    ) -> Result<Vec<PushResult>, VendorError> {
        let customers = match customer {
            Some(name) => vec![self.customer(name).await?],
            None => customer_rows::with_assignments(&self.db).await?,
        };
        self.push_to(key, &customers, ttl_secs).await
    }

    /// Pushes to the given customers (see [`Vendor::push`]).
    pub async fn push_to(
        &self,
        key: &VendorKey,
        customers: &[Customer],
        ttl_secs: i64,
    ) -> Result<Vec<PushResult>, VendorError> {
        let catalog = self.catalog().await?;
        let assignments = self.all_assignments().await?;
        let mut results = Vec::with_capacity(customers.len());
        let mut to_record = Vec::new();
        for customer in customers {
            let Some(assigned) = assignments.get(&customer.id).filter(|a| !a.is_empty()) else {
                results.push(PushResult::NothingAssigned {
                    customer: customer.name.clone(),
                });
                continue;
            };
            match plan::plan(&customer.name, assigned, &catalog) {
                Ok(plan) => {
                    let new = sign(key, customer.id, manifest_for(&plan, ttl_secs))?;
                    results.push(PushResult::Pushed {
                        customer: customer.name.clone(),
                        deployment_id: new.manifest.deployment_id.clone(),
                        plan,
                    });
                    to_record.push(new);
                }
                Err(unsatisfiable) => results.push(PushResult::Unsatisfiable(unsatisfiable)),
            }
        }
        deployments::record(&self.db, &to_record).await?;
        Ok(results)
    }

    /// Cancels the customer's newest unfinished deployment; returns its id.
    pub async fn cancel(&self, customer: &str, reason: &str) -> Result<String, VendorError> {
        let customer = self.customer(customer).await?;
        deployments::cancel_newest_open(&self.db, customer.id, reason)
            .await?
            .ok_or(VendorError::NothingToCancel(customer.name))
    }

    /// Issues `expired` again, same packages, under a new id and validity
    /// window, and marks it superseded. `None` when it is no longer the
    /// customer's newest open deployment (a push or cancel came first).
    pub async fn reissue(
        &self,
        key: &VendorKey,
        expired: &DeploymentRow,
        ttl_secs: i64,
    ) -> Result<Option<DeploymentRow>, VendorError> {
        let old: DeploymentManifest = serde_json::from_str(&expired.manifest).map_err(|e| {
            DbError::Corrupt(format!(
                "deployment {} has an unreadable manifest: {e}",
                expired.id
            ))
        })?;
        let issued_at = now_secs();
        let manifest = DeploymentManifest {
            deployment_id: new_deployment_id(),
            issued_at,
            expires_at: issued_at.saturating_add(ttl_secs.max(1)),
            ..old
        };
        let new = sign(key, expired.customer_id, manifest)?;
        if !deployments::record_reissue(&self.db, &new, &expired.id).await? {
            return Ok(None);
        }
        Ok(deployments::by_id(&self.db, &new.manifest.deployment_id).await?)
    }
}

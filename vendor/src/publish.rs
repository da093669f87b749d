//! Publishing a package archive: validate it like a host would, keep it in
//! the package store, record it in the catalog, and find the customers
//! whose plans it may change.
//!
//! A published version never changes: publishing the same name and version
//! again with the same bytes is a no-op, with other bytes an error.

use std::path::Path;

use plinth_package::{Limits, read_manifest, sha256_hex};
use semver::Version;

use crate::Vendor;
use crate::db::catalog::{self, PackageRecord};
use crate::db::customers::{self as customer_rows, Customer};
use crate::db::now_ms;
use crate::error::VendorError;

/// What [`Vendor::publish`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub name: String,
    pub version: Version,
    pub size: u64,
    pub sha256: String,
    /// The same bytes were already published; nothing changed.
    pub already_published: bool,
}

impl Vendor {
    /// Validates and publishes the package archive at `zip_path`.
    pub async fn publish(&self, zip_path: &Path) -> Result<Published, VendorError> {
        let read_error = |source| VendorError::Read {
            path: zip_path.to_owned(),
            source,
        };
        let limits = Limits::default();
        let meta = std::fs::metadata(zip_path).map_err(read_error)?;
        if meta.len() > limits.max_package_bytes {
            return Err(VendorError::BadPackage {
                path: zip_path.to_owned(),
                source: plinth_package::PackageError::PackageTooLarge {
                    size: meta.len(),
                    limit: limits.max_package_bytes,
                },
            });
        }
        let bytes = std::fs::read(zip_path).map_err(read_error)?;
        let manifest =
            read_manifest(&bytes, &limits).map_err(|source| VendorError::BadPackage {
                path: zip_path.to_owned(),
                source,
            })?;
        if !manifest.version.build.is_empty() {
            let mut plain = manifest.version.clone();
            plain.build = semver::BuildMetadata::EMPTY;
            return Err(VendorError::BuildMetadata {
                name: manifest.name,
                version: manifest.version,
                plain,
            });
        }
        let sha256 = sha256_hex(&bytes);
        let published = |already_published| Published {
            name: manifest.name.clone(),
            version: manifest.version.clone(),
            size: bytes.len() as u64,
            sha256: sha256.clone(),
            already_published,
        };
        let conflict = |stored: String| VendorError::PublishConflict {
            name: manifest.name.clone(),
            version: manifest.version.clone(),
            stored,
            offered: sha256.clone(),
        };
        if let Some(existing) = catalog::find(&self.db, &manifest.name, &manifest.version).await? {
            return if existing.sha256 == sha256 {
                Ok(published(true))
            } else {
                Err(conflict(existing.sha256))
            };
        }
        let file = self.store.put(&sha256, &bytes)?;
        let record = PackageRecord {
            name: manifest.name.clone(),
            version: manifest.version.clone(),
            size: bytes.len() as u64,
            sha256: sha256.clone(),
            depends: manifest.depends.clone(),
            forked_from: manifest.forked_from.clone(),
            published_at: now_ms(),
            file,
        };
        if catalog::insert(&self.db, &record).await? {
            return Ok(published(false));
        }
        // Another publish of the same version won the race.
        match catalog::find(&self.db, &manifest.name, &manifest.version).await? {
            Some(existing) if existing.sha256 == sha256 => Ok(published(true)),
            Some(existing) => Err(conflict(existing.sha256)),
            None => Err(conflict(String::from("unknown"))),
        }
    }

    /// Customers whose plan `plugin` can change: those assigned it or a
    /// package that depends on it (in any published version), by name.
    pub async fn customers_affected_by(&self, plugin: &str) -> Result<Vec<Customer>, VendorError> {
        let names = self.catalog().await?.dependents_of(plugin);
        let assignments = self.all_assignments().await?;
        let affected: std::collections::HashSet<i64> = assignments
            .iter()
            .filter(|(_, list)| list.iter().any(|a| names.contains(&a.plugin)))
            .map(|(id, _)| *id)
            .collect();
        let mut customers: Vec<Customer> = customer_rows::list(&self.db)
            .await?
            .into_iter()
            .map(|(c, _)| c)
            .filter(|c| affected.contains(&c.id))
            .collect();
        customers.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(customers)
    }

    /// The store file of a published version, if any.
    pub async fn package_file(
        &self,
        name: &str,
        version: &Version,
    ) -> Result<Option<std::path::PathBuf>, VendorError> {
        Ok(catalog::find(&self.db, name, version)
            .await?
            .map(|record| self.store.path(&record.file)))
    }
}

//! Customers and what they are assigned: adding customers with their
//! bearer tokens, finding a customer by token, assigning plugin ranges and
//! solving a customer's current plan.
//!
//! Tokens are 32 random bytes (256 bits) shown once as hex. Only their
//! SHA-256 is stored: a token that long cannot be guessed or brute-forced
//! from its hash, so a fast hash is right here (a slow password hash would
//! only slow down every agent connection and download).

use std::collections::{BTreeMap, BTreeSet};

use rand::RngCore as _;
use semver::VersionReq;
use sha2::{Digest, Sha256};

use crate::Vendor;
use crate::db::customers::{self as rows, AssignmentRow, Customer};
use crate::db::{DbError, catalog};
use crate::error::VendorError;
use crate::plan::{self, Assignment, Catalog, Plan, Unsatisfiable};

/// A new random bearer token: 32 bytes as 64 hex characters.
pub fn generate_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// What the database keeps of a token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// `^[a-z0-9][a-z0-9._-]{0,63}$`: customer names appear in URLs, logs and
/// signed manifests, so they stay plain.
pub fn customer_name_problem(name: &str) -> Option<&'static str> {
    let b = name.as_bytes();
    if b.is_empty() || b.len() > 64 {
        return Some("must be 1 to 64 characters long");
    }
    if !(b[0].is_ascii_lowercase() || b[0].is_ascii_digit()) {
        return Some("must start with a lowercase letter or a digit");
    }
    if !b
        .iter()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'.' | b'_' | b'-'))
    {
        return Some("may only contain lowercase letters, digits, '.', '_' and '-'");
    }
    None
}

/// The package-name rule of `plugin.toml`, from `plinth-package`, so the
/// vendor accepts exactly the names a host can install.
pub fn plugin_name_problem(name: &str) -> Option<&'static str> {
    plinth_package::manifest::name_problem(name)
}

/// Parses an assignment range, with a message saying what ranges look like.
pub fn parse_range(range: &str) -> Result<VersionReq, VendorError> {
    VersionReq::parse(range.trim()).map_err(|e| VendorError::BadRange {
        range: range.to_owned(),
        reason: e.to_string(),
    })
}

impl Vendor {
    /// Adds customers in one transaction (all or none), each assigned the
    /// `(plugin, range)` pairs in `assign`, and returns each name with its
    /// new token, which is never shown again.
    pub async fn add_customers(
        &self,
        names: &[String],
        assign: &[(String, String)],
    ) -> Result<Vec<(String, String)>, VendorError> {
        let mut assignments = Vec::with_capacity(assign.len());
        for (plugin, range) in assign {
            if let Some(problem) = plugin_name_problem(plugin) {
                return Err(VendorError::BadName {
                    what: "plugin name",
                    value: plugin.clone(),
                    problem,
                });
            }
            assignments.push((plugin.clone(), parse_range(range)?.to_string()));
        }
        let mut seen = BTreeSet::new();
        for name in names {
            if let Some(problem) = customer_name_problem(name) {
                return Err(VendorError::BadName {
                    what: "customer name",
                    value: name.clone(),
                    problem,
                });
            }
            if !seen.insert(name.as_str()) {
                return Err(VendorError::RepeatedName(name.clone()));
            }
        }
        if let Some(taken) = rows::existing_names(&self.db, names)
            .await?
            .into_iter()
            .next()
        {
            return Err(VendorError::CustomerExists(taken));
        }
        let issued: Vec<(String, String)> = names
            .iter()
            .map(|name| (name.clone(), generate_token()))
            .collect();
        let hashed: Vec<(String, String)> = issued
            .iter()
            .map(|(name, token)| (name.clone(), token_hash(token)))
            .collect();
        match rows::add_many(&self.db, &hashed, &assignments).await {
            Err(DbError::Sql(e)) if crate::db::is_unique_violation(&e) => {
                // Someone added one of them in the meantime.
                Err(VendorError::CustomerExists(names.join(", ")))
            }
            other => other.map_err(VendorError::from),
        }?;
        Ok(issued)
    }

    pub async fn customer(&self, name: &str) -> Result<Customer, VendorError> {
        rows::by_name(&self.db, name)
            .await?
            .ok_or_else(|| VendorError::UnknownCustomer(name.to_owned()))
    }

    /// The customer a bearer token belongs to, if any.
    pub async fn customer_by_token(&self, token: &str) -> Result<Option<Customer>, VendorError> {
        Ok(rows::by_token_hash(&self.db, &token_hash(token)).await?)
    }

    /// Sets (or replaces) the customer's range for `plugin` and returns
    /// the customer's new plan or why there is none.
    pub async fn assign(
        &self,
        customer: &str,
        plugin: &str,
        range: &str,
    ) -> Result<Result<Plan, Unsatisfiable>, VendorError> {
        let customer = self.customer(customer).await?;
        if let Some(problem) = plugin_name_problem(plugin) {
            return Err(VendorError::BadName {
                what: "plugin name",
                value: plugin.to_owned(),
                problem,
            });
        }
        let req = parse_range(range)?;
        rows::assign(&self.db, customer.id, plugin, &req.to_string()).await?;
        self.plan_of(&customer).await
    }

    /// Removes the customer's assignment of `plugin` and returns the new
    /// plan or why there is none.
    pub async fn unassign(
        &self,
        customer: &str,
        plugin: &str,
    ) -> Result<Result<Plan, Unsatisfiable>, VendorError> {
        let customer = self.customer(customer).await?;
        if !rows::unassign(&self.db, customer.id, plugin).await? {
            return Err(VendorError::NotAssigned {
                customer: customer.name,
                plugin: plugin.to_owned(),
            });
        }
        self.plan_of(&customer).await
    }

    /// The customer's plan from the current assignments and catalog.
    pub async fn plan_of(
        &self,
        customer: &Customer,
    ) -> Result<Result<Plan, Unsatisfiable>, VendorError> {
        let catalog = self.catalog().await?;
        let assignments =
            assignments_from_rows(rows::assignments(&self.db, Some(customer.id)).await?)?;
        Ok(plan::plan(
            &customer.name,
            assignments.get(&customer.id).map_or(&[][..], Vec::as_slice),
            &catalog,
        ))
    }

    /// Every published version, as the solver needs it.
    pub async fn catalog(&self) -> Result<Catalog, VendorError> {
        Ok(Catalog::from_records(catalog::all(&self.db).await?))
    }

    /// Every customer's assignments, by customer id.
    pub async fn all_assignments(&self) -> Result<BTreeMap<i64, Vec<Assignment>>, VendorError> {
        assignments_from_rows(rows::assignments(&self.db, None).await?)
    }
}

fn assignments_from_rows(
    rows: Vec<AssignmentRow>,
) -> Result<BTreeMap<i64, Vec<Assignment>>, VendorError> {
    let mut out: BTreeMap<i64, Vec<Assignment>> = BTreeMap::new();
    for row in rows {
        let range = VersionReq::parse(&row.range).map_err(|e| {
            DbError::Corrupt(format!(
                "assignment of {} has range {:?}: {e}",
                row.plugin, row.range
            ))
        })?;
        out.entry(row.customer_id).or_default().push(Assignment {
            plugin: row.plugin,
            range,
        });
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_256_bit_hex_and_hashed_with_sha256() {
        let token = generate_token();
        assert_eq!(token.len(), 64);
        assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(token, generate_token());
        assert_eq!(
            token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn names_are_checked() {
        assert_eq!(customer_name_problem("acme"), None);
        assert_eq!(customer_name_problem("c-00042"), None);
        assert!(customer_name_problem("").is_some());
        assert!(customer_name_problem("Acme").is_some());
        assert!(customer_name_problem("a b").is_some());
        assert!(customer_name_problem("-x").is_some());
        assert_eq!(plugin_name_problem("goods-acme"), None);
        assert!(plugin_name_problem("goods-").is_some());
        assert!(plugin_name_problem("9goods").is_some());
    }

    #[test]
    fn bad_ranges_say_what_ranges_look_like() {
        let e = parse_range("version two").unwrap_err().to_string();
        assert!(e.contains("\"version two\"") && e.contains("^1.2"), "{e}");
        assert_eq!(parse_range(" ^1.2 ").unwrap().to_string(), "^1.2");
    }
}

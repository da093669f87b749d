//! The read side behind `status`, `GET /` and `GET /api/status`: every
//! customer (or one) with assignments, the agent's last report of what is
//! installed, and the newest deployments with each package's last state.
//! A handful of set queries, never one query per customer.

use std::collections::{BTreeMap, HashMap};

use plinth_package::protocol::InstalledPackage;
use serde::Serialize;

use super::{Db, DbError};

/// How many of each customer's newest deployments are shown.
pub const DEPLOYMENTS_SHOWN: i64 = 3;

#[derive(Debug, Clone, Serialize)]
pub struct Overview {
    pub customers: Vec<CustomerOverview>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CustomerOverview {
    pub name: String,
    pub assignments: Vec<AssignmentOverview>,
    /// What the agent said in its last `hello`; `None` if it never connected.
    pub agent: Option<AgentOverview>,
    /// Newest first.
    pub deployments: Vec<DeploymentOverview>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AssignmentOverview {
    pub plugin: String,
    pub range: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct AgentOverview {
    pub connected: bool,
    pub agent_version: String,
    pub protocol: i64,
    pub installed: Vec<InstalledPackage>,
    pub last_deployment_id: Option<String>,
    pub hello_at_ms: i64,
    pub last_seen_ms: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct DeploymentOverview {
    pub id: String,
    /// Unix seconds.
    pub issued_at: i64,
    /// Unix seconds.
    pub expires_at: i64,
    /// `open`, `success`, `failure`, `cancelled` or `superseded`.
    pub outcome: String,
    pub outcome_reason: Option<String>,
    /// In install order.
    pub packages: Vec<PackageOverview>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PackageOverview {
    pub name: String,
    pub version: String,
    /// The last state the agent reported for this package, if any.
    pub state: Option<String>,
    pub reason: Option<String>,
}

/// The overview of every customer, or of the one with `customer_id`.
pub async fn load(db: &Db, customer_id: Option<i64>) -> Result<Overview, DbError> {
    let filter = |column: &str| match customer_id {
        Some(_) => format!("WHERE {column} = ?"),
        None => String::new(),
    };
    let bind = customer_id.unwrap_or_default();

    let sql = format!(
        "SELECT id, name FROM customers {} ORDER BY name",
        filter("id")
    );
    let customers: Vec<(i64, String)> = query_as_filtered(db, &sql, customer_id, bind).await?;

    let sql = format!(
        "SELECT customer_id, plugin, version_range FROM assignments {} ORDER BY plugin",
        filter("customer_id")
    );
    let assignments: Vec<(i64, String, String)> =
        query_as_filtered(db, &sql, customer_id, bind).await?;

    let sql = format!(
        "SELECT customer_id, connected, agent_version, protocol, installed, last_deployment_id, hello_at, last_seen \
         FROM agent_hellos {}",
        filter("customer_id")
    );
    type HelloRow = (i64, i64, String, i64, String, Option<String>, i64, i64);
    let hellos: Vec<HelloRow> = query_as_filtered(db, &sql, customer_id, bind).await?;

    // The newest deployments of each customer, by a window over serial.
    let ranked = format!(
        "SELECT serial, id, customer_id, issued_at, expires_at, outcome, outcome_reason, \
         ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY serial DESC) AS rn \
         FROM deployments {}",
        filter("customer_id")
    );
    let sql = format!(
        "SELECT serial, id, customer_id, issued_at, expires_at, outcome, outcome_reason \
         FROM ({ranked}) r WHERE rn <= {DEPLOYMENTS_SHOWN} ORDER BY serial DESC"
    );
    type DeploymentRow = (i64, String, i64, i64, i64, Option<String>, Option<String>);
    let deployments: Vec<DeploymentRow> = query_as_filtered(db, &sql, customer_id, bind).await?;

    let sql = format!(
        "SELECT p.deployment_id, p.name, p.version FROM deployment_packages p \
         JOIN ({ranked}) r ON r.id = p.deployment_id WHERE r.rn <= {DEPLOYMENTS_SHOWN} \
         ORDER BY p.deployment_id, p.position"
    );
    let packages: Vec<(String, String, String)> =
        query_as_filtered(db, &sql, customer_id, bind).await?;

    let sql = format!(
        "SELECT s.deployment_id, s.package, s.state, s.reason FROM status_reports s \
         JOIN ({ranked}) r ON r.id = s.deployment_id AND r.customer_id = s.customer_id \
         WHERE r.rn <= {DEPLOYMENTS_SHOWN} AND s.package IS NOT NULL ORDER BY s.seq"
    );
    let reports: Vec<(String, Option<String>, String, Option<String>)> =
        query_as_filtered(db, &sql, customer_id, bind).await?;

    // Last state per (deployment, package): later seqs overwrite.
    let mut last_state: HashMap<(String, String), (String, Option<String>)> = HashMap::new();
    for (deployment_id, package, state, reason) in reports {
        if let Some(package) = package {
            last_state.insert((deployment_id, package), (state, reason));
        }
    }
    let mut packages_of: HashMap<String, Vec<PackageOverview>> = HashMap::new();
    for (deployment_id, name, version) in packages {
        let (state, reason) = last_state
            .remove(&(deployment_id.clone(), name.clone()))
            .map_or((None, None), |(s, r)| (Some(s), r));
        packages_of
            .entry(deployment_id)
            .or_default()
            .push(PackageOverview {
                name,
                version,
                state,
                reason,
            });
    }

    let mut by_customer: BTreeMap<i64, CustomerOverview> = customers
        .into_iter()
        .map(|(id, name)| {
            (
                id,
                CustomerOverview {
                    name,
                    assignments: Vec::new(),
                    agent: None,
                    deployments: Vec::new(),
                },
            )
        })
        .collect();
    for (customer_id, plugin, range) in assignments {
        if let Some(c) = by_customer.get_mut(&customer_id) {
            c.assignments.push(AssignmentOverview { plugin, range });
        }
    }
    for (
        customer_id,
        connected,
        agent_version,
        protocol,
        installed,
        last_deployment_id,
        hello_at,
        last_seen,
    ) in hellos
    {
        if let Some(c) = by_customer.get_mut(&customer_id) {
            let installed = serde_json::from_str(&installed).map_err(|e| {
                DbError::Corrupt(format!("the installed set of customer {}: {e}", c.name))
            })?;
            c.agent = Some(AgentOverview {
                connected: connected != 0,
                agent_version,
                protocol,
                installed,
                last_deployment_id,
                hello_at_ms: hello_at,
                last_seen_ms: last_seen,
            });
        }
    }
    for (_, id, customer_id, issued_at, expires_at, outcome, outcome_reason) in deployments {
        if let Some(c) = by_customer.get_mut(&customer_id) {
            let packages = packages_of.remove(&id).unwrap_or_default();
            c.deployments.push(DeploymentOverview {
                id,
                issued_at,
                expires_at,
                outcome: outcome.unwrap_or_else(|| "open".to_string()),
                outcome_reason,
                packages,
            });
        }
    }
    let mut customers: Vec<CustomerOverview> = by_customer.into_values().collect();
    customers.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Overview { customers })
}

/// Runs `sql`, binding the customer id once when filtering by customer.
async fn query_as_filtered<T>(
    db: &Db,
    sql: &str,
    customer_id: Option<i64>,
    bind: i64,
) -> Result<Vec<T>, DbError>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> + Send + Unpin,
{
    let sql = db.sql(sql);
    let query = sqlx::query_as::<_, T>(&sql);
    let query = if customer_id.is_some() {
        query.bind(bind)
    } else {
        query
    };
    Ok(query.fetch_all(db.pool()).await?)
}

//! The `plinth-vendor` command line: the clap definitions and what each
//! command prints. Every command opens the state it needs, calls the
//! operations on [`Vendor`] and turns their results into lines for the
//! operator; errors come back as [`VendorError`] for `main` to print.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::Vendor;
use crate::db::overview::{self, Overview};
use crate::deploy::{DEFAULT_TTL_SECS, PushResult};
use crate::error::VendorError;
use crate::http::{self, AppState, ServerOptions};
use crate::plan::{Plan, Unsatisfiable};
use crate::signing_key::{self, KeySource};

pub const DEFAULT_DB: &str = "sqlite://vendor-data/vendor.db?mode=rwc";
pub const DEFAULT_STORE: &str = "vendor-data/packages";
pub const DEFAULT_BIND: &str = "127.0.0.1:7400";

/// The Plinth vendor server: publish plugin packages, assign them to
/// customers, and push signed deployments to customers' hosts.
#[derive(Debug, Parser)]
#[command(name = "plinth-vendor", version)]
pub struct Cli {
    /// Database URL: postgres://user@host/db, or sqlite://path for a trial.
    #[arg(long, global = true, env = "PLINTH_VENDOR_DB", default_value = DEFAULT_DB)]
    pub db: String,

    /// Directory of the package store.
    #[arg(long, global = true, env = "PLINTH_VENDOR_STORE", default_value = DEFAULT_STORE)]
    pub store: PathBuf,

    /// File holding the signing key's hex seed (else the PLINTH_VENDOR_KEY
    /// environment variable holds the seed itself).
    #[arg(long, global = true, env = "PLINTH_VENDOR_KEY_FILE")]
    pub key_file: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage the signing key.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Run the server: agents' websocket, downloads, status page.
    Serve {
        /// Address to listen on.
        #[arg(long, env = "PLINTH_VENDOR_BIND", default_value = DEFAULT_BIND)]
        bind: String,
        /// Validity of deployments the server reissues, in seconds.
        #[arg(long, default_value_t = DEFAULT_TTL_SECS)]
        ttl_secs: i64,
    },
    /// Validate and publish a package archive, then show the plans it changes.
    Publish {
        zip: PathBuf,
        /// Also push to every affected customer.
        #[arg(long)]
        push: bool,
        /// Validity of pushed deployments, in seconds.
        #[arg(long, default_value_t = DEFAULT_TTL_SECS)]
        ttl_secs: i64,
    },
    /// Manage customers.
    Customer {
        #[command(subcommand)]
        command: CustomerCommand,
    },
    /// Assign a plugin range to a customer (replaces its earlier range).
    Assign {
        customer: String,
        plugin: String,
        /// A semver range, e.g. ^1.2, ~1.2.3, =1.4.0, ">=1.0, <2".
        range: String,
    },
    /// Remove a customer's assignment of a plugin.
    Unassign { customer: String, plugin: String },
    /// Show a customer's plan, or why there is none.
    Plan { customer: String },
    /// Sign and record deployments of current plans (one customer, or
    /// every customer with assignments); the running server delivers them.
    Push {
        customer: Option<String>,
        /// Validity of the deployments, in seconds.
        #[arg(long, default_value_t = DEFAULT_TTL_SECS)]
        ttl_secs: i64,
    },
    /// Cancel the customer's newest unfinished deployment.
    Cancel {
        customer: String,
        #[arg(long, default_value = "cancelled by the vendor")]
        reason: String,
    },
    /// Customers, assignments, installed sets, connections, deployments.
    Status {
        customer: Option<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Write a new secret key to a file (mode 0600) and print its public key.
    Generate {
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum CustomerCommand {
    /// Add customers (all or none) and print `<name> <token>` for each;
    /// tokens are shown only now.
    Add {
        #[arg(required = true)]
        names: Vec<String>,
        /// Also assign `PLUGIN=RANGE` to each of them (repeatable), in the
        /// same transaction.
        #[arg(long = "assign", value_name = "PLUGIN=RANGE")]
        assign: Vec<String>,
    },
    /// List customers.
    List,
}

/// Whether a command is long-running (it logs at `info`).
pub fn is_server(cli: &Cli) -> bool {
    matches!(cli.command, Command::Serve { .. })
}

/// Runs the command, printing to `out`.
pub async fn run(cli: Cli, out: &mut impl Write) -> Result<ExitCode, VendorError> {
    let key_source = KeySource::from_options(cli.key_file.clone());
    if let Command::Key {
        command: KeyCommand::Generate { out: path },
    } = &cli.command
    {
        let key = signing_key::generate(path)?;
        line(out, format_args!("{}", key.public_hex()))?;
        eprintln!(
            "wrote the secret key to {} (keep it private; pass it with --key-file or PLINTH_VENDOR_KEY_FILE). \
             The line above is the public key (id {}): hosts pin it as vendor.public_key.",
            path.display(),
            key.key_id()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let vendor = Vendor::open(&cli.db, cli.store.clone()).await?;
    let code = match cli.command {
        Command::Key { .. } => ExitCode::SUCCESS,
        Command::Serve { bind, ttl_secs } => {
            let key = signing_key::require(key_source.as_ref())?;
            serve(vendor, key, &bind, ttl_secs, out).await?
        }
        Command::Publish {
            zip,
            push,
            ttl_secs,
        } => {
            let key = if push {
                Some(signing_key::require(key_source.as_ref())?)
            } else {
                None
            };
            let published = vendor.publish(&zip).await?;
            if published.already_published {
                line(
                    out,
                    format_args!(
                        "{} {} is already published with these bytes (sha256 {}); nothing changed",
                        published.name, published.version, published.sha256
                    ),
                )?;
            } else {
                line(
                    out,
                    format_args!(
                        "published {} {} ({} bytes, sha256 {})",
                        published.name, published.version, published.size, published.sha256
                    ),
                )?;
            }
            let affected = vendor.customers_affected_by(&published.name).await?;
            line(out, format_args!("customers affected: {}", affected.len()))?;
            for customer in &affected {
                let plan = vendor.plan_of(customer).await?;
                line(out, format_args!("  {}", plan_line(&customer.name, &plan)))?;
            }
            match key {
                Some(key) if !affected.is_empty() => {
                    let results = vendor.push_to(&key, &affected, ttl_secs).await?;
                    print_push(out, &results)?
                }
                _ => ExitCode::SUCCESS,
            }
        }
        Command::Customer {
            command: CustomerCommand::Add { names, assign },
        } => {
            let mut pairs = Vec::with_capacity(assign.len());
            for item in &assign {
                let Some((plugin, range)) = item.split_once('=') else {
                    return Err(VendorError::BadRange {
                        range: item.clone(),
                        reason: "--assign takes PLUGIN=RANGE, e.g. --assign goods=^1".into(),
                    });
                };
                pairs.push((plugin.trim().to_owned(), range.trim().to_owned()));
            }
            let issued = vendor.add_customers(&names, &pairs).await?;
            for (name, token) in &issued {
                line(out, format_args!("{name} {token}"))?;
            }
            ExitCode::SUCCESS
        }
        Command::Customer {
            command: CustomerCommand::List,
        } => {
            let overview = overview::load(&vendor.db, None).await?;
            for c in &overview.customers {
                let connected = match &c.agent {
                    Some(a) if a.connected => "connected",
                    Some(_) => "disconnected",
                    None => "never connected",
                };
                let assigned: Vec<String> = c
                    .assignments
                    .iter()
                    .map(|a| format!("{} {}", a.plugin, a.range))
                    .collect();
                line(
                    out,
                    format_args!(
                        "{}\t{connected}\t{}",
                        c.name,
                        if assigned.is_empty() {
                            "(no assignments)".to_string()
                        } else {
                            assigned.join(", ")
                        }
                    ),
                )?;
            }
            ExitCode::SUCCESS
        }
        Command::Assign {
            customer,
            plugin,
            range,
        } => {
            let plan = vendor.assign(&customer, &plugin, &range).await?;
            line(out, format_args!("assigned {plugin} {range} to {customer}"))?;
            line(out, format_args!("{}", plan_line(&customer, &plan)))?;
            ExitCode::SUCCESS
        }
        Command::Unassign { customer, plugin } => {
            let plan = vendor.unassign(&customer, &plugin).await?;
            line(out, format_args!("unassigned {plugin} from {customer}"))?;
            line(out, format_args!("{}", plan_line(&customer, &plan)))?;
            ExitCode::SUCCESS
        }
        Command::Plan { customer } => {
            let found = vendor.customer(&customer).await?;
            let plan = vendor.plan_of(&found).await??;
            line(
                out,
                format_args!(
                    "plan for {customer} ({} packages, in install order):",
                    plan.packages.len()
                ),
            )?;
            for p in &plan.packages {
                line(
                    out,
                    format_args!(
                        "  {} {}  ({} bytes, sha256 {})",
                        p.name, p.version, p.size, p.sha256
                    ),
                )?;
            }
            ExitCode::SUCCESS
        }
        Command::Push { customer, ttl_secs } => {
            let key = signing_key::require(key_source.as_ref())?;
            let results = vendor.push(&key, customer.as_deref(), ttl_secs).await?;
            if results.is_empty() {
                line(
                    out,
                    format_args!("no customer has assignments; nothing to push"),
                )?;
            }
            print_push(out, &results)?
        }
        Command::Cancel { customer, reason } => {
            let id = vendor.cancel(&customer, &reason).await?;
            line(
                out,
                format_args!(
                    "{customer}: cancelled deployment {id}; a running server tells the connected agents"
                ),
            )?;
            ExitCode::SUCCESS
        }
        Command::Status { customer, json } => {
            let id = match &customer {
                Some(name) => Some(vendor.customer(name).await?.id),
                None => None,
            };
            let overview = overview::load(&vendor.db, id).await?;
            if json {
                let text = serde_json::to_string_pretty(&overview)
                    .map_err(|e| crate::db::DbError::Corrupt(e.to_string()))?;
                line(out, format_args!("{text}"))?;
            } else {
                print_status(out, &overview)?;
            }
            ExitCode::SUCCESS
        }
    };
    Ok(code)
}

fn line(out: &mut impl Write, args: std::fmt::Arguments<'_>) -> Result<(), VendorError> {
    writeln!(out, "{args}").map_err(|source| VendorError::Write {
        path: "standard output".into(),
        source,
    })
}

fn plan_line(customer: &str, plan: &Result<Plan, Unsatisfiable>) -> String {
    match plan {
        Ok(plan) => format!("{customer}: plan {plan}"),
        Err(u) => format!(
            "{customer}: no plan (nothing will be pushed): {}",
            u.reason.replace('\n', " ")
        ),
    }
}

/// One line per customer; failure when any customer was not pushed.
fn print_push(out: &mut impl Write, results: &[PushResult]) -> Result<ExitCode, VendorError> {
    for result in results {
        line(out, format_args!("{}", result.line()))?;
    }
    let failed = results.iter().filter(|r| !r.pushed()).count();
    if failed > 0 {
        eprintln!(
            "{failed} of {} customers were not pushed; fix their assignments (see the lines above) and push them again",
            results.len()
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_status(out: &mut impl Write, overview: &Overview) -> Result<(), VendorError> {
    for c in &overview.customers {
        let agent = match &c.agent {
            Some(a) if a.connected => format!("connected (agent {})", a.agent_version),
            Some(a) => format!(
                "disconnected (agent {}, last seen {})",
                a.agent_version,
                time_ms(a.last_seen_ms)
            ),
            None => "never connected".to_string(),
        };
        line(out, format_args!("{}  {agent}", c.name))?;
        let assigned: Vec<String> = c
            .assignments
            .iter()
            .map(|a| format!("{} {}", a.plugin, a.range))
            .collect();
        line(out, format_args!("  assigned: {}", or_none(&assigned)))?;
        if let Some(a) = &c.agent {
            let installed: Vec<String> = a
                .installed
                .iter()
                .map(|p| {
                    format!(
                        "{} {}{}",
                        p.name,
                        p.version,
                        if p.enabled { "" } else { " (disabled)" }
                    )
                })
                .collect();
            line(out, format_args!("  installed: {}", or_none(&installed)))?;
        }
        for d in &c.deployments {
            let reason = d
                .outcome_reason
                .as_ref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default();
            line(
                out,
                format_args!(
                    "  deployment {} issued {}: {}{reason}",
                    d.id,
                    time_ms(d.issued_at.saturating_mul(1000)),
                    d.outcome
                ),
            )?;
            for p in &d.packages {
                let state = p.state.as_deref().unwrap_or("not reported");
                let reason = p
                    .reason
                    .as_ref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default();
                line(
                    out,
                    format_args!("    {} {}: {state}{reason}", p.name, p.version),
                )?;
            }
        }
    }
    Ok(())
}

fn or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_string()
    } else {
        items.join(", ")
    }
}

fn time_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%SZ").to_string())
        .unwrap_or_else(|| ms.to_string())
}

async fn serve(
    vendor: Vendor,
    key: plinth_package::VendorKey,
    bind: &str,
    ttl_secs: i64,
    out: &mut impl Write,
) -> Result<ExitCode, VendorError> {
    raise_open_file_limit();
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|source| VendorError::Serve {
            addr: bind.to_owned(),
            source,
        })?;
    let public = key.public_hex();
    let options = ServerOptions {
        deployment_ttl_secs: ttl_secs,
        ..ServerOptions::default()
    };
    let server = http::start(AppState::new(vendor, key, options), listener).await?;
    line(
        out,
        format_args!(
            "plinth-vendor listening on http://{} (hosts pin vendor.public_key = {public})",
            server.addr()
        ),
    )?;
    let _ = out.flush();
    shutdown_signal().await;
    tracing::info!("shutting down");
    server
        .shutdown()
        .await
        .map_err(|source| VendorError::Serve {
            addr: bind.to_owned(),
            source,
        })?;
    Ok(ExitCode::SUCCESS)
}

/// Each agent holds a socket, and 10,000 of them exceed the usual soft
/// limit of 1,024 descriptors: raise the soft limit to the hard one.
fn raise_open_file_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::info!(limit, "open file limit"),
        Err(error) => tracing::warn!(%error, "cannot raise the open file limit"),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
        let cli =
            Cli::try_parse_from(["plinth-vendor", "push", "acme", "--ttl-secs", "60"]).unwrap();
        assert!(
            matches!(cli.command, Command::Push { customer: Some(ref c), ttl_secs: 60 } if c == "acme")
        );
        assert!(Cli::try_parse_from(["plinth-vendor", "customer", "add"]).is_err());
    }
}

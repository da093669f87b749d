//! `cargo xtask openapi-check`: runs schemathesis (pinned, installed with
//! pip into `target/schemathesis-venv`) with `--checks all` against a real
//! host (`plinth serve`, fresh SQLite database, called as the bootstrap
//! admin) and a real vendor server (`plinth-vendor serve`, fresh SQLite
//! state, called with a customer's token), each with the document it
//! serves at `/api/openapi.json`. Bounded to a few examples per operation
//! so the whole run stays under two minutes after the build. Fails when
//! schemathesis finds an answer the document does not describe.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::util::{cargo, http_call, target_dir, workspace_root};
use crate::vendor_cli::{self, VendorCli};

/// Pinned: schemathesis 4.1.4 with the hypothesis release it was built
/// against (newer hypothesis breaks its generators).
const SCHEMATHESIS: &str = "schemathesis==4.1.4";
const HYPOTHESIS: &str = "hypothesis==6.131.9";
const TOKEN: &str = "openapi-check-bootstrap-token";
const CUSTOMER: &str = "openapi-check";
/// Generated cases per operation and phase: enough to reach every
/// documented status, few enough for the time bound.
const MAX_EXAMPLES: &str = "10";
/// Each server's run is stopped after this long, so a hang fails the
/// check instead of holding up CI.
const RUN_LIMIT_SECS: &str = "100";

/// Kills the server when dropped, so a failed run leaves nothing behind.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn run(args: &[String]) -> Result<()> {
    if let Some(arg) = args.first() {
        bail!("openapi-check takes no arguments (got `{arg}`)");
    }
    let root = workspace_root();
    let target = target_dir(&root);
    let st = install_schemathesis(&target)?;
    if !cargo(&root)
        .args(["build", "-p", "plinth-host", "-p", "plinth-vendor"])
        .args(["--bin", "plinth", "--bin", "plinth-vendor"])
        .status()?
        .success()
    {
        bail!("building the host and the vendor failed");
    }
    let work = std::env::temp_dir().join(format!("plinth-openapi-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let started = Instant::now();
    let result = check_both(&root, &target, &work, &st);
    let _ = std::fs::remove_dir_all(&work);
    let failed = result?;
    println!(
        "openapi-check: host and vendor checked in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    if !failed.is_empty() {
        bail!(
            "schemathesis found the OpenAPI document and the {} disagreeing",
            failed.join(" and the ")
        );
    }
    Ok(())
}

/// `target/schemathesis-venv/bin/st`, installing it first if missing.
fn install_schemathesis(target: &Path) -> Result<PathBuf> {
    let venv = target.join("schemathesis-venv");
    let st = venv.join("bin").join("st");
    if st.exists() {
        return Ok(st);
    }
    let created = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .context("running python3 -m venv (install python3 and python3-venv)")?
        .success();
    if !created {
        bail!(
            "python3 -m venv {} failed; on Debian install python3-venv (.ci/run does)",
            venv.display()
        );
    }
    let installed = Command::new(venv.join("bin").join("pip"))
        .args(["install", "-q", SCHEMATHESIS, HYPOTHESIS])
        .status()
        .context("pip install schemathesis")?
        .success();
    if !installed {
        // A half-made venv would be taken as ready next time.
        let _ = std::fs::remove_dir_all(&venv);
        bail!(
            "could not install {SCHEMATHESIS} with pip into {}",
            venv.display()
        );
    }
    Ok(st)
}

/// Starts both servers, the host's upgrade agent connected to the vendor
/// (so the agent operations answer as in production), and runs
/// schemathesis against each; returns the names of those it found
/// failures in.
fn check_both(root: &Path, target: &Path, work: &Path, st: &Path) -> Result<Vec<&'static str>> {
    let (vendor, public_key) =
        VendorCli::fresh(vendor_cli::binary(target, "debug"), work.join("vendor"))?;
    let customer = vendor.add_customers(&[CUSTOMER.to_owned()])?.remove(0).1;
    let vendor_addr = free_addr()?;
    let _vendor = vendor.serve(vendor_addr)?;
    wait_healthy("vendor", vendor_addr)?;
    let host_addr = free_addr()?;
    let agent = serde_json::json!({
        "endpoint": format!("ws://{vendor_addr}/api/agent"),
        "customer": CUSTOMER,
        "customer_token": customer,
        "public_key": public_key,
    });
    let _host = start_host(root, target, work, host_addr, agent)?;
    wait_healthy("host", host_addr)?;
    let mut failed = Vec::new();
    for (name, addr, token) in [
        ("host", host_addr, TOKEN),
        ("vendor", vendor_addr, &customer),
    ] {
        let started = Instant::now();
        let status = schemathesis(st, root, addr, token)?;
        println!(
            "openapi-check: {name}: {} in {:.1} s",
            if status.success() { "passed" } else { "FAILED" },
            started.elapsed().as_secs_f64()
        );
        if !status.success() {
            failed.push(name);
        }
    }
    Ok(failed)
}

fn free_addr() -> Result<SocketAddr> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// `plinth serve` on `addr` with a fresh SQLite database under `work`
/// and `vendor` as its upgrade agent's settings.
fn start_host(
    root: &Path,
    target: &Path,
    work: &Path,
    addr: SocketAddr,
    vendor: serde_json::Value,
) -> Result<Guard> {
    let data = work.join("host");
    let config = serde_json::json!({
        "data_dir": data,
        "public_dir": root.join("public"),
        "server": { "bind": addr.to_string() },
        // Every case comes from one address: at the default 20 sign-ins a
        // minute the run would check the limiter (sign_in_limits does)
        // instead of sign-in itself.
        "admin": { "token": TOKEN, "sign_in": { "per_ip_per_minute": 100_000 } },
        "vendor": vendor,
        "database": {
            "url": format!("sqlite://{}", data.join("plinth.db").display()),
            "schema_dir": root.join("common-sql"),
        },
    });
    std::fs::create_dir_all(&data)?;
    let config_path = work.join("config.json");
    std::fs::write(&config_path, serde_json::to_string_pretty(&config)?)?;
    let log = std::fs::File::create(work.join("host.log"))?;
    Ok(Guard(
        Command::new(target.join("debug").join("plinth"))
            .args(["serve", "--config"])
            .arg(&config_path)
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting plinth serve")?,
    ))
}

/// Polls `GET /healthz` until it answers 200, for at most a minute.
fn wait_healthy(name: &str, addr: SocketAddr) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok((200, _)) = http_call(addr, "GET", "/healthz", None, "text/plain", b"") {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the {name} on {addr} did not answer /healthz with 200 within a minute");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One schemathesis run with every check against the server on `addr`,
/// calling with `token` as the bearer token. Its settings and hooks are in
/// `xtask/schemathesis/` (each says why it is there).
fn schemathesis(st: &Path, root: &Path, addr: SocketAddr, token: &str) -> Result<ExitStatus> {
    let settings = root.join("xtask").join("schemathesis");
    Command::new("timeout")
        .arg(RUN_LIMIT_SECS)
        .arg(st)
        .arg("--config-file")
        .arg(settings.join("schemathesis.toml"))
        .args(["run", &format!("http://{addr}/api/openapi.json")])
        .args(["--checks", "all", "--max-examples", MAX_EXAMPLES])
        .args(["--request-timeout", "10"])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args(["--generation-database", "none", "--no-color"])
        // schemathesis imports its hooks as a module from the working
        // directory.
        .current_dir(&settings)
        .env("SCHEMATHESIS_HOOKS", "plinth_hooks")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        // hypothesis keeps a cache in ./.hypothesis unless told otherwise;
        // beside the venv it stays under target/.
        .env(
            "HYPOTHESIS_STORAGE_DIRECTORY",
            st.parent()
                .and_then(Path::parent)
                .unwrap_or(root)
                .join("hypothesis"),
        )
        .status()
        .context("running schemathesis")
}

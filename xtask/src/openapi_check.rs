//! `cargo xtask openapi-check`: runs schemathesis (pinned, installed with
//! pip into `target/schemathesis-venv`) with `--checks all` against a real
//! host started on a loopback port with a fresh SQLite database, calling as
//! the bootstrap admin, bounded to a few examples per operation so the run
//! stays under two minutes. Fails when schemathesis finds a failure.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::util::{cargo, target_dir, workspace_root};

/// Pinned: schemathesis 4.1.4 with the hypothesis release it was built
/// against (newer hypothesis breaks its generators).
const SCHEMATHESIS: &str = "schemathesis==4.1.4";
const HYPOTHESIS: &str = "hypothesis==6.131.9";
const TOKEN: &str = "openapi-check-bootstrap-token";

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
    let venv = target.join("schemathesis-venv");
    let st = venv.join("bin").join("st");
    if !st.exists() {
        let ok = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .context("python3 -m venv")?
            .success();
        let pip = venv.join("bin").join("pip");
        if !ok
            || !Command::new(&pip)
                .args(["install", "-q", SCHEMATHESIS, HYPOTHESIS])
                .status()
                .context("pip install schemathesis")?
                .success()
        {
            bail!(
                "could not install {SCHEMATHESIS} with pip into {}",
                venv.display()
            );
        }
    }
    if !cargo(&root)
        .args(["build", "-p", "plinth-host", "--bin", "plinth"])
        .status()?
        .success()
    {
        bail!("building the host failed");
    }
    let work = std::env::temp_dir().join(format!("plinth-openapi-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let addr = TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let config = serde_json::json!({
        "data_dir": work.join("data"),
        "public_dir": root.join("public"),
        "server": { "bind": addr.to_string() },
        "admin": { "token": TOKEN },
        "database": {
            "url": format!("sqlite://{}", work.join("data").join("plinth.db").display()),
            "schema_dir": root.join("common-sql"),
        },
    });
    let config_path = work.join("config.json");
    std::fs::write(&config_path, serde_json::to_string_pretty(&config)?)?;
    let _host = Guard(
        Command::new(target.join("debug").join("plinth"))
            .args(["serve", "--config"])
            .arg(&config_path)
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .spawn()
            .context("starting plinth serve")?,
    );
    let started = Instant::now();
    while std::net::TcpStream::connect(addr).is_err() {
        if started.elapsed() > Duration::from_secs(60) {
            bail!("the host did not listen on {addr} within a minute");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(2));
    let status = Command::new("timeout")
        .arg("120")
        .arg(&st)
        .args(["run", &format!("http://{addr}/api/openapi.json")])
        .args([
            "--checks",
            "all",
            "--max-examples",
            "10",
            "--request-timeout",
            "10",
        ])
        .args(["--header", &format!("Authorization: Bearer {TOKEN}")])
        .arg("--no-color")
        .status()
        .context("running schemathesis")?;
    let _ = std::fs::remove_dir_all(&work);
    if !status.success() {
        bail!("schemathesis found the OpenAPI document and the host disagreeing ({status})");
    }
    Ok(())
}

//! `cargo xtask test`: the whole test suite, as CI runs it.
//!
//! Builds the example plugins (the host's integration tests load them) and
//! the `plinth-vendor` binary (the upgrade-agent tests run it as a
//! process) first, then runs every host-target test in the workspace. The SQL-facing
//! tests create their own databases on the PostgreSQL and MariaDB servers
//! when they answer (set `PLINTH_TEST_POSTGRES_URL` / `PLINTH_TEST_MYSQL_URL`
//! to point elsewhere); without them they run on SQLite alone and say so,
//! except under `CI`, where a missing server is a failure. A test that
//! hangs is stopped and named (see [`crate::hang_watch`]).

use anyhow::{Result, bail};

use crate::build_plugins;
use crate::hang_watch;
use crate::util::{cargo, workspace_root};

pub fn run(args: &[String]) -> Result<()> {
    build_plugins::run(&[])?;
    // The host's upgrade-agent tests run the real vendor server as a
    // process; build it first so they never race its build.
    let status = cargo(&workspace_root())
        .args(["build", "-p", "plinth-vendor"])
        .status()?;
    if !status.success() {
        bail!("building plinth-vendor failed ({status})");
    }
    let mut command = cargo(&workspace_root());
    command.args(["test", "--workspace"]);
    for plugin in build_plugins::PLUGINS {
        command.args(["--exclude", plugin]);
    }
    command.args(args);
    let status = hang_watch::run_watched(command)?;
    if !status.success() {
        bail!("tests failed ({status})");
    }
    Ok(())
}

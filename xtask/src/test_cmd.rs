//! `cargo xtask test`: the whole test suite, as CI runs it.
//!
//! Builds the example plugins (the host's integration tests load them) and
//! the `plinth-vendor` binary (the upgrade-agent tests run it as a
//! process) first, then runs every host-target test in the workspace. The SQL-facing
//! tests create their own databases on the PostgreSQL and MariaDB servers
//! when they answer (set `PLINTH_TEST_POSTGRES_URL` / `PLINTH_TEST_MYSQL_URL`
//! to point elsewhere); without them they run on SQLite alone and say so,
//! except under `CI`, where a missing server is a failure. A test that
//! hangs is stopped and named (see [`crate::hang_watch`]). The few tests
//! that measure their own process ([`ALONE`]) run last, in a process of
//! their own.

use std::process::Command;

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
    if !args.is_empty() {
        // A developer's own selection runs as asked, in one process.
        let mut selected = workspace_tests();
        selected.args(args);
        return run_tests(selected);
    }
    let mut rest = workspace_tests();
    rest.arg("--");
    for filter in ALONE {
        rest.args(["--skip", filter]);
    }
    // Both run whatever the first found, so one run reports every failure.
    let rest = run_tests(rest);
    // The same package selection as the first run, narrowed to the
    // integration binaries: `-p plinth-host` alone would resolve features
    // differently and rebuild wasmtime.
    let mut alone = workspace_tests();
    alone.args(["--test", "all", "--"]);
    alone.args(ALONE).arg("--test-threads=1");
    alone.env(ALONE_ENV, "1");
    let alone = run_tests(alone);
    rest.and(alone)
}

/// The host tests that assert on their own process's resident memory or
/// working directory (the in-process host against a hostile vendor, the
/// plugin query of a gigabyte). Beside other tests every allocation of
/// theirs would count too, so they run after the rest in a process of
/// their own, one at a time, with [`ALONE_ENV`] set to tell them so.
const ALONE: &[&str] = &[
    "agent_hostile_vendor::",
    "plugin_sql_walls::a_thousand_rows_of_one_megabyte",
];
const ALONE_ENV: &str = "PLINTH_TEST_PROCESS_ALONE";

/// `cargo test` over every host-target crate of the workspace.
fn workspace_tests() -> Command {
    let mut command = cargo(&workspace_root());
    command.args(["test", "--workspace"]);
    for plugin in build_plugins::PLUGINS {
        command.args(["--exclude", plugin]);
    }
    command
}

fn run_tests(command: Command) -> Result<()> {
    let status = hang_watch::run_watched(command)?;
    if !status.success() {
        bail!("tests failed ({status})");
    }
    Ok(())
}

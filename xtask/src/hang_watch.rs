//! Stops a test run that hangs, naming the test, instead of letting it run
//! until CI's own limit cuts everything off with no word of which test it
//! was.
//!
//! libtest prints `test NAME has been running for over 60 seconds` once per
//! slow test and `test NAME ... ok|FAILED|ignored` when it ends. The watch
//! passes every line through, keeps the slow tests still running, and when
//! one of them has run past the limit it kills the run (cargo and every
//! process under it: test binaries and the `plinth serve` processes they
//! started) and reports the test. The limit is generous: the slowest test
//! in the suite ends well inside it on a loaded 2-core machine.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// How long a test may run in all, unless `PLINTH_TEST_HANG_SECS` says otherwise.
const DEFAULT_LIMIT: Duration = Duration::from_secs(600);

/// Runs `command` (a `cargo test`), echoing its output, and fails naming
/// the test if one runs past the limit.
pub fn run_watched(mut command: Command) -> Result<ExitStatus> {
    let limit = match std::env::var("PLINTH_TEST_HANG_SECS") {
        Ok(secs) => Duration::from_secs(secs.parse().with_context(|| {
            format!("PLINTH_TEST_HANG_SECS={secs:?} is not a number of seconds")
        })?),
        Err(_) => DEFAULT_LIMIT,
    };
    let mut child = command
        .stdout(Stdio::piped())
        .spawn()
        .context("starting cargo test")?;
    let stdout = child.stdout.take().context("cargo test's output")?;
    let (lines, received) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                return;
            }
        }
    });
    // libtest only speaks of a test once it passes 60 s: it started then.
    let warned_after = Duration::from_secs(60);
    let mut slow: HashMap<String, Instant> = HashMap::new();
    loop {
        match received.recv_timeout(Duration::from_secs(1)) {
            Ok(line) => {
                println!("{line}");
                if let Some(name) = slow_test(&line) {
                    slow.insert(name.to_owned(), Instant::now());
                } else if let Some(name) = ended_test(&line) {
                    slow.remove(name);
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        let hung = slow
            .iter()
            .find(|(_, since)| since.elapsed() + warned_after > limit);
        if let Some((name, _)) = hung {
            kill_tree(child.id());
            let _ = child.wait();
            bail!(
                "test `{name}` ran for over {} s and was stopped as hung; run it alone to see where it waits \
                 (for a host integration test: `cargo test -p plinth-host --test all {name} -- --nocapture`) \
                 (PLINTH_TEST_HANG_SECS sets the limit)",
                limit.as_secs()
            );
        }
    }
    child.wait().context("waiting for cargo test")
}

/// `test NAME has been running for over 60 seconds` → NAME.
fn slow_test(line: &str) -> Option<&str> {
    line.strip_prefix("test ")?
        .strip_suffix(" has been running for over 60 seconds")
}

/// `test NAME ... ok` (or FAILED, ignored, with or without a reason) → NAME.
fn ended_test(line: &str) -> Option<&str> {
    let (name, _) = line.strip_prefix("test ")?.split_once(" ... ")?;
    Some(name)
}

/// SIGKILLs `root` and everything under it, children first found from
/// /proc so nothing is left serving after the run is stopped.
fn kill_tree(root: u32) {
    let mut parents: HashMap<u32, Vec<u32>> = HashMap::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // The command name is in parentheses and may hold spaces: the
            // parent pid is the second field after the last `)`.
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            if let Some(ppid) = ppid {
                parents.entry(ppid).or_default().push(pid);
            }
        }
    }
    let mut order = vec![root];
    let mut i = 0;
    while i < order.len() {
        if let Some(children) = parents.get(&order[i]) {
            order.extend(children);
        }
        i += 1;
    }
    for pid in order.iter().rev() {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .stderr(Stdio::null())
            .status();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libtest_lines_are_read_for_slow_and_ended_tests() {
        assert_eq!(
            slow_test("test a::b has been running for over 60 seconds"),
            Some("a::b")
        );
        assert_eq!(ended_test("test a::b ... ok"), Some("a::b"));
        assert_eq!(ended_test("test a::b ... FAILED"), Some("a::b"));
        assert_eq!(ended_test("test a::b ... ignored, needs x"), Some("a::b"));
        assert_eq!(slow_test("test result: ok. 3 passed"), None);
        assert_eq!(ended_test("running 3 tests"), None);
    }
}

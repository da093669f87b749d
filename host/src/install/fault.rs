//! Fault injection for crash-safety tests. With
//! `PLINTH_FAULT_KILL_AFTER=<step>` in its environment the process sends
//! itself SIGKILL right after journalling that step (e.g. `committed`), so a
//! test can prove that a restart settles every half-done operation. Unset,
//! it does nothing.

use super::journal::Step;

pub const ENV: &str = "PLINTH_FAULT_KILL_AFTER";

pub fn after_step(step: Step) {
    let Some(wanted) = std::env::var_os(ENV) else {
        return;
    };
    if wanted != step.as_str() {
        return;
    }
    tracing::warn!(step = step.as_str(), "{ENV}: killing this process now");
    let pid = std::process::id().to_string();
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &pid])
        .status();
    // `kill` is missing or failed: die just as abruptly.
    std::process::abort();
}

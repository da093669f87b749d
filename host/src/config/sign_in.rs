//! How sign-in is bounded (`admin.sign_in` in `config.json`): the failures
//! that lock an account and for how long, how long a session lasts, and how
//! many sign-in attempts one client address may make per minute. The
//! defaults suit production; tests shorten them.

use serde::{Deserialize, Serialize};

/// `admin.sign_in`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SignInLimits {
    /// Failed sign-ins in a row that lock an account.
    pub max_failures: u32,
    /// How long a locked account stays locked.
    pub lockout_secs: u64,
    /// How long a session lasts after sign-in.
    pub session_hours: u64,
    /// Sign-in attempts one client address may make per minute (a burst of
    /// this many, refilled evenly over the minute).
    pub per_ip_per_minute: u32,
}

impl Default for SignInLimits {
    fn default() -> Self {
        Self {
            max_failures: 5,
            lockout_secs: 15 * 60,
            session_hours: 12,
            per_ip_per_minute: 20,
        }
    }
}

impl SignInLimits {
    /// The first limit out of range, as (key under `admin.sign_in`, reason).
    pub fn problem(&self) -> Option<(&'static str, &'static str)> {
        if self.max_failures < 1 {
            return Some(("max_failures", "must be at least 1"));
        }
        if self.lockout_secs < 1 {
            return Some(("lockout_secs", "must be at least 1"));
        }
        if !(1..=24 * 90).contains(&self.session_hours) {
            return Some(("session_hours", "must be between 1 and 2160 (90 days)"));
        }
        if self.per_ip_per_minute < 1 {
            return Some(("per_ip_per_minute", "must be at least 1"));
        }
        None
    }
}

//! `events` in `config.json`: how the event relay polls, retries and
//! claims deliveries. PostgreSQL wakes the relay with LISTEN/NOTIFY; the
//! other databases are polled every `poll_ms`, and every database gets the
//! slow `fallback_poll_ms` sweep in case a wake-up was missed.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// `events`. Durations are milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventsConfig {
    /// How often the relay looks for new events where the database cannot
    /// notify it (SQLite, MySQL/MariaDB); at least 10.
    pub poll_ms: u64,
    /// The sweep every database gets, notifications or not; at least 100.
    pub fallback_poll_ms: u64,
    /// Failed attempts after which a delivery is dead (1..=100).
    pub max_attempts: u32,
    /// Back-off after the first failure, doubled after each further one.
    pub retry_base_ms: u64,
    /// The longest back-off.
    pub retry_max_ms: u64,
    /// How long a host's claim on a delivery lasts; after that another host
    /// may take it over (a host killed mid-delivery). Longer than a plugin
    /// call may last.
    pub lease_ms: u64,
}

impl Default for EventsConfig {
    fn default() -> Self {
        Self {
            poll_ms: 200,
            fallback_poll_ms: 30_000,
            max_attempts: 5,
            retry_base_ms: 1000,
            retry_max_ms: 300_000,
            lease_ms: 60_000,
        }
    }
}

impl EventsConfig {
    /// The problem with these values, as (key, reason).
    pub fn problem(&self) -> Option<(&'static str, String)> {
        let checks = [
            ("events.poll_ms", self.poll_ms, 10),
            ("events.fallback_poll_ms", self.fallback_poll_ms, 100),
            ("events.retry_base_ms", self.retry_base_ms, 1),
            ("events.retry_max_ms", self.retry_max_ms, self.retry_base_ms),
            ("events.lease_ms", self.lease_ms, 100),
        ];
        for (key, value, least) in checks {
            if value < least {
                return Some((
                    key,
                    format!("{value} is too small: give at least {least} (milliseconds)"),
                ));
            }
        }
        if !(1..=100).contains(&self.max_attempts) {
            return Some((
                "events.max_attempts",
                format!("{} is out of range: give 1..=100", self.max_attempts),
            ));
        }
        None
    }

    /// The wait before attempt `failed + 1`, after `failed` failures.
    pub fn backoff(&self, failed: u32) -> Duration {
        let factor = 1u64 << failed.saturating_sub(1).min(30);
        Duration::from_millis(
            self.retry_base_ms
                .saturating_mul(factor)
                .min(self.retry_max_ms),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let config = EventsConfig {
            retry_base_ms: 100,
            retry_max_ms: 500,
            ..EventsConfig::default()
        };
        let waits: Vec<u64> = (1..=5)
            .map(|n| config.backoff(n).as_millis() as u64)
            .collect();
        assert_eq!(waits, [100, 200, 400, 500, 500]);
    }

    #[test]
    fn bad_values_name_their_key() {
        let config = EventsConfig {
            max_attempts: 0,
            ..EventsConfig::default()
        };
        assert_eq!(config.problem().map(|p| p.0), Some("events.max_attempts"));
        let config = EventsConfig {
            poll_ms: 1,
            ..EventsConfig::default()
        };
        assert_eq!(config.problem().map(|p| p.0), Some("events.poll_ms"));
    }
}

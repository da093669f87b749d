//! The agent's time-outs, rates and caps (`vendor.limits` in
//! `config.json`): how long it waits on the vendor at each step, the
//! slowest download it keeps going, and how often it may reconnect. The
//! defaults suit production; tests shorten them so a stalled vendor is
//! noticed in seconds.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// `vendor.limits`. Every duration is in milliseconds and must be at
/// least 1; the rates at least 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentLimits {
    /// Connecting and the websocket upgrade together.
    pub handshake_timeout_ms: u64,
    /// The vendor's `welcome` after `hello`.
    pub welcome_timeout_ms: u64,
    /// One message sent on the socket; longer means the vendor stopped
    /// reading.
    pub send_timeout_ms: u64,
    /// How often the agent pings the vendor.
    pub ping_every_ms: u64,
    /// Silence from the vendor (no frame at all, pongs included) for this
    /// long ends the connection.
    pub silence_limit_ms: u64,
    /// A session counts as useful (and resets the back-off) once it stayed
    /// up this long, or delivered an offer.
    pub useful_session_ms: u64,
    /// Most connection attempts in any minute.
    pub reconnects_per_minute: u32,
    /// Longest `Retry-After` honoured; a longer one is cut to this.
    pub retry_after_max_ms: u64,
    /// A download read that brings nothing for this long is abandoned (and
    /// resumed by the next attempt).
    pub download_idle_ms: u64,
    /// A download slower than this many bytes per second over
    /// `download_rate_window_ms` is abandoned (and resumed later).
    pub download_min_rate: u64,
    pub download_rate_window_ms: u64,
}

impl Default for AgentLimits {
    fn default() -> Self {
        Self {
            handshake_timeout_ms: 10_000,
            welcome_timeout_ms: 10_000,
            send_timeout_ms: 10_000,
            ping_every_ms: 15_000,
            silence_limit_ms: 45_000,
            useful_session_ms: 60_000,
            reconnects_per_minute: 10,
            retry_after_max_ms: 600_000,
            download_idle_ms: 30_000,
            download_min_rate: 1024,
            download_rate_window_ms: 30_000,
        }
    }
}

impl AgentLimits {
    /// Refuses a zero anywhere (a zero time-out or rate would stall the
    /// agent or refuse every download): `Err` names the key, which must be
    /// at least 1.
    pub fn check(&self) -> Result<(), String> {
        let fields = [
            ("handshake_timeout_ms", self.handshake_timeout_ms),
            ("welcome_timeout_ms", self.welcome_timeout_ms),
            ("send_timeout_ms", self.send_timeout_ms),
            ("ping_every_ms", self.ping_every_ms),
            ("silence_limit_ms", self.silence_limit_ms),
            ("useful_session_ms", self.useful_session_ms),
            (
                "reconnects_per_minute",
                u64::from(self.reconnects_per_minute),
            ),
            ("retry_after_max_ms", self.retry_after_max_ms),
            ("download_idle_ms", self.download_idle_ms),
            ("download_min_rate", self.download_min_rate),
            ("download_rate_window_ms", self.download_rate_window_ms),
        ];
        match fields.iter().find(|(_, value)| *value == 0) {
            Some((name, _)) => Err(format!("vendor.limits.{name}")),
            None => Ok(()),
        }
    }

    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_millis(self.handshake_timeout_ms)
    }
    pub fn welcome_timeout(&self) -> Duration {
        Duration::from_millis(self.welcome_timeout_ms)
    }
    pub fn send_timeout(&self) -> Duration {
        Duration::from_millis(self.send_timeout_ms)
    }
    pub fn ping_every(&self) -> Duration {
        Duration::from_millis(self.ping_every_ms)
    }
    pub fn silence_limit(&self) -> Duration {
        Duration::from_millis(self.silence_limit_ms)
    }
    pub fn useful_session(&self) -> Duration {
        Duration::from_millis(self.useful_session_ms)
    }
    pub fn retry_after_max(&self) -> Duration {
        Duration::from_millis(self.retry_after_max_ms)
    }
    pub fn download_idle(&self) -> Duration {
        Duration::from_millis(self.download_idle_ms)
    }
    pub fn download_rate_window(&self) -> Duration {
        Duration::from_millis(self.download_rate_window_ms)
    }

    /// The longest one package may take to download, all attempts
    /// together: twice what it takes at the minimum rate, plus one idle
    /// time-out and one rate window of slack.
    pub fn download_deadline(&self, size: u64) -> Duration {
        let at_min_rate = Duration::from_secs(size.div_ceil(self.download_min_rate.max(1)));
        at_min_rate
            .saturating_mul(2)
            .saturating_add(self.download_idle())
            .saturating_add(self.download_rate_window())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_pass_and_a_zero_is_named() {
        assert_eq!(AgentLimits::default().check(), Ok(()));
        let zero = AgentLimits {
            send_timeout_ms: 0,
            ..AgentLimits::default()
        };
        assert_eq!(zero.check(), Err("vendor.limits.send_timeout_ms".into()));
    }

    #[test]
    fn the_download_deadline_grows_with_the_size() {
        let limits = AgentLimits::default();
        // 1 MiB at 1 KiB/s: 1024 s, doubled, plus 60 s of slack.
        assert_eq!(
            limits.download_deadline(1024 * 1024),
            Duration::from_secs(2 * 1024 + 60)
        );
        assert!(limits.download_deadline(0) >= Duration::from_secs(60));
    }
}

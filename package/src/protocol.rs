//! The upgrade protocol between a host's agent and the vendor server: the
//! JSON messages on the websocket, and the paths both sides agree on.
//!
//! The websocket carries control messages only; package archives travel
//! over plain HTTP `GET` with `Range` support, authorised by the same
//! customer token. `docs/PROTOCOL.md` describes the conversation; this
//! module is its schema. Every message is one JSON object in one text
//! frame, tagged by `"type"`. Unknown fields are refused so that a typo on
//! either side shows up as an error rather than as a silently ignored
//! value; a newer side that adds a field bumps [`PROTOCOL_VERSION`].

use semver::Version;
use serde::{Deserialize, Serialize};

use crate::deployment::SignedDeployment;

/// Version of this message schema, sent in `hello` and `welcome`.
pub const PROTOCOL_VERSION: u32 = 1;

/// Path of the websocket endpoint on the vendor server.
pub const AGENT_PATH: &str = "/api/agent";

/// Path prefix of package downloads: `/packages/<name>/<version>`.
pub const PACKAGES_PATH: &str = "/packages";

/// The download path of one package version.
pub fn package_path(name: &str, version: &Version) -> String {
    format!("{PACKAGES_PATH}/{name}/{version}")
}

/// A message from the agent to the vendor server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum AgentMessage {
    /// First message on every connection: what the host runs now.
    Hello {
        protocol: u32,
        /// The host's software version, for the vendor's records.
        agent_version: String,
        installed: Vec<InstalledPackage>,
        /// The newest deployment this host has applied, if any.
        last_deployment_id: Option<String>,
    },
    /// Progress of one package of a deployment, or of the deployment as a
    /// whole (`package` absent). The server answers each with [`VendorMessage::Ack`].
    Status(StatusReport),
}

/// One installed plugin, as reported in `hello`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstalledPackage {
    pub name: String,
    pub version: Version,
    pub enabled: bool,
}

/// One status report. `(deployment_id, seq)` identifies it: the agent
/// numbers the reports of each deployment 1, 2, 3… and keeps that count
/// across restarts, and resends every report the server has not
/// acknowledged after a reconnect. The server stores each `(customer,
/// deployment_id, seq)` once, so a resent report changes nothing.
// No `deny_unknown_fields` here or on `PackageState`: serde does not
// support it together with `flatten`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReport {
    pub seq: u64,
    /// The deployment this is about, as the offer named it.
    pub deployment_id: String,
    /// The package, or absent for the deployment as a whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<Version>,
    #[serde(flatten)]
    pub state: PackageState,
    /// When the agent made the report, unix milliseconds.
    pub at_ms: i64,
}

/// Where a package (or a whole deployment) stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum PackageState {
    /// Downloading: `bytes` of `total` are on disk.
    Downloading { bytes: u64, total: u64 },
    /// Checking size and sha256 of the downloaded archive.
    Verifying,
    /// Running the install pipeline.
    Installing,
    /// Installed and serving (or, for a deployment, every package is).
    Success,
    /// Not installed; the previous version keeps serving.
    Failure { reason: String },
    /// Was installed by this deployment, then undone because another of
    /// its packages failed.
    RolledBack { reason: String },
}

impl PackageState {
    /// Whether no further report follows for this package.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            PackageState::Success | PackageState::Failure { .. } | PackageState::RolledBack { .. }
        )
    }

    /// The state's name as it appears on the wire (`"downloading"`, …).
    pub fn name(&self) -> &'static str {
        match self {
            PackageState::Downloading { .. } => "downloading",
            PackageState::Verifying => "verifying",
            PackageState::Installing => "installing",
            PackageState::Success => "success",
            PackageState::Failure { .. } => "failure",
            PackageState::RolledBack { .. } => "rolled_back",
        }
    }
}

/// A message from the vendor server to the agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum VendorMessage {
    /// Answer to `hello`: who the token belongs to.
    Welcome {
        protocol: u32,
        customer: String,
        /// The server's clock, unix seconds, so an agent can warn about skew.
        server_time: i64,
    },
    /// A deployment to apply. `deployment_id` repeats the id inside the
    /// signed manifest so that refusals can be reported before (or
    /// without) trusting the manifest; the agent checks the two agree.
    Offer {
        deployment_id: String,
        deployment: SignedDeployment,
    },
    /// The report with this `seq` of this deployment is stored.
    Ack { deployment_id: String, seq: u64 },
    /// Stop working on this deployment: downloads stop at once; a package
    /// already installing finishes, and nothing after it starts.
    Cancel {
        deployment_id: String,
        reason: String,
    },
    /// The server refuses something the agent sent; `code` is stable.
    Error { code: String, message: String },
}

impl AgentMessage {
    /// The message as one JSON text frame.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("protocol messages always serialize")
    }
}

impl VendorMessage {
    /// The message as one JSON text frame.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("protocol messages always serialize")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn status_report_flattens_its_state() {
        let report = AgentMessage::Status(StatusReport {
            seq: 3,
            deployment_id: "d-1".into(),
            package: Some("goods".into()),
            version: Some(Version::new(1, 1, 0)),
            state: PackageState::Downloading {
                bytes: 10,
                total: 20,
            },
            at_ms: 5,
        });
        let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "type": "status", "seq": 3, "deployment_id": "d-1", "package": "goods",
                "version": "1.1.0", "state": "downloading", "bytes": 10, "total": 20, "at_ms": 5
            })
        );
        let back: AgentMessage = serde_json::from_value(json).unwrap();
        assert_eq!(back, report);
    }

    #[test]
    fn deployment_level_failure_has_no_package() {
        let text = r#"{"type":"status","seq":1,"deployment_id":"d","state":"failure","reason":"bad signature","at_ms":1}"#;
        let AgentMessage::Status(report) = serde_json::from_str(text).unwrap() else {
            panic!("not a status")
        };
        assert_eq!(report.package, None);
        assert_eq!(
            report.state,
            PackageState::Failure {
                reason: "bad signature".into()
            }
        );
        assert!(report.state.is_final());
    }

    #[test]
    fn unknown_message_types_and_fields_are_refused() {
        assert!(serde_json::from_str::<VendorMessage>(r#"{"type":"reboot"}"#).is_err());
        assert!(
            serde_json::from_str::<VendorMessage>(
                r#"{"type":"ack","deployment_id":"d","seq":1,"extra":1}"#
            )
            .is_err()
        );
        // Inside the offer's deployment too, outside the signed text.
        let offer = serde_json::json!({"type": "offer", "deployment_id": "d",
            "deployment": {"manifest": "{}", "signature": "", "key_id": ""}});
        assert!(serde_json::from_value::<VendorMessage>(offer.clone()).is_ok());
        let mut extra = offer;
        extra["deployment"]["note"] = "unsigned".into();
        assert!(serde_json::from_value::<VendorMessage>(extra).is_err());
    }

    #[test]
    fn hello_round_trips() {
        let hello = AgentMessage::Hello {
            protocol: PROTOCOL_VERSION,
            agent_version: "0.1.0".into(),
            installed: vec![InstalledPackage {
                name: "goods".into(),
                version: Version::new(1, 0, 0),
                enabled: true,
            }],
            last_deployment_id: None,
        };
        let back: AgentMessage = serde_json::from_str(&hello.to_json()).unwrap();
        assert_eq!(back, hello);
        assert_eq!(
            package_path("goods", &Version::new(1, 2, 3)),
            "/packages/goods/1.2.3"
        );
    }
}

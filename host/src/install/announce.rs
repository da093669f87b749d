//! The host's lifecycle events: each finished plugin operation is published
//! on the event bus (`plinth.plugin.installed`, `.upgraded`, `.rolled-back`,
//! `.enabled`, `.disabled`, `.removed`), so a plugin can react to it. The
//! payload names the plugin, the operation id and both versions; a removal
//! also says how many undelivered events to the plugin were dropped.

use serde_json::json;

use super::journal::{InstallJournal, Operation};
use crate::Host;
use crate::events::publish_host_event;

/// The topic of an operation's event.
fn topic(operation: Operation) -> &'static str {
    match operation {
        Operation::Install => "plinth.plugin.installed",
        Operation::Upgrade => "plinth.plugin.upgraded",
        Operation::Rollback => "plinth.plugin.rolled-back",
        Operation::Enable => "plinth.plugin.enabled",
        Operation::Disable => "plinth.plugin.disabled",
        Operation::Remove => "plinth.plugin.removed",
    }
}

/// Publishes the event of the operation `journal` finished;
/// `dropped_deliveries` only for a removal.
pub async fn operation_done(
    host: &Host,
    journal: &InstallJournal,
    dropped_deliveries: Option<u64>,
) {
    let mut payload = json!({
        "plugin": journal.plugin,
        "op_id": journal.op_id,
        "from_version": journal.from_version,
        "to_version": journal.to_version,
    });
    if let Some(dropped) = dropped_deliveries {
        payload["dropped_deliveries"] = json!(dropped);
    }
    publish_host_event(&host.events, topic(journal.operation), &payload).await;
}

//! Publishing events to other plugins.
//!
//! Delivery is asynchronous and at least once per subscriber (exactly once
//! for what the subscriber writes to its tables: that commits with the
//! delivery); subscribers declare topics under `[events] subscribe` in
//! their manifests and receive them in [`Plugin::on_event`](crate::Plugin::on_event).
//! Published inside [`db::transaction`](crate::db::transaction), an event
//! commits or rolls back with the transaction; otherwise it is stored
//! before `publish` returns.

use serde::Serialize;

use crate::__bindings::plinth::plugin::events as wit;
use crate::Error;

/// Publishes `payload` (usually JSON) on `topic`, a dotted name such as
/// `goods.stock-low`.
pub fn publish(topic: &str, payload: &str) -> Result<(), Error> {
    crate::guest_only("events::publish");
    wit::publish(topic, payload).map_err(Error::internal)
}

/// Publishes `payload` serialised as JSON on `topic`.
pub fn publish_json<T: Serialize + ?Sized>(topic: &str, payload: &T) -> Result<(), Error> {
    let json = serde_json::to_string(payload)
        .map_err(|e| Error::internal(format!("could not serialise event: {e}")))?;
    publish(topic, &json)
}

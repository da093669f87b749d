//! The `outbound-http` import of the plinth world (host API 0.2.0): a thin
//! translation between the WIT records and the plugin's
//! [`OutboundClient`](super::OutboundClient), which holds every rule.

use super::{OutboundError, OutboundRequest};
use crate::runtime::bindings::PluginState;
use crate::runtime::bindings::plinth::plugin::outbound_http::{
    Denial, Host, IncomingResponse, OutboundError as WitError, OutgoingRequest,
};
use crate::runtime::bindings::plinth::plugin::types::Header;

impl Host for PluginState {
    async fn send(&mut self, req: OutgoingRequest) -> Result<IncomingResponse, WitError> {
        let request = OutboundRequest {
            method: req.method,
            url: req.url,
            headers: req.headers.into_iter().map(|h| (h.name, h.value)).collect(),
            body: req.body,
            timeout_ms: req.timeout_ms.map(u64::from),
        };
        match self.outbound.send(request).await {
            Ok(response) => Ok(IncomingResponse {
                status: response.status,
                headers: response
                    .headers
                    .into_iter()
                    .map(|(name, value)| Header { name, value })
                    .collect(),
                body: response.body,
            }),
            Err(error) => Err(match &error {
                OutboundError::Denied { host, setting } => WitError::Denied(Denial {
                    host: host.clone(),
                    setting: setting.clone(),
                }),
                OutboundError::BlockedAddress { .. } => WitError::BlockedAddress(error.to_string()),
                OutboundError::Timeout { .. } => WitError::Timeout(error.to_string()),
                OutboundError::TooLarge { .. } => WitError::TooLarge(error.to_string()),
                OutboundError::Failed(message) => WitError::Failed(message.clone()),
            }),
        }
    }
}

//! The queue of offers between the connection and the deploy worker,
//! bounded in count and in bytes: a vendor that floods offers while one
//! installs can pin at most [`MAX_QUEUED_BYTES`] of the host's memory. An
//! offer that does not fit is not queued; the vendor offers its newest
//! unfinished deployment again on the next connection.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::mpsc;

use super::IncomingOffer;

/// Offers waiting at most.
pub(super) const MAX_QUEUED_OFFERS: usize = 8;
/// Bytes of offer text waiting at most (a few offers of the largest size
/// the socket takes).
pub(super) const MAX_QUEUED_BYTES: usize = 4 * 1024 * 1024;

/// The connection's end.
#[derive(Debug, Clone)]
pub(super) struct OfferSender {
    tx: mpsc::Sender<(IncomingOffer, usize)>,
    bytes: Arc<AtomicUsize>,
}

/// The worker's end.
#[derive(Debug)]
pub(super) struct OfferReceiver {
    rx: mpsc::Receiver<(IncomingOffer, usize)>,
    bytes: Arc<AtomicUsize>,
}

pub(super) fn offer_queue() -> (OfferSender, OfferReceiver) {
    let (tx, rx) = mpsc::channel(MAX_QUEUED_OFFERS);
    let bytes = Arc::new(AtomicUsize::new(0));
    (
        OfferSender {
            tx,
            bytes: bytes.clone(),
        },
        OfferReceiver { rx, bytes },
    )
}

impl OfferSender {
    /// Queues `offer`, which took `size` bytes on the wire; `Err` says why
    /// it was not queued.
    pub(super) fn try_send(&self, offer: IncomingOffer, size: usize) -> Result<(), String> {
        let before = self.bytes.fetch_add(size, Ordering::SeqCst);
        if before.saturating_add(size) > MAX_QUEUED_BYTES {
            self.bytes.fetch_sub(size, Ordering::SeqCst);
            return Err(format!(
                "the offer queue holds {before} bytes already and takes at most {MAX_QUEUED_BYTES}"
            ));
        }
        self.tx.try_send((offer, size)).map_err(|e| {
            self.bytes.fetch_sub(size, Ordering::SeqCst);
            match e {
                mpsc::error::TrySendError::Full(_) => {
                    format!("the offer queue holds {MAX_QUEUED_OFFERS} offers already")
                }
                mpsc::error::TrySendError::Closed(_) => "the deploy worker is not running".into(),
            }
        })
    }
}

impl OfferReceiver {
    pub(super) async fn recv(&mut self) -> Option<IncomingOffer> {
        let (offer, size) = self.rx.recv().await?;
        self.bytes.fetch_sub(size, Ordering::SeqCst);
        Some(offer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(id: &str) -> IncomingOffer {
        IncomingOffer {
            deployment_id: id.into(),
            deployment: Err("test".into()),
        }
    }

    #[tokio::test]
    async fn the_queue_is_bounded_in_bytes_and_in_count() {
        let (tx, mut rx) = offer_queue();
        assert!(tx.try_send(offer("a"), MAX_QUEUED_BYTES - 10).is_ok());
        let refused = tx
            .try_send(offer("b"), 11)
            .expect_err("over the byte bound");
        assert!(refused.contains("bytes"), "{refused}");
        assert_eq!(rx.recv().await.map(|o| o.deployment_id), Some("a".into()));
        for i in 0..MAX_QUEUED_OFFERS {
            assert!(tx.try_send(offer(&i.to_string()), 1).is_ok());
        }
        let refused = tx.try_send(offer("c"), 1).expect_err("over the count");
        assert!(refused.contains("offers"), "{refused}");
    }
}

//! Status reports waiting for the vendor's acknowledgement. The worker
//! queues them; the connection sends each once per connection and drops it
//! when the server's `ack` arrives, so a report made while disconnected, or
//! lost with a dropped connection, goes out again after the reconnect.

use std::collections::VecDeque;
use std::sync::Mutex;

use plinth_package::protocol::StatusReport;
use tokio::sync::Notify;

/// More unacknowledged reports than this means the vendor has been away a
/// long time; the oldest progress reports go first.
const CAPACITY: usize = 1024;

#[derive(Debug, Default)]
pub struct Outbox {
    queue: Mutex<VecDeque<Queued>>,
    notify: Notify,
}

#[derive(Debug)]
struct Queued {
    report: StatusReport,
    /// The connection it was last sent on (0: not sent yet).
    sent_on: u64,
}

impl Outbox {
    fn queue(&self) -> std::sync::MutexGuard<'_, VecDeque<Queued>> {
        self.queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues a report. A newer report about the same package replaces an
    /// older progress report (not a final one) still waiting, so a long
    /// outage does not pile up byte counts.
    pub fn push(&self, report: StatusReport) {
        let mut queue = self.queue();
        // The same report again (a refusal repeated on every reconnect)
        // replaces the waiting copy.
        queue.retain(|q| {
            !(q.report.deployment_id == report.deployment_id && q.report.seq == report.seq)
        });
        queue.retain(|q| {
            q.report.state.is_final()
                || q.report.deployment_id != report.deployment_id
                || q.report.package != report.package
        });
        while queue.len() >= CAPACITY {
            match queue.iter().position(|q| !q.report.state.is_final()) {
                Some(i) => {
                    queue.remove(i);
                }
                None => {
                    queue.pop_front();
                }
            }
        }
        queue.push_back(Queued { report, sent_on: 0 });
        drop(queue);
        self.notify.notify_one();
    }

    /// Reports not yet sent on connection `connection` (numbered from 1), in
    /// the order they were made; they count as sent on it from now on.
    pub fn take_unsent(&self, connection: u64) -> Vec<StatusReport> {
        let mut queue = self.queue();
        queue
            .iter_mut()
            .filter(|q| q.sent_on != connection)
            .map(|q| {
                q.sent_on = connection;
                q.report.clone()
            })
            .collect()
    }

    /// The server stored this report: forget it.
    pub fn acknowledge(&self, deployment_id: &str, seq: u64) {
        self.queue()
            .retain(|q| !(q.report.deployment_id == deployment_id && q.report.seq == seq));
    }

    pub fn len(&self) -> usize {
        self.queue().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Resolves after the next [`Outbox::push`] (or at once if one
    /// happened since the last wait).
    pub async fn pushed(&self) {
        self.notify.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use plinth_package::protocol::PackageState;

    use super::*;

    fn report(seq: u64, package: &str, state: PackageState) -> StatusReport {
        StatusReport {
            seq,
            deployment_id: "d".into(),
            package: Some(package.into()),
            version: None,
            state,
            at_ms: 0,
        }
    }

    #[test]
    fn unacknowledged_reports_are_sent_again_on_the_next_connection() {
        let outbox = Outbox::default();
        outbox.push(report(1, "goods", PackageState::Installing));
        outbox.push(report(2, "hello", PackageState::Success));
        assert_eq!(outbox.take_unsent(1).len(), 2);
        assert!(outbox.take_unsent(1).is_empty(), "sent once per connection");
        outbox.acknowledge("d", 2);
        let again: Vec<u64> = outbox.take_unsent(2).iter().map(|r| r.seq).collect();
        assert_eq!(again, vec![1]);
        outbox.acknowledge("d", 1);
        assert!(outbox.is_empty());
    }

    #[test]
    fn newer_progress_replaces_older_progress_but_not_final_reports() {
        let outbox = Outbox::default();
        let downloading = |bytes| PackageState::Downloading { bytes, total: 10 };
        outbox.push(report(1, "goods", downloading(1)));
        outbox.push(report(2, "goods", downloading(5)));
        outbox.push(report(3, "hello", PackageState::Success));
        outbox.push(report(4, "goods", PackageState::Verifying));
        let seqs: Vec<u64> = outbox.take_unsent(1).iter().map(|r| r.seq).collect();
        assert_eq!(seqs, vec![3, 4]);
    }
}

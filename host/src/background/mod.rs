//! The host's background jobs, started once start-up has restored the
//! plugins and stopped at shutdown: the event [`relay`], the task
//! [`scheduler`] and the drop-in folder watcher ([`dropin`]).

use tokio::task::JoinHandle;

use crate::Host;

pub mod dropin;
pub mod relay;
pub mod scheduler;

pub use scheduler::Scheduler;

/// Background tasks started with the host; aborted on shutdown.
#[derive(Debug)]
pub struct Background {
    /// The task scheduler, for running a task by hand.
    pub scheduler: Scheduler,
    tasks: Vec<JoinHandle<()>>,
}

impl Background {
    /// Starts the event relay, the scheduler and the drop-in watcher.
    pub async fn start(host: &Host) -> Self {
        let scheduler = Scheduler::new(
            crate::config::resolve_host_id(&host.config.server.host_id),
            host.events.clone(),
        );
        scheduler.settle_orphans(&host.db).await;
        let tasks = vec![
            tokio::spawn(relay::run(host.clone())),
            tokio::spawn(scheduler.clone().run(host.clone())),
            tokio::spawn(dropin::watch(host.clone())),
        ];
        Self { scheduler, tasks }
    }

    /// Stops these tasks with the rest (the upgrade agent's, for one).
    pub fn adopt(&mut self, tasks: impl IntoIterator<Item = JoinHandle<()>>) {
        self.tasks.extend(tasks);
    }

    pub fn stop(self) {
        for task in self.tasks {
            task.abort();
        }
    }
}

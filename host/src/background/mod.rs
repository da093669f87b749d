//! The host's background jobs, started once start-up has restored the
//! plugins and stopped at shutdown: event delivery ([`dispatch`]), the task
//! [`scheduler`] and the drop-in folder watcher ([`dropin`]).

use tokio::task::JoinHandle;

use crate::Host;
use crate::events::EventReceiver;
use crate::registry::PluginRegistry;
use crate::runtime::LoadedComponent;

pub mod dropin;
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
    /// Starts event delivery, the scheduler and the drop-in watcher.
    pub fn start(host: &Host, events: EventReceiver) -> Self {
        let scheduler = Scheduler::new(crate::config::resolve_host_id(&host.config.server.host_id));
        let tasks = vec![
            tokio::spawn(dispatch(events, host.registry.clone())),
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

/// Delivers events until every publisher is gone.
pub async fn dispatch(mut events: EventReceiver, registry: PluginRegistry) {
    while let Some(event) = events.recv().await {
        for plugin in registry.subscribers(&event.topic) {
            let LoadedComponent::Plinth(component) = plugin.component.clone() else {
                continue;
            };
            let event = event.clone();
            tokio::spawn(async move {
                let name = component.identity().name.clone();
                match component.on_event(&event.topic, &event.payload).await {
                    Ok(Ok(())) => {
                        tracing::debug!(plugin = %name, topic = %event.topic, source = %event.source, "event delivered")
                    }
                    Ok(Err(message)) => {
                        tracing::warn!(plugin = %name, topic = %event.topic, %message, "event handler returned an error")
                    }
                    Err(error) => {
                        tracing::warn!(plugin = %name, topic = %event.topic, %error, "event handler failed")
                    }
                }
            });
        }
    }
}

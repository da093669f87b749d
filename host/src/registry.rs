//! The plugins that are serving right now, swapped atomically.
//!
//! Readers (every request) load an immutable snapshot without locking.
//! Writers (install, upgrade, rollback, disable) build a new snapshot and
//! swap it in; a request already holding the old plugin's `Arc` finishes on
//! the old version, and the next request sees the new one.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use plinth_package::RouteTable;
use plinth_package::manifest::Manifest;

use crate::caller::{Caller, RouteVerdict, judge_route};
use crate::runtime::LoadedComponent;
use crate::runtime::PlinthComponent;
use crate::runtime::plugin_calls::{CallRefused, PluginDirectory};

/// One serving plugin version.
#[derive(Debug)]
pub struct LoadedPlugin {
    pub manifest: Manifest,
    pub component: LoadedComponent,
    /// The manifest's `[[routes]]`, compiled, for the check before a call.
    pub routes: RouteTable,
}

impl LoadedPlugin {
    pub fn name(&self) -> &str {
        &self.manifest.name
    }

    pub fn version(&self) -> String {
        self.manifest.version.to_string()
    }
}

impl PluginDirectory for PluginRegistry {
    fn handler(&self, name: &str) -> Option<Arc<PlinthComponent>> {
        match &self.by_name(name)?.component {
            LoadedComponent::Plinth(component) => Some(component.clone()),
            LoadedComponent::WasiHttp(_) => None,
        }
    }

    fn refuses(
        &self,
        name: &str,
        method: &str,
        path: &str,
        caller: Option<&Caller>,
    ) -> Option<CallRefused> {
        let plugin = self.by_name(name)?;
        let (status, code, message) = match judge_route(&plugin.routes, method, path, caller) {
            RouteVerdict::Allowed => return None,
            RouteVerdict::NoCaller => (
                401,
                "unauthenticated",
                format!(
                    "plugin {name}'s {method} {path} needs a signed-in user; this call carries none"
                ),
            ),
            RouteVerdict::Lacks(code) => (
                403,
                "forbidden",
                format!(
                    "plugin {name}'s {method} {path} needs the permission {code:?}, which the user does not hold"
                ),
            ),
            RouteVerdict::Undeclared => (
                403,
                "route_not_declared",
                format!("plugin {name} declares no route for {method} {path}, so it is refused"),
            ),
        };
        Some(CallRefused {
            status,
            code,
            message,
        })
    }
}

#[derive(Debug, Default)]
struct Snapshot {
    by_name: BTreeMap<String, Arc<LoadedPlugin>>,
    by_route: HashMap<String, Arc<LoadedPlugin>>,
}

/// The serving set; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct PluginRegistry {
    current: Arc<ArcSwap<Snapshot>>,
    writer: Arc<Mutex<()>>,
}

impl PluginRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// The plugin mounted at `/p/<route>`.
    pub fn by_route(&self, route: &str) -> Option<Arc<LoadedPlugin>> {
        self.current.load().by_route.get(route).cloned()
    }

    pub fn by_name(&self, name: &str) -> Option<Arc<LoadedPlugin>> {
        self.current.load().by_name.get(name).cloned()
    }

    /// Every serving plugin, by name.
    pub fn all(&self) -> Vec<Arc<LoadedPlugin>> {
        self.current.load().by_name.values().cloned().collect()
    }

    /// Plugins whose manifest subscribes to `topic`.
    pub fn subscribers(&self, topic: &str) -> Vec<Arc<LoadedPlugin>> {
        self.current
            .load()
            .by_name
            .values()
            .filter(|p| p.manifest.events.subscribe.iter().any(|t| t == topic))
            .cloned()
            .collect()
    }

    /// Serves `plugin`, replacing any version of the same name, in one swap.
    pub fn put(&self, plugin: LoadedPlugin) -> Option<Arc<LoadedPlugin>> {
        let plugin = Arc::new(plugin);
        self.update(|by_name| by_name.insert(plugin.manifest.name.clone(), plugin.clone()))
    }

    /// Stops serving `name`.
    pub fn remove(&self, name: &str) -> Option<Arc<LoadedPlugin>> {
        self.update(|by_name| by_name.remove(name))
    }

    fn update<R>(&self, change: impl FnOnce(&mut BTreeMap<String, Arc<LoadedPlugin>>) -> R) -> R {
        let _guard = self
            .writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut by_name = self.current.load().by_name.clone();
        let result = change(&mut by_name);
        let by_route = by_name
            .values()
            .map(|p| (p.manifest.route_prefix.clone(), p.clone()))
            .collect();
        self.current.store(Arc::new(Snapshot { by_name, by_route }));
        result
    }
}

//! The policy set in force, swappable without a restart.

use std::sync::{Arc, Mutex, RwLock};

use accord_policy::{PolicySet, PulledConsents};

/// Holds the current [`PolicySet`]. Requests take a snapshot (`current`) and
/// decide against it; a reload swaps in a new set for later requests, and
/// a request in flight finishes under the snapshot it started with.
///
/// Two sources feed the set in force: the policy folder (reloads) and the
/// consents pulled from the upstream server (the consent feed). Each
/// replaces its own layer and the set in force is rebuilt from both, so a
/// reload never drops pulled consents and a pull never reverts a reload.
#[derive(Debug)]
pub struct PolicyStore {
    current: RwLock<Arc<PolicySet>>,
    layers: Mutex<Layers>,
}

#[derive(Debug)]
struct Layers {
    files: Arc<PolicySet>,
    pulled: Option<Arc<PulledConsents>>,
}

impl PolicyStore {
    pub fn new(policies: PolicySet) -> Self {
        let files = Arc::new(policies);
        PolicyStore {
            current: RwLock::new(Arc::clone(&files)),
            layers: Mutex::new(Layers {
                files,
                pulled: None,
            }),
        }
    }

    /// The set in force now.
    pub fn current(&self) -> Arc<PolicySet> {
        match self.current.read() {
            Ok(guard) => Arc::clone(&guard),
            // A writer panicked mid-swap: the value is still a whole Arc.
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Puts `policies` (a new load of the policy folder) in force for every
    /// request that starts after this, with the pulled consents over it.
    pub fn replace(&self, policies: PolicySet) {
        self.update(|layers| layers.files = Arc::new(policies));
    }

    /// Puts a new pull of upstream consents in force over the policy folder.
    pub fn set_pulled(&self, pulled: Arc<PulledConsents>) {
        self.update(|layers| layers.pulled = Some(pulled));
    }

    fn update(&self, change: impl FnOnce(&mut Layers)) {
        // One writer at a time, so two updates cannot interleave their
        // rebuilds and lose one layer.
        let mut layers = match self.layers.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        change(&mut layers);
        let new = match &layers.pulled {
            Some(pulled) => Arc::new(layers.files.with_pulled_consents(Arc::clone(pulled))),
            None => Arc::clone(&layers.files),
        };
        match self.current.write() {
            Ok(mut guard) => *guard = new,
            Err(poisoned) => *poisoned.into_inner() = new,
        }
    }
}

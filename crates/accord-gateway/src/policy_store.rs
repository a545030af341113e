//! The policy set in force, swappable without a restart.

use std::sync::{Arc, RwLock};

use accord_policy::PolicySet;

/// Holds the current [`PolicySet`]. Requests take a snapshot (`current`) and
/// decide against it; a reload swaps in a new set for later requests.
#[derive(Debug)]
pub struct PolicyStore {
    current: RwLock<Arc<PolicySet>>,
}

impl PolicyStore {
    pub fn new(policies: PolicySet) -> Self {
        PolicyStore {
            current: RwLock::new(Arc::new(policies)),
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

    /// Puts `policies` in force for every request that starts after this.
    pub fn replace(&self, policies: PolicySet) {
        let new = Arc::new(policies);
        match self.current.write() {
            Ok(mut guard) => *guard = new,
            Err(poisoned) => *poisoned.into_inner() = new,
        }
    }
}

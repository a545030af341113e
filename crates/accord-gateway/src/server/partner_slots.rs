//! Per-partner connection limits.
//!
//! `max_connections` bounds the listener as a whole; on its own it let one
//! partner's slow connections take every slot and lock every other partner
//! out (issue 17). Each partner — and, as one more bucket, every client
//! without a known certificate — may hold at most
//! `max_connections_per_partner` connections once its TLS handshake has
//! named it. A connection over its partner's limit is closed right after
//! the handshake, so it gives its global slot back at once and the other
//! partners' connections are accepted.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use accord_policy::PartnerId;

/// Who a connection counts against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Holder {
    Partner(PartnerId),
    /// No certificate, or one no partner is pinned to: such connections
    /// only ever get a 401, and share one allowance between them.
    Unidentified,
}

/// Connections held per partner.
#[derive(Debug)]
pub struct PartnerSlots {
    limit: usize,
    held: Mutex<HashMap<Holder, usize>>,
}

/// One connection counted against its holder; gives it back when dropped.
#[derive(Debug)]
pub struct Slot {
    slots: Arc<PartnerSlots>,
    holder: Holder,
}

// === impl Holder ===

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Holder::Partner(id) => write!(f, "{id}"),
            Holder::Unidentified => f.write_str("clients without a partner certificate"),
        }
    }
}

// === impl PartnerSlots ===

impl PartnerSlots {
    /// At most `limit` connections per holder (at least one).
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(PartnerSlots {
            limit: limit.max(1),
            held: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for one more connection of `holder`, or `None` when it already
    /// holds its limit.
    pub fn take(self: &Arc<Self>, holder: Holder) -> Option<Slot> {
        // A panic while holding this lock cannot leave a count half-changed
        // (each update is one statement), so a poisoned lock is still valid.
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let count = held.entry(holder.clone()).or_insert(0);
        if *count >= self.limit {
            return None;
        }
        *count += 1;
        Some(Slot {
            slots: Arc::clone(self),
            holder,
        })
    }

    /// How many connections `holder` holds now.
    pub fn held(&self, holder: &Holder) -> usize {
        let held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        held.get(holder).copied().unwrap_or(0)
    }

    pub fn limit(&self) -> usize {
        self.limit
    }
}

// === impl Slot ===

impl Drop for Slot {
    fn drop(&mut self) {
        let mut held = self
            .slots
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = held.get_mut(&self.holder) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                held.remove(&self.holder);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partner(id: &str) -> Holder {
        Holder::Partner(PartnerId::parse(id).unwrap())
    }

    #[test]
    fn each_partner_has_its_own_allowance_and_gets_it_back() {
        let slots = PartnerSlots::new(2);
        let a1 = slots.take(partner("a")).unwrap();
        let _a2 = slots.take(partner("a")).unwrap();
        assert!(slots.take(partner("a")).is_none(), "a is at its limit");
        let _b = slots.take(partner("b")).expect("b is not held back by a");
        let _anon = slots.take(Holder::Unidentified).unwrap();
        drop(a1);
        assert_eq!(slots.held(&partner("a")), 1);
        assert!(
            slots.take(partner("a")).is_some(),
            "a's closed slot is free"
        );
    }
}

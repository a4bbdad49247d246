//! Every tracked number's GCRA states, in a map as wide as the quotas need.

use dashmap::DashMap;

use crate::operation::NumberHasher;

/// Every number's GCRA states (governor's "theoretical arrival times", 0 when fresh) in
/// the order of `Inner::quotas`, in a map as wide as the quotas need: a number under one
/// quota costs a key and one state, about 35 bytes with the map's slack.
pub(super) enum Numbers {
    One(DashMap<u64, [u64; 1], NumberHasher>),
    Two(DashMap<u64, [u64; 2], NumberHasher>),
    Many(DashMap<u64, Box<[u64]>, NumberHasher>, usize),
}

impl Numbers {
    pub(super) fn new(quotas: usize) -> Self {
        match quotas {
            0 | 1 => Numbers::One(DashMap::with_hasher(NumberHasher::default())),
            2 => Numbers::Two(DashMap::with_hasher(NumberHasher::default())),
            n => Numbers::Many(DashMap::with_hasher(NumberHasher::default()), n),
        }
    }

    /// Runs `f` on a number's states, locked for the whole of it: no other call for the
    /// same number slips between its decisions and its commit.
    pub(super) fn with<R>(&self, key: u64, f: impl FnOnce(&mut [u64]) -> R) -> R {
        match self {
            Numbers::One(m) => f(&mut *m.entry(key).or_default()),
            Numbers::Two(m) => f(&mut *m.entry(key).or_default()),
            Numbers::Many(m, n) => f(&mut m.entry(key).or_insert_with(|| vec![0; *n].into())),
        }
    }

    pub(super) fn len(&self) -> usize {
        match self {
            Numbers::One(m) => m.len(),
            Numbers::Two(m) => m.len(),
            Numbers::Many(m, _) => m.len(),
        }
    }

    pub(super) fn contains(&self, key: u64) -> bool {
        match self {
            Numbers::One(m) => m.contains_key(&key),
            Numbers::Two(m) => m.contains_key(&key),
            Numbers::Many(m, _) => m.contains_key(&key),
        }
    }

    /// Forgets the numbers whose every state is back to full (`<= now`, in the store's
    /// frame: `skew` is how much later than the store's clock the quotas' clocks started).
    pub(super) fn evict(&self, now: u64, skew: u64) {
        let live = |tats: &[u64]| tats.iter().any(|&t| t.saturating_add(skew) > now);
        match self {
            Numbers::One(m) => {
                m.retain(|_, t| live(t));
                m.shrink_to_fit();
            }
            Numbers::Two(m) => {
                m.retain(|_, t| live(t));
                m.shrink_to_fit();
            }
            Numbers::Many(m, _) => {
                m.retain(|_, t| live(t));
                m.shrink_to_fit();
            }
        }
    }
}

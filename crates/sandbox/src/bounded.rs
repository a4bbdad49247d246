//! A map of per-number state that forgets its oldest numbers past a cap, so memory stays
//! flat however many distinct numbers call (`[outbox] max_entries`).

use std::collections::{HashMap, VecDeque};

/// Entries by key; with a cap, the first-inserted keys go first.
#[derive(Debug)]
pub(crate) struct BoundedMap<V> {
    map: HashMap<String, (u64, V)>,
    /// Keys in insertion order, with the generation they were inserted at: a key
    /// forgotten and inserted again is found by its new generation only.
    order: VecDeque<(u64, String)>,
    next: u64,
    /// The most keys kept (0: no cap).
    cap: usize,
}

impl<V: Default> BoundedMap<V> {
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            map: HashMap::new(),
            order: VecDeque::new(),
            next: 0,
            cap,
        }
    }

    /// The state of `key`, made fresh if it is not kept.
    pub(crate) fn entry(&mut self, key: &str) -> &mut V {
        if !self.map.contains_key(key) {
            self.next += 1;
            if self.cap > 0 {
                self.order.push_back((self.next, key.to_owned()));
            }
            self.map.insert(key.to_owned(), (self.next, V::default()));
            self.shrink();
        }
        // `shrink` never removes the newest key; inserting again is only a safety net.
        let generation = self.next;
        &mut self
            .map
            .entry(key.to_owned())
            .or_insert_with(|| (generation, V::default()))
            .1
    }

    /// The state of `key`, if kept.
    pub(crate) fn get(&self, key: &str) -> Option<&V> {
        self.map.get(key).map(|(_, v)| v)
    }

    /// How many keys are kept.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    fn shrink(&mut self) {
        if self.cap == 0 {
            return;
        }
        while self.map.len() > self.cap {
            let Some((generation, key)) = self.order.pop_front() else {
                return;
            };
            if self.map.get(&key).is_some_and(|(g, _)| *g == generation) {
                self.map.remove(&key);
            }
        }
        if self.map.capacity() > 4 * self.cap.max(16) {
            self.map.shrink_to(2 * self.cap);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_keys_go_past_the_cap() {
        let mut m = BoundedMap::<u32>::new(3);
        for k in ["a", "b", "c", "d"] {
            *m.entry(k) += 1;
        }
        assert_eq!(m.len(), 3);
        assert!(m.get("a").is_none() && m.get("d").is_some());
        *m.entry("b") += 1;
        assert_eq!(m.get("b"), Some(&2), "kept keys keep their state");
        let mut unbounded = BoundedMap::<u32>::new(0);
        for i in 0..100 {
            unbounded.entry(&i.to_string());
        }
        assert_eq!(unbounded.len(), 100);
    }
}

//! A class's cooldown for a number or a WABA: its end, its length and the Graph code
//! that set it, and how a repeat doubles it.

use crate::error::GraphCode;

/// A class's cooldown for a number: its end, its length and the Graph code that set it.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Cooldown {
    /// When it ends (ns on the store's clock); 0: none.
    pub(crate) until: u64,
    /// How long it was set for (ns).
    pub(crate) len: u64,
    pub(crate) code: Option<GraphCode>,
}

impl Cooldown {
    /// Records a throttle at `now`: `wait`, or twice the previous length when it comes
    /// again within one length after the previous cooldown ended, up to `cap`. A throttle
    /// while the cooldown still holds (another call's answer) keeps the later end.
    pub(super) fn throttled(&mut self, now: u64, wait: u64, cap: u64, code: Option<GraphCode>) {
        let again =
            self.until != 0 && self.until <= now && now < self.until.saturating_add(self.len);
        let len = if again {
            wait.max(self.len.saturating_mul(2))
        } else {
            wait
        }
        .min(cap);
        let until = now.saturating_add(len);
        if until > self.until {
            *self = Cooldown { until, len, code };
        }
    }
}

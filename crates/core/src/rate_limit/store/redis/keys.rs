//! Every key the store keeps, named in one place, so the acquire script and the lessons
//! always meet on the same keys, with the hash tag that places it on a cluster; and the
//! list of one script call's keys.

use std::fmt;

use crate::rate_limit::store::QuotaClass;

/// A number as it appears in keys (`none` for calls of no number).
#[derive(Clone, Copy)]
pub(super) struct Number(pub(super) Option<u64>);

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(n) => write!(f, "{n}"),
            None => f.write_str("none"),
        }
    }
}

/// Every key the store keeps, after the prefix. Named in one place, so the acquire
/// script and the lessons always meet on the same keys.
#[derive(Clone, Copy)]
pub(super) enum Key {
    /// A class's cooldown for one number.
    Cooldown(QuotaClass, Number),
    /// The record of a class's cooldown for one number: its length, end and Graph code.
    CooldownRecord(QuotaClass, Number),
    /// A class's cooldown for the whole app.
    AppCooldown(QuotaClass),
    /// A class's cooldown for one WhatsApp Business Account.
    WabaCooldown(QuotaClass, u64),
    /// The record of a WABA's cooldown.
    WabaCooldownRecord(QuotaClass, u64),
    /// The GCRA state of per-WABA quota `idx` for a WABA.
    WabaQuota(usize, u64),
    /// The wrong-code counter of a number.
    WrongCodes(Number),
    /// The register/deregister log of a number.
    Registration(Number),
    /// The GCRA state of per-number quota `idx` for a number.
    Quota(usize, Number),
    /// The GCRA state of the global quota at `idx`.
    Global(usize),
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Hash tags (`{…}`) put a number's keys in one slot, the app's in another and each
        // WABA's in its own: on a Redis Cluster, one script call reads one tag's keys.
        match self {
            Key::Cooldown(c, n) => write!(f, "cd:{}:{{{n}}}", c.as_str()),
            Key::CooldownRecord(c, n) => write!(f, "cdr:{}:{{{n}}}", c.as_str()),
            Key::AppCooldown(c) => write!(f, "cd:{}:{{app}}", c.as_str()),
            Key::WabaCooldown(c, w) => write!(f, "cd:{}:{{w{w}}}", c.as_str()),
            Key::WabaCooldownRecord(c, w) => write!(f, "cdr:{}:{{w{w}}}", c.as_str()),
            Key::WabaQuota(idx, w) => write!(f, "wq{idx}:{{w{w}}}"),
            Key::WrongCodes(n) => write!(f, "wc:{{{n}}}"),
            Key::Registration(n) => write!(f, "reg:{{{n}}}"),
            Key::Quota(idx, n) => write!(f, "q{idx}:{{{n}}}"),
            Key::Global(idx) => write!(f, "g{idx}:{{app}}"),
        }
    }
}

/// The keys of one script call, written end to end; a key's index is its place in KEYS.
#[derive(Default)]
pub(super) struct Keys {
    pub(super) text: String,
    pub(super) ends: Vec<usize>,
}

impl Keys {
    pub(super) fn add(&mut self, prefix: &str, key: Key) -> i64 {
        use fmt::Write as _;
        self.text.push_str(prefix);
        let _ = write!(self.text, "{key}");
        self.ends.push(self.text.len());
        self.ends.len() as i64
    }
}

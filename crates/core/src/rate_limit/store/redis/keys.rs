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
    /// `{key:#}` writes the key with its hash tag (`{…}`), as a Redis Cluster needs: a
    /// number's keys in one slot, the app's in another and each WABA's in its own, so one
    /// script call reads one tag's keys. `{key}` writes the names one Redis has always
    /// used, so a store upgraded in place keeps the cooldowns it holds.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Written straight out, with no string made on the way: every check writes its
        // keys.
        let tagged = f.alternate();
        let (open, close) = if tagged { ("{", "}") } else { ("", "") };
        let app = if tagged { ":{app}" } else { "" };
        match self {
            Key::Cooldown(c, n) => write!(f, "cd:{}:{open}{n}{close}", c.as_str()),
            Key::CooldownRecord(c, n) => write!(f, "cdr:{}:{open}{n}{close}", c.as_str()),
            Key::AppCooldown(c) => write!(f, "cd:{}:{open}app{close}", c.as_str()),
            Key::WabaCooldown(c, w) => write!(f, "cd:{}:{open}w{w}{close}", c.as_str()),
            Key::WabaCooldownRecord(c, w) => write!(f, "cdr:{}:{open}w{w}{close}", c.as_str()),
            Key::WabaQuota(idx, w) if tagged => write!(f, "wq{idx}:{{w{w}}}"),
            Key::WabaQuota(idx, w) => write!(f, "wq{idx}:{w}"),
            Key::WrongCodes(n) => write!(f, "wc:{open}{n}{close}"),
            Key::Registration(n) => write!(f, "reg:{open}{n}{close}"),
            Key::Quota(idx, n) => write!(f, "q{idx}:{open}{n}{close}"),
            Key::Global(idx) => write!(f, "g{idx}{app}"),
        }
    }
}

/// The keys of one script call, written end to end; a key's index is its place in KEYS.
pub(super) struct Keys {
    pub(super) text: String,
    pub(super) ends: Vec<usize>,
    /// With hash tags (a cluster).
    tagged: bool,
}

impl Keys {
    pub(super) fn new(tagged: bool) -> Self {
        Self {
            text: String::new(),
            ends: Vec::new(),
            tagged,
        }
    }

    pub(super) fn add(&mut self, prefix: &str, key: Key) -> i64 {
        use fmt::Write as _;
        self.text.push_str(prefix);
        let _ = match self.tagged {
            true => write!(self.text, "{key:#}"),
            false => write!(self.text, "{key}"),
        };
        self.ends.push(self.text.len());
        self.ends.len() as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hash tag Redis Cluster hashes: the text between the first `{` and the next `}`.
    fn tag(key: &str) -> &str {
        let open = key.find('{').expect("a tag");
        let close = key[open..].find('}').expect("a closed tag") + open;
        &key[open + 1..close]
    }

    #[test]
    fn one_redis_keeps_its_names_and_a_cluster_gets_one_tag_per_number_waba_and_app() {
        let (rc, n) = (QuotaClass::RequestCode, Number(Some(42)));
        let plain = [
            (Key::Cooldown(rc, n), "cd:request_code:42"),
            (Key::AppCooldown(rc), "cd:request_code:app"),
            (Key::WabaQuota(0, 7), "wq0:7"),
            (Key::WabaCooldown(rc, 7), "cd:request_code:w7"),
            (Key::Quota(1, n), "q1:42"),
            (Key::Global(0), "g0"),
        ];
        for (key, name) in plain {
            assert_eq!(key.to_string(), name);
        }
        let number = [
            Key::Cooldown(rc, n),
            Key::CooldownRecord(rc, n),
            Key::WrongCodes(n),
            Key::Registration(n),
            Key::Quota(0, n),
        ];
        for key in number {
            assert_eq!(tag(&format!("{key:#}")), "42", "{key:#}");
        }
        for key in [
            Key::WabaCooldown(rc, 7),
            Key::WabaCooldownRecord(rc, 7),
            Key::WabaQuota(0, 7),
        ] {
            assert_eq!(tag(&format!("{key:#}")), "w7", "{key:#}");
        }
        for key in [Key::AppCooldown(rc), Key::Global(0)] {
            assert_eq!(tag(&format!("{key:#}")), "app", "{key:#}");
        }
    }
}

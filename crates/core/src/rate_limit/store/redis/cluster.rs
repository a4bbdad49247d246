//! The store on a Redis Cluster. A check's keys live under up to three hash tags (its
//! number's, its WABA's and the app's), and one script call reads one slot, so a check
//! runs part by part: the number's, then the WABA's, then the app's, each part one script
//! call per hash tag for the whole batch, the calls of a part sent together. A part that
//! refuses ends the check, and what the earlier parts took is given back before the check
//! answers: every slot or none still holds once it returns. Between the take and the give
//! back (one round trip), the slot is held, and another call may be refused for it.

use std::collections::HashMap;

use futures_util::future::join_all;
use tokio::time::Instant;

use super::batch::{Check, Part, S_COOLDOWN, S_GLOBAL, S_WABA};
use super::keys::{Key, Number};
use super::probe::why;
use super::state::Inner;
use crate::rate_limit::store::QuotaClass;

/// Gives back one part's slots: see `give_back.lua`.
pub(super) const GIVE_BACK: &str = include_str!("give_back.lua");

/// What one part answered for one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// The check had no such part, or an earlier part ended it.
    Skipped,
    /// Its shard failed or did not answer in time.
    Failed,
    /// The script's answer (see `ACQUIRE`).
    Answer(i64),
}

impl Step {
    fn goes(self) -> bool {
        matches!(self, Step::Answer(a) if a <= 0)
    }

    /// Went and took its slots (not just reported them, in shadow mode).
    fn took(self) -> bool {
        matches!(self, Step::Answer(a) if a <= 0 && -a % 8 == 0)
    }
}

/// Answers `checks` in order, as the acquire script would on one Redis: the script's
/// answer, or `None` for a check whose shard failed (`on_store_error` answers it).
pub(super) async fn run(inner: &Inner, checks: &[Check], deadline: Instant) -> Vec<Option<i64>> {
    let all: Vec<usize> = (0..checks.len()).collect();
    let number = part(inner, checks, &all, Part::Number, deadline).await;
    let next: Vec<usize> = all
        .iter()
        .copied()
        .filter(|&i| number[i].goes() && checks[i].key.is_some() && checks[i].waba.is_some())
        .collect();
    let waba = part(inner, checks, &next, Part::Waba, deadline).await;
    let next: Vec<usize> = all
        .iter()
        .copied()
        .filter(|&i| number[i].goes() && matches!(waba[i], Step::Skipped) || waba[i].goes())
        .collect();
    let app = part(inner, checks, &next, Part::App, deadline).await;

    let mut out = Vec::with_capacity(checks.len());
    let mut give_back = Vec::new();
    for i in all {
        let steps = [
            (number[i], Part::Number),
            (waba[i], Part::Waba),
            (app[i], Part::App),
        ];
        let mut answer = Some(0);
        for (step, part) in steps {
            match step {
                Step::Failed => answer = None,
                // On its own shard a WABA's cooldown is the check's first key.
                Step::Answer(a) if a > 0 && part == Part::Waba && a % 8 == S_COOLDOWN => {
                    answer = Some(a - S_COOLDOWN + S_WABA);
                }
                Step::Answer(a) if a > 0 => answer = Some(a),
                _ => continue,
            }
            break;
        }
        // Near the limit and shadowed, as one script reports them: the first quota's, in
        // the order number, global, WABA.
        let first = |f: fn(i64) -> i64| {
            [number[i], app[i], waba[i]]
                .into_iter()
                .filter_map(|s| match s {
                    Step::Answer(a) if a <= 0 => Some(f(-a)),
                    _ => None,
                })
                .find(|v| *v != 0)
                .unwrap_or(0)
        };
        let (near, shadowed) = (first(|a| a / 8), first(|a| a % 8));
        if answer == Some(0) {
            answer = Some(-(near * 8 + shadowed));
        }
        // A refused, failed or shadowed check takes no slot anywhere.
        if answer.is_none_or(|a| a > 0 || shadowed != 0) {
            give_back.extend(
                steps
                    .into_iter()
                    .filter(|(s, _)| s.took())
                    .map(|(_, part)| (i, part)),
            );
        }
        out.push(answer);
    }
    let cmds: Vec<redis::Cmd> = give_back
        .into_iter()
        .filter_map(|(i, part)| give_back_command(inner, &checks[i], part))
        .collect();
    let given = join_all(cmds.iter().map(|cmd| {
        tokio::time::timeout(
            inner.config.timeout,
            inner.eval::<i64>(&inner.give_back, cmd),
        )
    }))
    .await;
    if given.iter().any(|g| !matches!(g, Ok(Ok(_)))) {
        // Those slots stay taken until their quotas refill: safe, only stricter.
        inner.shard_failed("could not give back a slot");
    }
    if out.iter().all(Option::is_some) && !out.is_empty() {
        inner.recovered();
    }
    out
}

/// One part of the checks at `which`: one script call per hash tag, sent together.
async fn part(
    inner: &Inner,
    checks: &[Check],
    which: &[usize],
    part: Part,
    deadline: Instant,
) -> Vec<Step> {
    let mut steps = vec![Step::Skipped; checks.len()];
    let mut groups: HashMap<(Option<u64>, Option<u64>), Vec<usize>> = HashMap::new();
    for &i in which {
        let tag = match part {
            Part::Number => (checks[i].key, None),
            Part::Waba => (None, checks[i].waba),
            _ => (None, None),
        };
        groups.entry(tag).or_default().push(i);
    }
    let groups: Vec<Vec<usize>> = groups.into_values().collect();
    let cmds: Vec<redis::Cmd> = groups
        .iter()
        .map(|g| inner.batch_command(&g.iter().map(|&i| &checks[i]).collect::<Vec<_>>(), part))
        .collect();
    let replies =
        join_all(cmds.iter().map(|cmd| {
            tokio::time::timeout_at(deadline, inner.eval::<Vec<i64>>(&inner.acquire, cmd))
        }))
        .await;
    for (g, reply) in groups.iter().zip(replies) {
        let failure = match reply {
            Ok(Ok(v)) if v.len() == g.len() => {
                for (&i, a) in g.iter().zip(v) {
                    steps[i] = Step::Answer(a);
                }
                continue;
            }
            Ok(Ok(_)) => "unexpected script answer",
            Ok(Err(e)) => why(&e),
            Err(_) => "timeout",
        };
        // Every call needs the app's shard: without it Redis is down for all of them.
        // Without a number's or a WABA's, only the calls it holds are.
        match part {
            Part::App => inner.failed(failure),
            _ => inner.shard_failed(failure),
        }
        for &i in g {
            steps[i] = Step::Failed;
        }
    }
    steps
}

/// The give-back of what `part` took for `check`, or `None` when it took nothing.
fn give_back_command(inner: &Inner, check: &Check, part: Part) -> Option<redis::Cmd> {
    let prefix = inner.config.key_prefix.as_str();
    let number = Number(check.key);
    let mut keys: Vec<String> = Vec::new();
    let mut intervals: Vec<i64> = Vec::new();
    let mut quota = |key: Key, idx: usize| {
        keys.push(format!("{prefix}{key:#}"));
        intervals.push(inner.quotas[idx].0);
    };
    match (part, check.waba) {
        (Part::Number, _) if check.key.is_some() => {
            for &idx in &inner.per_class[check.class.index()] {
                quota(Key::Quota(idx, number), idx);
            }
        }
        (Part::Waba, Some(w)) => inner
            .scoped(S_WABA)
            .for_each(|idx| quota(Key::WabaQuota(idx, w), idx)),
        (Part::App, _) => inner
            .scoped(S_GLOBAL)
            .for_each(|idx| quota(Key::Global(idx), idx)),
        _ => {}
    }
    let registration = part == Part::Number
        && check.key.is_some()
        && check.class == QuotaClass::Registration
        && inner.limits.registration.is_some();
    if registration {
        keys.push(format!("{prefix}{:#}", Key::Registration(number)));
    }
    if keys.is_empty() {
        return None;
    }
    let mut cmd = redis::cmd("EVALSHA");
    cmd.arg(inner.give_back.get_hash())
        .arg(keys.len())
        .arg(keys)
        .arg(if registration { "1" } else { "0" })
        .arg(intervals);
    Some(cmd)
}

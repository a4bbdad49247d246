//! Quotas as a sliding log: the times of the recent calls, plainly counted. The sandbox is
//! the oracle, not the fast path, so it keeps the simplest model that is obviously right.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use crate::units::SandboxQuota;

/// The times of the calls a quota admitted, at most its limit of them.
#[derive(Debug, Default)]
pub(crate) struct SlidingLog {
    calls: VecDeque<Instant>,
}

impl SlidingLog {
    /// Admits a call at `now` when fewer than `limit` calls fell in the moving window
    /// before it, and records it; otherwise says how long until the oldest leaves it.
    pub(crate) fn admit(&mut self, quota: SandboxQuota, now: Instant) -> Result<(), Duration> {
        let window = quota.window();
        while self
            .calls
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= window)
        {
            self.calls.pop_front();
        }
        if self.calls.len() >= quota.limit() as usize {
            let oldest = self.calls.front().copied().unwrap_or(now);
            return Err((oldest + window).saturating_duration_since(now));
        }
        self.calls.push_back(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn at_most_the_limit_in_any_window() {
        let quota = SandboxQuota::new(2, Duration::from_secs(60), 0).unwrap();
        let mut log = SlidingLog::default();
        let t0 = Instant::now();
        assert!(log.admit(quota, t0).is_ok());
        assert!(log.admit(quota, t0 + Duration::from_secs(10)).is_ok());
        assert_eq!(
            log.admit(quota, t0 + Duration::from_secs(20)),
            Err(Duration::from_secs(40))
        );
        assert!(log.admit(quota, t0 + Duration::from_secs(60)).is_ok());
        assert!(log.admit(quota, t0 + Duration::from_secs(61)).is_err());
    }
}

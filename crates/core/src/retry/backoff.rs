//! The seam over the `backoff` crate: only its exponential schedule is used.
//!
//! `backoff` is unmaintained (RUSTSEC-2025-0012); keeping it behind this one type means
//! swapping it out touches nothing else.

use std::time::Duration;

use backoff::backoff::Backoff as _;
use backoff::ExponentialBackoff;

/// The exponential schedule's settings.
#[derive(Clone, Debug, PartialEq)]
pub struct BackoffConfig {
    /// The first wait.
    pub initial: Duration,
    /// The factor between waits.
    pub multiplier: f64,
    /// The longest wait the schedule gives.
    pub max: Duration,
    /// The jitter factor: each wait is drawn from `wait × (1 ± jitter)`.
    pub jitter: f64,
}

impl Default for BackoffConfig {
    /// 200 ms, doubling, up to 5 s, ±50% jitter.
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(200),
            multiplier: 2.0,
            max: Duration::from_secs(5),
            jitter: 0.5,
        }
    }
}

/// One call's schedule of waits: exponential with jitter, never giving up by itself.
#[derive(Debug, Clone)]
pub(crate) struct Schedule(ExponentialBackoff);

impl Schedule {
    pub(crate) fn new(s: &BackoffConfig) -> Self {
        Self(ExponentialBackoff {
            current_interval: s.initial,
            initial_interval: s.initial,
            randomization_factor: s.jitter,
            multiplier: s.multiplier,
            max_interval: s.max,
            // Its default stops after 15 minutes; our deadline owns the total instead.
            max_elapsed_time: None,
            ..ExponentialBackoff::default()
        })
    }

    pub(crate) fn next_wait(&mut self) -> Duration {
        // With `max_elapsed_time: None` the schedule never ends; fall back to the cap.
        self.0.next_backoff().unwrap_or(self.0.max_interval)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_exponentially_to_the_cap_without_jitter() {
        let mut s = Schedule::new(&BackoffConfig {
            initial: Duration::from_millis(100),
            multiplier: 2.0,
            max: Duration::from_millis(350),
            jitter: 0.0,
        });
        let waits: Vec<_> = (0..4).map(|_| s.next_wait().as_millis()).collect();
        assert_eq!(waits, [100, 200, 350, 350]);
    }

    #[test]
    fn jitter_stays_within_its_factor() {
        let mut s = Schedule::new(&BackoffConfig {
            initial: Duration::from_millis(1000),
            multiplier: 1.0,
            max: Duration::from_secs(10),
            jitter: 0.5,
        });
        for _ in 0..100 {
            let w = s.next_wait().as_millis();
            assert!((500..=1500).contains(&w), "{w}");
        }
    }
}

//! Layer behaviour with in-memory services and tokio's paused clock.

// Scripted inner services and outcome builders.
mod support;

// The retry policy, one test per row of the classification table, hints and budget.
mod retry;
// Per-number and global quotas: waiting, failing fast, eviction.
mod rate_limit;
// Attempt timeout and the deadline around retries.
mod timeout;
// The bearer token, static and from a provider.
mod auth;

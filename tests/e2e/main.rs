//! End-to-end tests: the library, the sandbox and the CLI over real loopback HTTP.

// The axum example's router (examples/axum_gateway/app.rs), served in-process by a test.
#[path = "../../examples/axum_gateway/app.rs"]
mod axum_gateway;
// Helpers: a plain HTTP client, a raw scripted server, client builders.
mod support;

// The core call through the real transport against a scripted server (every status).
mod transport;
// The sandbox driven by a plain HTTP client: encodings, errors, flow, quotas, faults.
mod sandbox;
// The full stack against the sandbox: request, verify, retries, limits, timeouts.
mod stack;
// The CLI binary: outputs, exit codes, token sources, sandbox and bench.
mod cli;
// Register, deregister and the typed onboarding flow.
mod onboarding;
// Faults, soak, cancellation: nothing lost, nothing sent twice.
mod reliability;
// The Redis store against a real redis-server: replicas, cooldowns, faults.
mod redis_store;
// The Redis store and dedup on a real 3-primary Redis Cluster: parts, replicas, a dead shard.
mod cluster;
// The cluster itself, shared with the throughput bench.
mod redis_cluster;
// The number's status, the preflight in onboarding, status and onboard in the CLI.
mod status;
// Tenants: a token per call, limits per WABA, the CLI's tenants file.
mod tenants;
// One code per number: single flight, the live-code window, idempotency keys, the journal.
mod dedup;
// Metrics scraped from real bench and sandbox processes.
mod metrics;
// The CLI and the sandbox under hostile or careless use: JSON on every exit, signals, limits.
mod abuse;
// The source tree's rules: imports run one way, files of one concern stay small.
mod layout;
// Tracing output: fbtrace_id recorded, no secret anywhere.
mod tracing;

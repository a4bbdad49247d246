//! Loopback throughput (placeholder until the harness lands).
fn main() {}

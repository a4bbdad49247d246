use std::collections::HashMap;
use std::time::Duration;

use wa_verify_core::{Error, ErrorKind};
use wa_verify_sandbox::{FaultBody, FaultKind, NumberFault, SandboxConfig};

use crate::support::*;

/// What one cell of the fault matrix must give.
struct Expect {
    kind: ErrorKind,
    status: Option<u16>,
    attempts: u32,
}

fn expect(status: u16, body: FaultBody) -> Expect {
    // A 429 without a wait hint implies the 10-minute default cooldown: far past the
    // deadline, so it fails fast as rate_limited instead of being retried.
    let retried = status == 503 || (status == 500 && body == FaultBody::Graph);
    let kind = match (body, status) {
        (_, 429) => ErrorKind::RateLimited,
        (FaultBody::Graph, 200) => ErrorKind::Protocol,
        (FaultBody::Graph, s) => ErrorKind::from_status(http::StatusCode::from_u16(s).unwrap()),
        _ => ErrorKind::Protocol,
    };
    Expect {
        kind,
        status: Some(status),
        attempts: if retried { 4 } else { 1 },
    }
}

#[tokio::test(start_paused = true)]
async fn fault_matrix_every_status_and_body_gives_the_right_kind_status_trace_and_attempts() {
    let statuses = [200u16, 400, 401, 403, 404, 422, 429, 500, 502, 503, 504];
    let bodies = [
        FaultBody::Graph,
        FaultBody::Html,
        FaultBody::Empty,
        FaultBody::Truncated,
    ];
    let mut cfg = SandboxConfig::default();
    let mut cells = Vec::new();
    for (i, status) in statuses.iter().enumerate() {
        for (j, body) in bodies.iter().enumerate() {
            let id_ = format!("{}", 10_000 + i * 10 + j);
            cfg.number_faults
                .insert(id_.clone(), NumberFault::answer(*status, *body));
            cells.push((id_, expect(*status, *body), format!("{status} {body:?}")));
        }
    }
    for (id_, kind) in [
        ("1", FaultKind::Hang),
        ("2", FaultKind::DropBeforeSend),
        ("3", FaultKind::OversizedBody),
    ] {
        cfg.number_faults
            .insert(id_.into(), NumberFault::always(kind));
    }
    cells.push((
        "1".into(),
        Expect {
            kind: ErrorKind::Timeout,
            status: None,
            attempts: 1,
        },
        "hang".into(),
    ));
    cells.push((
        "2".into(),
        Expect {
            kind: ErrorKind::Transport,
            status: None,
            attempts: 1,
        },
        "dropped".into(),
    ));
    cells.push((
        "3".into(),
        Expect {
            kind: ErrorKind::Protocol,
            status: Some(200),
            attempts: 1,
        },
        "oversized".into(),
    ));
    let sb = sandbox(cfg).await;
    let mut ccfg = client_config(sb.base_url());
    ccfg.retry.budget_percent = 0.0;
    ccfg.timeouts.attempt = Some(Duration::from_secs(2));
    let c = client(ccfg);
    for (id_, want, label) in &cells {
        let before = sb.stats().requests;
        let e = c.request_code(request(id_)).await.unwrap_err();
        assert_eq!(e.kind(), want.kind, "{label}: {e}");
        assert_eq!(e.status().map(|s| s.as_u16()), want.status, "{label}");
        assert_eq!(e.attempts(), want.attempts, "{label}: {e}");
        if label != "hang" {
            // A hung request is still in the sandbox's hands, so it is not counted yet.
            assert_eq!(
                sb.stats().requests - before,
                u64::from(want.attempts),
                "{label}: requests reaching the sandbox"
            );
        }
        if want.status.is_some() {
            assert_eq!(e.fbtrace_id().map(str::len), Some(23), "{label}");
        }
    }
}

/// Drives `calls` request_code calls over `numbers` numbers with `workers` workers, each
/// owning its numbers so codes can be counted per call. Returns (successes, failures by
/// kind, duplicates).
async fn soak(calls: usize, retry_ambiguous: bool) -> (u64, HashMap<&'static str, u64>, u64) {
    let numbers = 1000usize;
    let workers = 64usize;
    let mut cfg = SandboxConfig::default();
    cfg.faults.probability = 0.1;
    cfg.faults.seed = 7;
    cfg.faults.latency = Duration::from_millis(20);
    // Two numbers drop after sending on their first call, whatever the draw.
    for id_ in ["5000000000", "5000000001"] {
        cfg.number_faults
            .insert(id_.into(), NumberFault::times(FaultKind::DropAfterSend, 1));
    }
    let sb = sandbox(cfg).await;
    let mut ccfg = client_config(sb.base_url());
    ccfg.timeouts.attempt = Some(Duration::from_millis(300));
    ccfg.retry.retry_ambiguous = retry_ambiguous;
    ccfg.retry.budget_percent = 0.0;
    let c = client(ccfg);
    let outbox = sb.outbox().clone();
    let started = std::time::Instant::now();
    let tasks: Vec<_> = (0..workers)
        .map(|w| {
            let c = c.clone();
            let outbox = outbox.clone();
            tokio::spawn(async move {
                let mine: Vec<String> = (0..numbers)
                    .filter(|n| n % workers == w)
                    .map(|n| (5_000_000_000u64 + n as u64).to_string())
                    .collect();
                let share = calls / workers + usize::from(w < calls % workers);
                let mut results: Vec<(String, Result<Option<String>, Error>, u64)> =
                    Vec::with_capacity(share);
                for k in 0..share {
                    let id_ = &mine[k % mine.len()];
                    let before = outbox.sent_to(id_);
                    let r = c
                        .request_code(request(id_))
                        .await
                        .map(|a| a.fbtrace_id().map(str::to_owned));
                    let codes = outbox.sent_to(id_) - before;
                    results.push((id_.clone(), r, codes));
                }
                results
            })
        })
        .collect();
    let mut outcomes = 0usize;
    let mut ok = 0u64;
    let mut failures: HashMap<&'static str, u64> = HashMap::new();
    let mut duplicates = 0u64;
    let mut success_traces = Vec::new();
    for t in tasks {
        for (_id, r, codes) in t.await.unwrap() {
            outcomes += 1;
            duplicates += codes.saturating_sub(1);
            match r {
                Ok(trace) => {
                    ok += 1;
                    if !retry_ambiguous {
                        assert_eq!(codes, 1, "a success sent exactly one code");
                    }
                    success_traces.push(trace.expect("every answer has a trace id"));
                }
                Err(e) => *failures.entry(e.kind().as_str()).or_default() += 1,
            }
        }
    }
    assert_eq!(outcomes, calls, "every call returned exactly one outcome");
    assert_eq!(ok + failures.values().sum::<u64>(), calls as u64);
    let mut by_trace: HashMap<String, u32> = HashMap::new();
    for e in outbox.entries() {
        *by_trace.entry(e.fbtrace_id).or_default() += 1;
    }
    for t in &success_traces {
        assert_eq!(
            by_trace.get(t),
            Some(&1),
            "a success matches exactly one outbox code"
        );
    }
    eprintln!(
        "soak: {calls} calls in {:.1}s, {ok} ok, failures {failures:?}, duplicates {duplicates} (retry_ambiguous: {retry_ambiguous}), requests {}",
        started.elapsed().as_secs_f64(),
        sb.stats().requests
    );
    sb.shutdown().await;
    (ok, failures, duplicates)
}

fn soak_calls() -> usize {
    std::env::var("WA_VERIFY_SOAK_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_with_faults_of_every_kind_loses_nothing_and_never_sends_twice() {
    let (ok, failures, duplicates) = soak(soak_calls(), false).await;
    assert_eq!(duplicates, 0, "the default policy never sent a second code");
    assert!(ok > 0 && !failures.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_with_retry_ambiguous_counts_the_duplicates_it_causes() {
    let (_, _, duplicates) = soak(4_000, true).await;
    assert!(
        duplicates >= 2,
        "the two numbers that drop after sending were sent twice"
    );
}

#[tokio::test(start_paused = true)]
async fn cancelled_calls_leak_no_tasks_slots_or_connections() {
    let mut cfg = SandboxConfig::default();
    cfg.faults.probability = 1.0;
    cfg.faults.kinds = vec![FaultKind::Latency];
    cfg.faults.latency = Duration::from_millis(100);
    let sb = sandbox(cfg).await;
    let mut ccfg = client_config(sb.base_url());
    ccfg.rate_limit.per_number = vec![wa_verify_core::rate_limit::Quota::new(
        "10/s".parse().unwrap(),
        1,
    )];
    ccfg.rate_limit.max_wait = Duration::from_secs(1);
    let c = client(ccfg);
    c.request_code(request("900")).await.unwrap();
    let metrics = tokio::runtime::Handle::current().metrics();
    let baseline = metrics.num_alive_tasks();
    // 200 calls on 20 numbers, each dropped after 0 to 199 ms: some while waiting for
    // their slot, some in flight, some after the answer.
    let calls: Vec<_> = (0..200u64)
        .map(|i| {
            let c = c.clone();
            tokio::spawn(async move {
                let op = request(&(1000 + i % 20).to_string());
                tokio::time::timeout(Duration::from_millis(i), c.request_code(op))
                    .await
                    .is_ok()
            })
        })
        .collect();
    for call in calls {
        call.await.unwrap();
    }
    // Let the sandbox finish the requests the client gave up on.
    tokio::time::advance(Duration::from_secs(2)).await;
    for _ in 0..1000 {
        if sb.stats().in_flight == 0 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(sb.stats().in_flight, 0);
    let open = sb.stats().open_connections;
    assert!(
        open <= 64,
        "connections of cancelled calls were closed or pooled: {open}"
    );
    // Each open connection has a server task and a client dispatcher task; nothing else
    // may outlive the calls.
    let alive = metrics.num_alive_tasks();
    assert!(
        alive <= baseline + 2 * open as usize,
        "tasks alive {alive}, baseline {baseline}, connections {open}"
    );
    // No slot is held: after a period every number is callable at once.
    tokio::time::advance(Duration::from_secs(1)).await;
    for n in 0..20u64 {
        let e = c.request_code(request(&(1000 + n).to_string())).await;
        assert!(e.is_ok(), "{n}: {:?}", e.err());
    }
}

use std::collections::HashMap;
use std::time::Duration;

use wa_verify_core::{CodeMethod, ErrorKind, RequestCode};
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

/// The live-code window of the soak: short, so numbers are sent to again and again.
const SOAK_WINDOW: Duration = Duration::from_millis(150);

/// What a soak saw.
#[derive(Debug, Default)]
struct Soak {
    ok: u64,
    failures: HashMap<&'static str, u64>,
    /// Codes sent to a number within the window of its previous code, by a call that did
    /// not ask to send again: the codes "never a second code by accident" forbids.
    second_codes: u64,
    shared: u64,
    already_sent: u64,
    replayed: u64,
}

/// Milliseconds since the epoch of the sandbox's `2026-12-02T16:00:41.123Z`.
fn epoch_ms(rfc3339: &str) -> i64 {
    let n = |r: std::ops::Range<usize>| rfc3339[r].parse::<i64>().unwrap();
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    ((days * 24 + n(11..13)) * 60 + n(14..16)) * 60_000 + n(17..19) * 1000 + n(20..23)
}

/// Drives `calls` request_code calls over 1000 numbers with 64 workers, with the dedup
/// layer on as deployed: four workers call each number at about the same time (single
/// flight), every request is repeated (the live-code window), one in ten asks to send
/// again (with another language, so its codes can be told apart) and one in ten carries an
/// idempotency key its group shares.
async fn soak(calls: usize, retry_ambiguous: bool) -> Soak {
    let numbers = 1000u64;
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
    ccfg.dedup.window = SOAK_WINDOW;
    let c = client(ccfg);
    let started = std::time::Instant::now();
    let tasks: Vec<_> = (0..workers)
        .map(|w| {
            let c = c.clone();
            tokio::spawn(async move {
                let group = (w / 4) as u64;
                let share = calls / workers + usize::from(w < calls % workers);
                let mut results = Vec::with_capacity(share);
                for k in 0..share as u64 {
                    // Each number twice in a row: the repeat meets the window.
                    let n = (group * 61 + k / 2) % numbers;
                    let id_ = (5_000_000_000 + n).to_string();
                    let mut op = request(&id_);
                    if k % 10 == 9 {
                        op = RequestCode::new(id(&id_), CodeMethod::Sms, "pt_BR".parse().unwrap())
                            .resend();
                    } else if k % 10 == 4 {
                        op = op.idempotency_key(format!("soak-{group}-{k}"));
                    }
                    results.push(c.request_code(op).await);
                }
                results
            })
        })
        .collect();
    let mut outcomes = 0usize;
    let mut soak = Soak::default();
    let mut traces = Vec::new();
    for t in tasks {
        for r in t.await.unwrap() {
            outcomes += 1;
            match r {
                Ok(a) => {
                    soak.ok += 1;
                    soak.shared += u64::from(a.is_shared());
                    soak.replayed += u64::from(a.is_replayed());
                    if a.already_sent().is_some() {
                        soak.already_sent += 1;
                        assert_eq!(a.attempts(), 0, "an already-sent answer sent nothing");
                    } else {
                        traces.push(
                            a.fbtrace_id()
                                .expect("a sent code's answer has a trace id")
                                .to_owned(),
                        );
                    }
                }
                Err(e) => {
                    soak.shared += u64::from(e.is_shared());
                    soak.replayed += u64::from(e.is_replayed());
                    *soak.failures.entry(e.kind().as_str()).or_default() += 1;
                }
            }
        }
    }
    assert_eq!(outcomes, calls, "every call returned exactly one outcome");
    assert_eq!(soak.ok + soak.failures.values().sum::<u64>(), calls as u64);
    let entries = sb.outbox().entries();
    let mut by_trace: HashMap<&str, u32> = HashMap::new();
    let mut by_number: HashMap<&str, Vec<(i64, &str)>> = HashMap::new();
    for e in &entries {
        *by_trace.entry(&e.fbtrace_id).or_default() += 1;
        by_number
            .entry(&e.phone_number_id)
            .or_default()
            .push((epoch_ms(&e.sent_at), &e.language));
    }
    for t in &traces {
        assert_eq!(
            by_trace.get(t.as_str()),
            Some(&1),
            "every success (own, shared or replayed) matches exactly one outbox code"
        );
    }
    // A code that is not a resend must come a full window after the number's previous
    // code (less 20 ms for the two clocks' rounding).
    let window = SOAK_WINDOW.as_millis() as i64 - 20;
    for codes in by_number.values_mut() {
        codes.sort();
        soak.second_codes += codes
            .windows(2)
            .filter(|p| p[1].1 == "en_US" && p[1].0 - p[0].0 < window)
            .count() as u64;
    }
    eprintln!(
        "soak: {calls} calls in {:.1}s, {} codes sent, {:?} (retry_ambiguous: {retry_ambiguous}), requests {}",
        started.elapsed().as_secs_f64(),
        entries.len(),
        soak,
        sb.stats().requests
    );
    sb.shutdown().await;
    soak
}

fn soak_calls() -> usize {
    std::env::var("WA_VERIFY_SOAK_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_with_faults_of_every_kind_loses_nothing_and_never_sends_twice() {
    let s = soak(soak_calls(), false).await;
    assert_eq!(
        s.second_codes, 0,
        "the default policy never sent a second code"
    );
    assert!(s.ok > 0 && !s.failures.is_empty(), "{s:?}");
    assert!(
        s.shared > 0 && s.already_sent > 0 && s.replayed > 0,
        "the soak shares, finds codes already sent and replays: {s:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_with_retry_ambiguous_counts_the_duplicates_it_causes() {
    let s = soak(4_000, true).await;
    assert!(
        s.second_codes >= 2,
        "the two numbers that drop after sending were sent twice: {s:?}"
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
    // No slot and no flight is held: after a period every number is callable at once
    // (asking to send again, since a cancelled call may have sent a code).
    tokio::time::advance(Duration::from_secs(1)).await;
    for n in 0..20u64 {
        let e = c
            .request_code(request(&(1000 + n).to_string()).resend())
            .await;
        assert!(e.is_ok(), "{n}: {:?}", e.err());
    }
}

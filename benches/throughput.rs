//! Loopback throughput, in one run against one sandbox process (faults off):
//!
//! 1. alternating rounds of a bare hyper-util client, the wa-verify full stack, and
//!    reqwest + reqwest-middleware + reqwest-retry, at concurrency 1 and 64, with req/s,
//!    p50/p99, client CPU per request and the ratio of each to bare hyper in its round;
//! 2. throughput under rate limits: N numbers with quota q and demand above it, against a
//!    sandbox enforcing the same quota;
//! 3. the sandbox's capacity (its own CPU per request).
//!
//! `cargo bench --bench throughput` runs the full version (about two minutes); under
//! `cargo test` it runs one short smoke round of each, so it cannot rot. The client is
//! pinned to core 0 and the sandbox to core 1 when the machine has two cores.

mod support;

// The e2e tests' 3-primary cluster; the bench starts and reads it, and kills no node.
#[allow(dead_code)]
#[path = "../tests/e2e/redis_cluster.rs"]
mod redis_cluster;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use reqwest_middleware::ClientWithMiddleware;
use reqwest_retry::policies::ExponentialBackoff;
use reqwest_retry::RetryTransientMiddleware;
use wa_verify_core::rate_limit::Quota;
use wa_verify_core::{Client, CodeMethod, Language, PhoneNumberId, RequestCode};

use support::{stack_config, FAKE_TOKEN};

const BODY: &str = r#"{"code_method":"SMS","language":"en_US"}"#;
const NUMBERS: u64 = 1000;

/// A `wa-verify sandbox` child process.
struct SandboxProc {
    child: Child,
    base: String,
}

impl SandboxProc {
    fn start(config: Option<&str>) -> Self {
        let mut cmd = on_server_core(env!("CARGO_BIN_EXE_wa-verify"));
        cmd.args(["sandbox", "--listen", "127.0.0.1:0"]);
        let path = config.map(|text| {
            let path =
                std::env::temp_dir().join(format!("wa-verify-bench-{}.toml", std::process::id()));
            std::fs::File::create(&path)
                .and_then(|mut f| f.write_all(text.as_bytes()))
                .unwrap();
            cmd.arg("--config").arg(&path);
            path
        });
        let child = cmd
            .env("WHATSAPP_ACCESS_TOKEN", FAKE_TOKEN)
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the wa-verify binary runs");
        let server = Self::listening(child);
        if let Some(p) = path {
            let _ = std::fs::remove_file(p);
        }
        server
    }

    /// Waits for a server's first line, "... listening on http://127.0.0.1:PORT", and checks
    /// that it runs away from the client.
    fn listening(mut child: Child) -> Self {
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let base = line.trim().rsplit(' ').next().unwrap().to_owned();
        assert!(
            base.starts_with("http://127.0.0.1:"),
            "server said {line:?}"
        );
        assert_on_server_core(child.id());
        Self { child, base }
    }

    /// A minimal hyper server (this binary run with `--minimal-server`): no sandbox logic,
    /// just `{"success":true}` with a trace header, so the client is the bottleneck.
    fn minimal() -> Self {
        let exe = std::env::current_exe().expect("the bench binary's path");
        let child = on_server_core(exe)
            .arg("--minimal-server")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the bench binary runs as a server");
        Self::listening(child)
    }

    /// The sandbox process's CPU time so far.
    fn cpu(&self) -> Duration {
        cpu_of(&format!("/proc/{}/stat", self.child.id()))
    }
}

impl Drop for SandboxProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether the client and the servers get a core each. Decided once, before this
/// process pins itself: after that, `available_parallelism` sees one core, and the
/// servers would share the client's.
fn two_cores() -> bool {
    static TWO: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *TWO.get_or_init(|| {
        std::thread::available_parallelism()
            .map(|n| n.get() >= 2)
            .unwrap_or(false)
            && Command::new("taskset").arg("-V").output().is_ok()
    })
}

/// A command running `program` on core 1, away from the client, when there are two cores.
fn on_server_core(program: impl AsRef<std::ffi::OsStr>) -> Command {
    if two_cores() {
        let mut c = Command::new("taskset");
        c.args(["-c", "1"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// Checks that a server the harness started runs on core 1, away from the client: the
/// harness once started them all on the client's core without noticing.
fn assert_on_server_core(pid: u32) {
    if !two_cores() {
        return;
    }
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let cores = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .map(str::trim);
    // Unreadable (no /proc): nothing to check.
    if let Some(cores) = cores {
        assert_eq!(cores, "1", "server {pid} should run on core 1 only");
    }
}

/// utime + stime of a process, from /proc (clock ticks of 10 ms).
fn cpu_of(stat: &str) -> Duration {
    let text = std::fs::read_to_string(stat).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are 14 and 15.
    let rest = text.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| f.get(i).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
    // `rest` starts at field 3 (state), so utime (14) and stime (15) are at 11 and 12.
    let ticks = field(11) + field(12);
    Duration::from_millis(ticks * 10)
}

#[derive(Clone)]
enum Peer {
    Bare(HyperClient<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>),
    /// The bare client with `TCP_NODELAY`, as the stack's transport and reqwest set it.
    BareNoDelay(HyperClient<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>),
    Stack(Client),
    Reqwest(ClientWithMiddleware),
}

impl Peer {
    fn name(&self) -> &'static str {
        match self {
            Peer::Bare(_) => "bare hyper-util",
            Peer::BareNoDelay(_) => "bare hyper-util, TCP_NODELAY",
            Peer::Stack(_) => "wa-verify full stack",
            Peer::Reqwest(_) => "reqwest+middleware+retry",
        }
    }

    async fn call(&self, base: &str, id: u64) -> Result<(), String> {
        let url = format!("{base}/v23.0/{id}/request_code");
        match self {
            Peer::Bare(c) | Peer::BareNoDelay(c) => {
                let req = http::Request::post(url)
                    .header("content-type", "application/json")
                    .header("authorization", format!("Bearer {FAKE_TOKEN}"))
                    .body(Full::new(Bytes::from_static(BODY.as_bytes())))
                    .map_err(|e| e.to_string())?;
                let res = c.request(req).await.map_err(|e| format!("{e:?}"))?;
                let ok = res.status().is_success();
                let body = res
                    .into_body()
                    .collect()
                    .await
                    .map_err(|e| e.to_string())?
                    .to_bytes();
                success(ok, &body)
            }
            Peer::Stack(c) => {
                let op = RequestCode::new(
                    PhoneNumberId::from(id),
                    CodeMethod::Sms,
                    Language::default(),
                );
                c.request_code(op)
                    .await
                    .map(drop)
                    .map_err(|e| e.to_string())
            }
            Peer::Reqwest(c) => {
                let res = c
                    .post(url)
                    .header("content-type", "application/json")
                    .bearer_auth(FAKE_TOKEN)
                    .body(BODY)
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                let ok = res.status().is_success();
                let body = res.bytes().await.map_err(|e| e.to_string())?;
                success(ok, &body)
            }
        }
    }
}

/// Every client parses the answer, as the stack does.
fn success(ok: bool, body: &[u8]) -> Result<(), String> {
    #[derive(serde::Deserialize)]
    struct Answer {
        success: bool,
    }
    match serde_json::from_slice::<Answer>(body) {
        Ok(a) if ok && a.success => Ok(()),
        _ => Err(format!("answer: {}", String::from_utf8_lossy(body))),
    }
}

fn peers(base: &str) -> Vec<Peer> {
    let bare = HyperClient::builder(TokioExecutor::new())
        .pool_max_idle_per_host(256)
        .build_http();
    let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
    http.set_nodelay(true);
    let nodelay = HyperClient::builder(TokioExecutor::new())
        .pool_max_idle_per_host(256)
        .build(http);
    let mut cfg = stack_config(base);
    cfg.transport.pool_max_idle_per_host = 256;
    let stack = Client::from_config(cfg, FAKE_TOKEN.parse().unwrap()).unwrap();
    let inner = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .unwrap();
    let retry = RetryTransientMiddleware::new_with_policy(
        ExponentialBackoff::builder().build_with_max_retries(3),
    );
    let reqwest = reqwest_middleware::ClientBuilder::new(inner)
        .with(retry)
        .build();
    // WA_VERIFY_PEERS=stack (or bare, reqwest; comma-separated) keeps only those, for
    // profiling one client alone; the ratios then need bare among them.
    let only = std::env::var("WA_VERIFY_PEERS").unwrap_or_default();
    vec![
        Peer::Bare(bare),
        Peer::BareNoDelay(nodelay),
        Peer::Stack(stack),
        Peer::Reqwest(reqwest),
    ]
    .into_iter()
    .filter(|p| {
        only.is_empty()
            || only.split(',').any(|o| {
                p.name().starts_with(match o {
                    "bare" => "bare",
                    "stack" => "wa-verify",
                    _ => "reqwest",
                })
            })
    })
    .collect()
}

struct Round {
    ok: u64,
    errors: u64,
    first_error: Option<String>,
    rps: f64,
    p50_us: u64,
    p99_us: u64,
    cpu_per_req_us: f64,
    sandbox_cpu_per_req_us: f64,
}

/// `concurrency` tasks calling for `time` (and at most `max_calls` calls each).
async fn round(peer: &Peer, sandbox: &SandboxProc, concurrency: usize, time: Duration) -> Round {
    let cpu0 = cpu_of("/proc/self/stat");
    let sb0 = sandbox.cpu();
    let start = Instant::now();
    let end = start + time;
    let base: Arc<str> = sandbox.base.as_str().into();
    let tasks: Vec<_> = (0..concurrency)
        .map(|t| {
            let peer = peer.clone();
            let base = base.clone();
            tokio::spawn(async move {
                let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
                let (mut ok, mut errors, mut first_error) = (0u64, 0u64, None);
                let mut i = t as u64;
                // Bounded by time and by count.
                while Instant::now() < end && ok + errors < 10_000_000 {
                    let sent = Instant::now();
                    match peer.call(&base, 1_000_000_000 + i % NUMBERS).await {
                        Ok(()) => ok += 1,
                        Err(e) => {
                            errors += 1;
                            first_error.get_or_insert(e);
                        }
                    }
                    let _ = h.record(sent.elapsed().as_micros().max(1) as u64);
                    i += concurrency as u64;
                }
                (h, ok, errors, first_error)
            })
        })
        .collect();
    let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    let (mut ok, mut errors, mut first_error) = (0, 0, None);
    for t in tasks {
        let (th, tok, terr, tfirst) = t.await.unwrap();
        h.add(&th).unwrap();
        ok += tok;
        errors += terr;
        first_error = first_error.or(tfirst);
    }
    let elapsed = start.elapsed().as_secs_f64();
    let n = (ok + errors).max(1) as f64;
    Round {
        ok,
        errors,
        first_error,
        rps: ok as f64 / elapsed,
        p50_us: h.value_at_quantile(0.5),
        p99_us: h.value_at_quantile(0.99),
        cpu_per_req_us: (cpu_of("/proc/self/stat") - cpu0).as_secs_f64() * 1e6 / n,
        sandbox_cpu_per_req_us: (sandbox.cpu() - sb0).as_secs_f64() * 1e6 / n,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The minimal server: one thread, HTTP/1.1 keep-alive, a canned success for every request.
fn serve_minimal() {
    use hyper::service::service_fn;
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!(
            "minimal server listening on http://{}",
            listener.local_addr().unwrap()
        );
        let _ = std::io::stdout().flush();
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let svc = service_fn(|_req: http::Request<hyper::body::Incoming>| async {
                    let mut res =
                        http::Response::new(Full::new(Bytes::from_static(b"{\"success\":true}")));
                    let h = res.headers_mut();
                    h.insert(
                        "content-type",
                        http::HeaderValue::from_static("application/json"),
                    );
                    h.insert(
                        "x-fb-trace-id",
                        http::HeaderValue::from_static("MinimalTrace00000000000"),
                    );
                    Ok::<_, std::convert::Infallible>(res)
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
}

async fn peers_vs_bare(full: bool) {
    // Client-bound first: a minimal server on the other core, so the ratios measure the
    // clients' cost; then the sandbox, whose own CPU per request makes it the slower side.
    let minimal = SandboxProc::minimal();
    peers_against(
        full,
        &minimal,
        "a minimal hyper server (the client is the bottleneck)",
    )
    .await;
    let sandbox = SandboxProc::start(Some("[outbox]\nmax_entries = 100000\n"));
    peers_against(full, &sandbox, "the sandbox").await;
}

/// The rounds of the store comparisons (memory against Redis, one Redis against a
/// cluster) and how long each cell runs: three of 3 s in a full run, one short smoke round
/// otherwise.
fn store_rounds(full: bool) -> (u32, Duration) {
    if full {
        (3, Duration::from_secs(3))
    } else {
        (1, Duration::from_millis(200))
    }
}

async fn peers_against(full: bool, sandbox: &SandboxProc, what: &str) {
    let peers = peers(&sandbox.base);
    // This VM's throughput moves by up to ±25% from one round to the next: many short
    // alternating rounds and their median ratio say more than a few long ones.
    let (rounds, time) = if full {
        (9, Duration::from_secs(2))
    } else {
        (1, Duration::from_millis(200))
    };
    println!("\n## Loopback throughput against {what}: {rounds} alternating rounds of {time:?} per client\n");
    println!(
        "| c | round | client | req/s | p50 µs | p99 µs | client CPU µs/req | client CPU % | ratio to bare |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let mut sandbox_cpu = Vec::new();
    for c in [1usize, 64] {
        let mut ratios: HashMap<&str, Vec<f64>> = HashMap::new();
        let mut rps: HashMap<&str, Vec<f64>> = HashMap::new();
        let mut cpu: HashMap<&str, Vec<f64>> = HashMap::new();
        for r in 1..=rounds {
            // Warm each pool once per round so connection setup is not measured.
            for p in &peers {
                let _ = p.call(&sandbox.base, 1).await;
            }
            let mut bare = 0.0;
            for p in &peers {
                let res = round(p, sandbox, c, time).await;
                assert_eq!(res.errors, 0, "{}: {:?}", p.name(), res.first_error);
                assert!(res.ok > 0, "{} made no call", p.name());
                if matches!(p, Peer::Bare(_)) {
                    bare = res.rps;
                    if c == 64 {
                        sandbox_cpu.push(res.sandbox_cpu_per_req_us);
                    }
                }
                let ratio = if bare > 0.0 { res.rps / bare } else { 0.0 };
                println!(
                    "| {c} | {r} | {} | {:.0} | {} | {} | {:.2} | {:.0} | {ratio:.3} |",
                    p.name(),
                    res.rps,
                    res.p50_us,
                    res.p99_us,
                    res.cpu_per_req_us,
                    res.cpu_per_req_us * res.rps / 1e4
                );
                ratios.entry(p.name()).or_default().push(ratio);
                rps.entry(p.name()).or_default().push(res.rps);
                cpu.entry(p.name()).or_default().push(res.cpu_per_req_us);
            }
        }
        println!("\nmedians at c={c}:\n");
        println!("| client | req/s | client CPU µs/req | Δ CPU vs bare µs/req | ratio to bare (median of rounds) |");
        println!("|---|---|---|---|---|");
        let bare_cpu = cpu
            .get("bare hyper-util")
            .map_or(0.0, |v| median(v.clone()));
        for p in &peers {
            let n = p.name();
            println!(
                "| {n} | {:.0} | {:.2} | {:+.2} | {:.3} |",
                median(rps[n].clone()),
                median(cpu[n].clone()),
                median(cpu[n].clone()) - bare_cpu,
                median(ratios[n].clone())
            );
        }
        println!();
    }
    let per_req = median(sandbox_cpu);
    println!(
        "server ({what}): {per_req:.1} µs of its own CPU per request, so one core serves \
         about {:.0} req/s\n",
        1e6 / per_req.max(0.001)
    );
}

/// Demand above N×q against a sandbox enforcing the same quota.
async fn under_rate_limits(full: bool) {
    let (numbers, per_sec, burst) = (20u64, 5u32, 1u32);
    let time = if full {
        Duration::from_secs(10)
    } else {
        Duration::from_secs(1)
    };
    // Upstream, as Meta states its limits: at most q + burst calls in any moving second
    // (the sandbox's sliding log), which is what a GCRA of q/s with that burst can send.
    // Loopback latency varies by a few hundred µs from call to call; a window of exactly
    // q calls would count that jitter as one call too many.
    let quota = format!("{{ rate = \"{}/s\" }}", per_sec + burst);
    let sandbox = SandboxProc::start(Some(&format!("[quotas]\nper_number = {quota}\n")));
    let mut cfg = stack_config(&sandbox.base);
    cfg.rate_limit.per_number = vec![Quota::new(format!("{per_sec}/s").parse().unwrap(), burst)];
    cfg.rate_limit.global = None;
    cfg.rate_limit.max_wait = Duration::from_secs(1);
    let client = Client::from_config(cfg, FAKE_TOKEN.parse().unwrap()).unwrap();
    let start = Instant::now();
    let end = start + time;
    let tasks: Vec<_> = (0..64u64)
        .map(|t| {
            let client = client.clone();
            tokio::spawn(async move {
                let mut sends: Vec<(u64, Instant)> = Vec::new();
                let (mut upstream_429, mut other, mut refused) = (0u64, 0u64, 0u64);
                let mut i = t;
                while Instant::now() < end {
                    let id = 2_000_000_000 + i % numbers;
                    i += 1;
                    let op = RequestCode::new(
                        PhoneNumberId::from(id),
                        CodeMethod::Sms,
                        Language::default(),
                    );
                    match client.request_code(op).await {
                        // The answer's arrival: the limiter may have held the call first.
                        Ok(_) => sends.push((id, Instant::now())),
                        Err(e) if e.is_local() => refused += 1,
                        Err(e) if e.status().is_some_and(|s| s.as_u16() == 429) => {
                            upstream_429 += 1
                        }
                        Err(_) => other += 1,
                    }
                }
                (sends, upstream_429, other, refused)
            })
        })
        .collect();
    let mut by_number: HashMap<u64, Vec<Instant>> = HashMap::new();
    let (mut upstream_429, mut other, mut refused) = (0, 0, 0);
    for t in tasks {
        let (s, u, o, r) = t.await.unwrap();
        for (id, at) in s {
            by_number.entry(id).or_default().push(at);
        }
        upstream_429 += u;
        other += o;
        refused += r;
    }
    // Measured over [start, end]: calls still held by the limiter after `end` do not count.
    let elapsed = time.as_secs_f64();
    for times in by_number.values_mut() {
        times.retain(|t| *t <= end);
    }
    // GCRA capacity over [0, T): the burst at once, then one call per interval.
    let capacity = numbers as f64 * (f64::from(burst) - 1.0 + f64::from(per_sec) * elapsed);
    let achieved: usize = by_number.values().map(Vec::len).sum();
    // Any one-second window may hold at most q + burst calls of one number.
    let limit = (per_sec + burst) as usize;
    let mut over = 0;
    let mut rates: Vec<f64> = Vec::new();
    for times in by_number.values_mut() {
        times.sort();
        for (k, t) in times.iter().enumerate() {
            let in_window = times[k..]
                .iter()
                .take_while(|u| **u - *t < Duration::from_secs(1))
                .count();
            if in_window > limit {
                over += 1;
            }
        }
        rates.push(times.len() as f64 / elapsed);
    }
    rates.sort_by(f64::total_cmp);
    println!("## Throughput under rate limits ({numbers} numbers × {per_sec}/s burst {burst}, 64 callers, {elapsed:.1}s; sandbox: {} per moving second)\n", per_sec + burst);
    println!("| achieved calls | capacity N×q | achieved / capacity | per-number rate min / median / max | windows over quota | upstream 429s | refused locally |");
    println!("|---|---|---|---|---|---|---|");
    println!(
        "| {achieved} | {capacity:.0} | {:.3} | {:.2} / {:.2} / {:.2} | {over} | {upstream_429} | {refused} |\n",
        achieved as f64 / capacity,
        rates.first().copied().unwrap_or(0.0),
        rates.get(rates.len() / 2).copied().unwrap_or(0.0),
        rates.last().copied().unwrap_or(0.0),
    );
    assert_eq!(other, 0, "no other failure");
    assert_eq!(
        upstream_429, 0,
        "the limiter kept every number under the sandbox's quota"
    );
    assert_eq!(over, 0, "no window over quota");
}

/// A `redis-server` of the harness's own on a free loopback port, persistence off.
struct RedisProc {
    child: Child,
    url: String,
}

impl RedisProc {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // Pinned beside the sandbox, away from the client's core.
        let child = on_server_core("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (apt-get install redis-server; .ci/run does)");
        let me = Self {
            child,
            url: format!("redis://127.0.0.1:{port}"),
        };
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                assert_on_server_core(me.child.id());
                return me;
            }
            std::thread::yield_now();
            let _ = Command::new("redis-cli")
                .args(["-p", &port.to_string(), "PING"])
                .output();
        }
        panic!("redis-server did not start");
    }
}

impl RedisProc {
    /// How many script calls (`EVALSHA`) Redis has run so far.
    fn script_calls(&self) -> u64 {
        let port = self.url.rsplit(':').next().unwrap();
        let out = Command::new("redis-cli")
            .args(["-p", port, "INFO", "commandstats"])
            .output()
            .expect("redis-cli runs");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("cmdstat_evalsha:calls="))
            .and_then(|v| v.split(',').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for RedisProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The Redis store: checks per second and latency per check, and the full stack with it
/// against the memory store in the same run.
async fn redis_store(full: bool) {
    use wa_verify_core::config::StoreKind;
    use wa_verify_core::rate_limit::redis::RedisStore;
    use wa_verify_core::rate_limit::{Limits, StoreConfig};

    let redis = RedisProc::start();
    let mut config = StoreConfig::default();
    config.url = Some(redis.url.parse().unwrap());
    config.key_prefix = "bench:".into();
    let store = RedisStore::new(
        config,
        Limits::quotas(&[support::never_binding()], Some(support::never_binding())),
    )
    .unwrap();
    let time = if full {
        Duration::from_secs(3)
    } else {
        Duration::from_millis(200)
    };
    println!(
        "## Redis store: per-number + global + cooldown in one script call per batch, {time:?} per row\n"
    );
    println!("| concurrency | checks/s | p50 µs | p99 µs | checks per script call | fell back |");
    println!("|---|---|---|---|---|---|");
    for c in [1usize, 64] {
        let scripts = redis.script_calls();
        let h = checks_from(&store, c, time).await;
        let scripts = redis.script_calls() - scripts;
        println!(
            "| {c} | {:.0} | {} | {} | {:.1} | {} |",
            h.len() as f64 / time.as_secs_f64(),
            h.value_at_quantile(0.5),
            h.value_at_quantile(0.99),
            h.len() as f64 / scripts.max(1) as f64,
            store.is_in_outage()
        );
    }
    cluster_against_one_redis(&redis, full).await;
    cooldown_checks(&redis, full).await;
    dedup_over_redis(&redis, full).await;
    let sandbox = SandboxProc::start(Some("[outbox]\nmax_entries = 100000\n"));
    let memory =
        Client::from_config(stack_config(&sandbox.base), FAKE_TOKEN.parse().unwrap()).unwrap();
    let mut cfg = stack_config(&sandbox.base);
    cfg.rate_limit.store.kind = StoreKind::Redis;
    cfg.rate_limit.store.url = Some(redis.url.parse().unwrap());
    let shared = Client::from_config(cfg, FAKE_TOKEN.parse().unwrap()).unwrap();
    let (rounds, time) = store_rounds(full);
    println!("\nfull stack at c=64 against the sandbox, memory store vs Redis store:\n");
    println!("| round | memory req/s | redis req/s | redis / memory |");
    println!("|---|---|---|---|");
    for r in 1..=rounds {
        let m = round(&Peer::Stack(memory.clone()), &sandbox, 64, time).await;
        let x = round(&Peer::Stack(shared.clone()), &sandbox, 64, time).await;
        assert_eq!(
            m.errors + x.errors,
            0,
            "{:?} {:?}",
            m.first_error,
            x.first_error
        );
        println!(
            "| {r} | {:.0} | {:.0} | {:.3} |",
            m.rps,
            x.rps,
            x.rps / m.rps
        );
    }
    println!();
}

/// Checks per second and latency from `c` callers on `store` for `time` (distinct numbers,
/// nothing binding): the histogram of each check's latency, µs.
async fn checks_from<S>(store: &S, c: usize, time: Duration) -> Histogram<u64>
where
    S: wa_verify_core::rate_limit::RateLimitStore + Clone + Send + Sync + 'static,
    S::Future: Send,
{
    use wa_verify_core::rate_limit::{Acquire, QuotaClass};

    let end = Instant::now() + time;
    let tasks: Vec<_> = (0..c)
        .map(|t| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
                let mut i = t as u64;
                while Instant::now() < end {
                    let sent = Instant::now();
                    if let Acquire::Pending(f) =
                        store.acquire(Some(i % 10_000), QuotaClass::RequestCode)
                    {
                        f.await;
                    }
                    let _ = h.record(sent.elapsed().as_micros().max(1) as u64);
                    i += c as u64;
                }
                h
            })
        })
        .collect();
    let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    for t in tasks {
        h.add(t.await.unwrap()).unwrap();
    }
    h
}

/// The same checks on a 3-primary Redis Cluster (every node on the server core, as the
/// single Redis is) and on one Redis, alternating in the same run. A check on the cluster
/// is two script calls (its number's shard, then the app's), each batched per hash tag.
async fn cluster_against_one_redis(redis: &RedisProc, full: bool) {
    use wa_verify_core::config::StoreKind;
    use wa_verify_core::rate_limit::redis::RedisStore;
    use wa_verify_core::rate_limit::{Limits, StoreConfig};

    let cluster = redis_cluster::RedisCluster::start("bench", on_server_core).await;
    let limits = Limits::quotas(&[support::never_binding()], Some(support::never_binding()));
    let mut single = StoreConfig::default();
    single.url = Some(redis.url.parse().unwrap());
    single.key_prefix = "vs:".into();
    let mut sharded = single.clone();
    sharded.kind = StoreKind::RedisCluster;
    sharded.url = None;
    sharded.urls = cluster.urls().iter().map(|u| u.parse().unwrap()).collect();
    let one = RedisStore::new(single, limits.clone()).unwrap();
    let three = RedisStore::new(sharded, limits).unwrap();
    let (rounds, time) = store_rounds(full);
    println!("\n## Redis Cluster (3 primaries) against one Redis, per-number + global quota, {time:?} per cell\n");
    println!("| round | concurrency | one Redis checks/s | p99 µs | cluster checks/s | p99 µs | cluster / one | fell back |");
    println!("|---|---|---|---|---|---|---|---|");
    for r in 1..=rounds {
        for c in [1usize, 64] {
            let a = checks_from(&one, c, time).await;
            let b = checks_from(&three, c, time).await;
            let rate = |h: &Histogram<u64>| h.len() as f64 / time.as_secs_f64();
            println!(
                "| {r} | {c} | {:.0} | {} | {:.0} | {} | {:.2} | {} |",
                rate(&a),
                a.value_at_quantile(0.99),
                rate(&b),
                b.value_at_quantile(0.99),
                rate(&b) / rate(&a),
                one.fallback_answers() + three.fallback_answers()
            );
        }
    }
    println!();
}

/// What a check costs for a number in a cooldown, one by one: on a replica that has not
/// seen it yet (a round trip, as every such check cost before the local over-limit
/// cache) and then on the same replica again (answered from its cache).
async fn cooldown_checks(redis: &RedisProc, full: bool) {
    use wa_verify_core::rate_limit::redis::RedisStore;
    use wa_verify_core::rate_limit::{
        Acquire, Admission, Lesson, Limits, QuotaClass, RateLimitStore, StoreConfig,
    };

    let numbers: u64 = if full { 5_000 } else { 100 };
    let mut config = StoreConfig::default();
    config.url = Some(redis.url.parse().unwrap());
    config.key_prefix = "cool:".into();
    let limits = Limits::quotas(&[support::never_binding()], Some(support::never_binding()));
    let learner = RedisStore::new(config.clone(), limits.clone()).unwrap();
    for n in 0..numbers {
        let lesson = Lesson::Throttled {
            wait: Duration::from_secs(600),
            app_wide: false,
            code: None,
        };
        learner
            .learn(Some(n), QuotaClass::RequestCode, lesson)
            .await;
    }
    let other = RedisStore::new(config, limits).unwrap();
    let pass = |what: &str| {
        let other = other.clone();
        let what = what.to_owned();
        async move {
            let (scripts, started) = (redis.script_calls(), Instant::now());
            for n in 0..numbers {
                let answer = match other.acquire(Some(n), QuotaClass::RequestCode) {
                    Acquire::Ready(a) => a,
                    Acquire::Pending(f) => f.await,
                };
                assert!(matches!(answer, Admission::Wait { .. }), "{answer:?}");
            }
            let ns = started.elapsed().as_nanos() as f64 / numbers as f64;
            let per = (redis.script_calls() - scripts) as f64 / numbers as f64;
            println!("| {what} | {ns:.0} | {per:.2} |");
        }
    };
    println!("\na number in a cooldown (another replica learned it), c=1, {numbers} numbers:\n");
    println!("| check | ns per check | script calls per check |");
    println!("|---|---|---|");
    pass("first on this replica (a round trip)").await;
    pass("again (the local over-limit cache)").await;
}

/// The dedup layer's cost with the Redis store: the full stack at c=64 with dedup off and
/// on, every call for a number not seen before (the happy path: each call sends), and
/// the Redis script calls per call measured from Redis's own command counts.
async fn dedup_over_redis(redis: &RedisProc, full: bool) {
    use wa_verify_core::config::StoreKind;

    let sandbox = SandboxProc::start(Some("[outbox]\nmax_entries = 1000\n"));
    let time = if full {
        Duration::from_secs(3)
    } else {
        Duration::from_millis(200)
    };
    println!("\nfull stack with the Redis store at c=64, distinct numbers, dedup off vs on:\n");
    println!("| dedup | req/s | p50 µs | p99 µs | Redis script calls per call |");
    println!("|---|---|---|---|---|");
    let mut first = 3_000_000_000u64;
    for on in [false, true] {
        let mut cfg = stack_config(&sandbox.base);
        cfg.rate_limit.store.kind = StoreKind::Redis;
        cfg.rate_limit.store.url = Some(redis.url.parse().unwrap());
        cfg.rate_limit.store.key_prefix = "bench-dedup:".into();
        cfg.dedup.enabled = on;
        let c = Client::from_config(cfg, FAKE_TOKEN.parse().unwrap()).unwrap();
        let scripts = redis.script_calls();
        let start = Instant::now();
        let end = start + time;
        let tasks: Vec<_> = (0..64u64)
            .map(|t| {
                let c = c.clone();
                tokio::spawn(async move {
                    let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
                    let mut i = t;
                    // Bounded by time and by count.
                    while Instant::now() < end && i < 64 * 1_000_000 {
                        let op = RequestCode::new(
                            PhoneNumberId::from(first + i),
                            CodeMethod::Sms,
                            Language::default(),
                        );
                        let sent = Instant::now();
                        let r = c.request_code(op).await.expect("the happy path answers");
                        assert!(r.already_sent().is_none() && !r.is_shared());
                        let _ = h.record(sent.elapsed().as_micros().max(1) as u64);
                        i += 64;
                    }
                    h
                })
            })
            .collect();
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
        for t in tasks {
            h.add(t.await.unwrap()).unwrap();
        }
        let scripts = redis.script_calls() - scripts;
        println!(
            "| {} | {:.0} | {} | {} | {:.2} |",
            if on { "on" } else { "off" },
            h.len() as f64 / start.elapsed().as_secs_f64(),
            h.value_at_quantile(0.5),
            h.value_at_quantile(0.99),
            scripts as f64 / h.len().max(1) as f64
        );
        first += 100_000_000;
    }
}

fn main() {
    if std::env::args().any(|a| a == "--minimal-server") {
        serve_minimal();
        return;
    }
    let full = std::env::args().any(|a| a == "--bench");
    if two_cores() {
        // Pin this process before the runtime starts, so its threads inherit core 0.
        let _ = Command::new("taskset")
            .args(["-cp", "0", &std::process::id().to_string()])
            .output();
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    // WA_VERIFY_BENCH=peers,limits,redis picks sections (default: all).
    let only = std::env::var("WA_VERIFY_BENCH").unwrap_or_default();
    let run = |name: &str| only.is_empty() || only.split(',').any(|s| s == name);
    rt.block_on(async {
        if run("peers") {
            peers_vs_bare(full).await;
        }
        if run("limits") {
            under_rate_limits(full).await;
        }
        if run("redis") {
            redis_store(full).await;
        }
    });
}

//! `wa-verify bench`: request_code for N numbers through the full stack, for a duration.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use hdrhistogram::Histogram;
use serde_json::json;
use wa_verify_core::config::duration;
use wa_verify_core::{
    Client, CodeMethod, Error, ErrorKind, Language, PhoneNumberId, RequestCode, Response,
};

use super::watch::Watched;
use super::{CommonArgs, Prepared, EXIT_FAILURE};
use crate::metrics::Exporter;
use crate::output::{self, Format};
use wa_verify_core::metrics::Metrics;

#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// How many numbers to drive.
    #[arg(long, value_name = "N", default_value_t = 100)]
    numbers: u64,
    /// The first number id; the others follow it (ID, ID+1, ...).
    #[arg(long, value_name = "ID", default_value_t = 1_000_000_000)]
    first_number_id: u64,
    /// How long to run: 10s, 1m.
    #[arg(long, value_name = "DUR", default_value = "10s")]
    duration: String,
    /// Calls in flight at once.
    #[arg(long, value_name = "C", default_value_t = 64)]
    concurrency: usize,
    /// Keep the dedup layer on (off by default, so that every call measures a send); the
    /// report then counts shared, already-sent and replayed calls.
    #[arg(long)]
    dedup: bool,
    /// Serve the run's metrics as Prometheus text at http://ADDR/metrics (loopback only;
    /// port 0 picks one, printed on stderr).
    #[arg(long, value_name = "ADDR")]
    metrics_listen: Option<SocketAddr>,
    /// How long to keep serving the metrics after the run ends, so a scraper reads the
    /// final values (default 0; Ctrl-C ends it early).
    #[arg(long, value_name = "DUR", default_value = "0s")]
    metrics_hold: String,
    #[command(flatten)]
    common: CommonArgs,
}

/// One worker's tally.
struct Tally {
    latency_us: Histogram<u64>,
    succeeded: u64,
    errors: BTreeMap<&'static str, u64>,
    attempts: u64,
    local_refusals: u64,
    upstream_429: u64,
    /// Calls answered by the dedup layer: shared, already sent, replayed.
    shared: u64,
    already_sent: u64,
    replayed: u64,
}

impl Tally {
    fn new() -> Result<Self, Error> {
        Ok(Self {
            latency_us: Histogram::new_with_bounds(1, 600_000_000, 3)
                .map_err(|e| Error::invalid_input(format!("histogram: {e}")))?,
            succeeded: 0,
            errors: BTreeMap::new(),
            attempts: 0,
            local_refusals: 0,
            upstream_429: 0,
            shared: 0,
            already_sent: 0,
            replayed: 0,
        })
    }

    /// One call's latency and outcome.
    fn record<T>(&mut self, took: Duration, result: &Result<Response<T>, Error>) {
        let _ = self.latency_us.record(took.as_micros().max(1) as u64);
        match result {
            Ok(r) => {
                self.succeeded += 1;
                self.attempts += u64::from(r.attempts());
                self.shared += u64::from(r.is_shared());
                self.already_sent += u64::from(r.already_sent().is_some());
                self.replayed += u64::from(r.is_replayed());
            }
            Err(e) => {
                self.shared += u64::from(e.is_shared());
                self.replayed += u64::from(e.is_replayed());
                self.attempts += u64::from(e.attempts());
                *self.errors.entry(e.kind().as_str()).or_default() += 1;
                if e.kind() == ErrorKind::RateLimited && e.is_local() {
                    self.local_refusals += 1;
                }
                if e.status().is_some_and(|s| s.as_u16() == 429) {
                    self.upstream_429 += 1;
                }
            }
        }
    }

    fn merge(&mut self, other: Tally) {
        let _ = self.latency_us.add(&other.latency_us);
        self.succeeded += other.succeeded;
        for (k, v) in other.errors {
            *self.errors.entry(k).or_default() += v;
        }
        self.attempts += other.attempts;
        self.local_refusals += other.local_refusals;
        self.upstream_429 += other.upstream_429;
        self.shared += other.shared;
        self.already_sent += other.already_sent;
        self.replayed += other.replayed;
    }
}

pub(crate) async fn run(args: BenchArgs) -> u8 {
    let format = args.common.format().unwrap_or_default();
    let run_for = match check(&args) {
        Ok(d) => d,
        Err(e) => return output::refused(format, &e),
    };
    let hold = match duration::parse(&args.metrics_hold) {
        Ok(d) => d,
        Err(e) => {
            let e = Error::invalid_input(format!("--metrics-hold: {e}"));
            return output::refused(format, &e);
        }
    };
    let mut exporter = args.metrics_listen.map(|_| Exporter::new());
    let metrics = exporter
        .as_ref()
        .map(|e| Metrics::new(&e.meter()))
        .unwrap_or_default();
    let dedup = args.dedup;
    let p = match args
        .common
        .prepare_with(|c| c.dedup.enabled = dedup, metrics)
        .await
    {
        Ok(p) => p,
        Err(e) => return output::refused(format, &e),
    };
    // Served from before the first call, so a scraper sees the run as it goes.
    let server = match (args.metrics_listen, exporter.as_mut()) {
        (Some(addr), Some(exporter)) => {
            if let Some(sb) = &p.sandbox {
                exporter.add_sandbox(Box::new(sb.stats_reader()));
            }
            match crate::metrics::serve(addr, exporter.registry()).await {
                Ok((bound, task)) => {
                    eprintln!("wa-verify: metrics at http://{bound}/metrics");
                    Some(task)
                }
                Err(why) => return output::refused(format, &Error::invalid_input(why)),
            }
        }
        _ => None,
    };
    let started = Instant::now();
    let total = match drive(&p.client, &args, run_for, format == Format::Text).await {
        Ok(t) => t,
        Err(BenchError::Refused(e)) => return output::refused(format, &e),
        Err(BenchError::Worker(why)) => {
            eprintln!("error: a bench worker failed: {why}");
            return EXIT_FAILURE;
        }
    };
    let elapsed = started.elapsed().as_secs_f64();
    let doc = report(&total, &p, &args, elapsed);
    let code = output::report(format, &doc, || text(&doc));
    if let Some(task) = server {
        // The report is out; the final values stay up for the scraper.
        if !hold.is_zero() {
            tokio::select! {
                () = tokio::time::sleep(hold) => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        task.abort();
    }
    if let Some(sb) = p.sandbox {
        sb.shutdown().await;
    }
    code
}

/// The numbers a run drives: generated ids, or the ones a tenants file lists.
#[derive(Clone)]
enum Numbers {
    /// `first`, `first + 1`, … (`n` of them).
    Range { first: u64, n: u64 },
    /// Every tenant's numbers, in file order.
    Listed(Arc<Vec<PhoneNumberId>>),
}

impl Numbers {
    fn of(args: &BenchArgs) -> Result<Self, Error> {
        let Some(path) = &args.common.tenants else {
            return Ok(Numbers::Range {
                first: args.first_number_id,
                n: args.numbers,
            });
        };
        let file = wa_verify_core::tenant::TenantsFile::from_file(path)?;
        let mut ids = Vec::new();
        for t in &file.tenants {
            for n in &t.numbers {
                if ids.len() as u64 == args.numbers {
                    break;
                }
                ids.push(n.parse::<PhoneNumberId>()?);
            }
        }
        if ids.is_empty() {
            return Err(Error::invalid_input(format!(
                "the tenants file {} lists no numbers to drive",
                path.display()
            )));
        }
        Ok(Numbers::Listed(Arc::new(ids)))
    }

    fn len(&self) -> u64 {
        match self {
            Numbers::Range { n, .. } => *n,
            Numbers::Listed(ids) => ids.len() as u64,
        }
    }

    fn get(&self, i: u64) -> PhoneNumberId {
        match self {
            Numbers::Range { first, n } => PhoneNumberId::from(first + i % n),
            Numbers::Listed(ids) => ids[(i % ids.len() as u64) as usize],
        }
    }
}

/// The flags a run needs before it starts: its duration, at least one number and caller.
fn check(args: &BenchArgs) -> Result<Duration, Error> {
    let run_for = duration::parse(&args.duration)?;
    if args.numbers == 0 || args.concurrency == 0 {
        return Err(Error::invalid_input(
            "--numbers and --concurrency must be at least 1",
        ));
    }
    args.first_number_id
        .checked_add(args.numbers - 1)
        .ok_or_else(|| Error::invalid_input("--first-number-id + --numbers overflows"))?;
    Ok(run_for)
}

/// Why a run could not finish.
enum BenchError {
    /// Refused before any call.
    Refused(Error),
    /// A worker task died.
    Worker(String),
}

/// `concurrency` workers call request_code over the numbers, round robin, until `run_for`
/// has passed; their tallies merged. A progress bar on a terminal when `show` is set.
async fn drive(
    client: &Client<Watched>,
    args: &BenchArgs,
    run_for: Duration,
    show: bool,
) -> Result<Tally, BenchError> {
    let next = Arc::new(AtomicU64::new(0));
    let numbers = Numbers::of(args).map_err(BenchError::Refused)?;
    let started = Instant::now();
    let end = started + run_for;
    let workers: Vec<_> = (0..args.concurrency)
        .map(|_| {
            let client = client.clone();
            let next = next.clone();
            let numbers = numbers.clone();
            tokio::spawn(async move {
                let mut t = Tally::new()?;
                // Bounded by the duration: no new call starts after `end`.
                while Instant::now() < end {
                    let i = next.fetch_add(1, Ordering::Relaxed) % numbers.len();
                    let op = RequestCode::new(numbers.get(i), CodeMethod::Sms, Language::default());
                    let sent = Instant::now();
                    let result = client.request_code(op).await;
                    t.record(sent.elapsed(), &result);
                }
                Ok::<_, Error>(t)
            })
        })
        .collect();
    if show && std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(run_for.as_secs().max(1));
        bar.set_message("benchmarking");
        while Instant::now() < end {
            tokio::time::sleep(Duration::from_millis(250).min(end - Instant::now())).await;
            bar.set_position(started.elapsed().as_secs());
        }
        bar.finish_and_clear();
    }
    let mut total = Tally::new().map_err(BenchError::Refused)?;
    for w in workers {
        match w.await {
            Ok(Ok(t)) => total.merge(t),
            Ok(Err(e)) => return Err(BenchError::Refused(e)),
            Err(e) => return Err(BenchError::Worker(e.to_string())),
        }
    }
    Ok(total)
}

/// The run's report: what `--output json` prints, and what the text is made from.
fn report(total: &Tally, p: &Prepared, args: &BenchArgs, elapsed: f64) -> serde_json::Value {
    let failed: u64 = total.errors.values().sum();
    let calls = total.succeeded + failed;
    let ms = |q: f64| total.latency_us.value_at_quantile(q) as f64 / 1000.0;
    json!({
        "requests": total.attempts,
        "calls": calls,
        "succeeded": total.succeeded,
        "failed": failed,
        "errors": total.errors,
        "duration_s": elapsed,
        "concurrency": args.concurrency,
        "numbers": args.numbers,
        "first_number_id": args.first_number_id,
        "throughput_rps": calls as f64 / elapsed,
        "success_rps": total.succeeded as f64 / elapsed,
        "latency_ms": {
            "p50": ms(0.5), "p90": ms(0.9), "p99": ms(0.99),
            "max": total.latency_us.max() as f64 / 1000.0,
        },
        "rate_limit": {
            "local_waits": p.client.rate_limit_stats().waits(),
            "local_refusals": total.local_refusals,
            "upstream_429": total.upstream_429,
            "store_fallbacks": p.client.rate_limit_store().fallback_answers(),
        },
        "dedup": {
            "enabled": args.dedup,
            "shared": total.shared,
            "already_sent": total.already_sent,
            "replayed": total.replayed,
        },
        "sandbox_requests": p.sandbox.as_ref().map(|s| s.stats().requests),
    })
}

/// The report for a person.
fn text(r: &serde_json::Value) -> String {
    let n = |v: &serde_json::Value| v.as_f64().unwrap_or_default();
    let (calls, elapsed) = (n(&r["calls"]), n(&r["duration_s"]));
    let l = &r["latency_ms"];
    let rl = &r["rate_limit"];
    let mut out = vec![
        format!(
            "{calls} calls in {elapsed:.1}s: {:.0} calls/s, {} succeeded, {} failed",
            n(&r["throughput_rps"]),
            r["succeeded"],
            r["failed"]
        ),
        format!("requests sent upstream: {}", r["requests"]),
        format!(
            "latency ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}",
            n(&l["p50"]),
            n(&l["p90"]),
            n(&l["p99"]),
            n(&l["max"])
        ),
        format!(
            "rate limits: {} calls waited for their slot, {} refused locally, {} upstream 429s",
            rl["local_waits"], rl["local_refusals"], rl["upstream_429"]
        ),
    ];
    let d = &r["dedup"];
    if d["enabled"].as_bool() == Some(true) {
        out.push(format!(
            "dedup: {} shared a concurrent send, {} found a code already sent, {} replayed",
            d["shared"], d["already_sent"], d["replayed"]
        ));
    }
    if n(&rl["store_fallbacks"]) > 0.0 {
        out.push(format!(
            "rate-limit store: {} checks answered by on_store_error, not shared across \
             replicas (Redis down or slower than its timeout)",
            rl["store_fallbacks"]
        ));
    }
    if let Some(errors) = r["errors"].as_object() {
        out.extend(
            errors
                .iter()
                .map(|(kind, count)| format!("  {kind}: {count}")),
        );
    }
    out.join("\n")
}

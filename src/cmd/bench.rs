//! `wa-verify bench`: request_code for N numbers through the full stack, for a duration.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use hdrhistogram::Histogram;
use serde_json::json;
use wa_verify_core::config::duration;
use wa_verify_core::{CodeMethod, Error, ErrorKind, Language, PhoneNumberId, RequestCode};

use super::{CommonArgs, EXIT_FAILURE, EXIT_OK};
use crate::output::{self, Format};

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
        })
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
    }
}

pub(crate) async fn run(args: BenchArgs) -> u8 {
    let format = args.common.format().unwrap_or_default();
    let checked = (|| {
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
    })();
    let run_for = match checked {
        Ok(d) => d,
        Err(e) => return output::refused(format, &e),
    };
    let p = match args.common.prepare().await {
        Ok(p) => p,
        Err(e) => return output::refused(format, &e),
    };
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let end = started + run_for;
    let progress = (std::io::stderr().is_terminal() && format == Format::Text).then(|| {
        let bar = indicatif::ProgressBar::new(run_for.as_secs().max(1));
        bar.set_message("benchmarking");
        bar
    });
    let workers: Vec<_> = (0..args.concurrency)
        .map(|_| {
            let client = p.client.clone();
            let next = next.clone();
            let (first, n) = (args.first_number_id, args.numbers);
            tokio::spawn(async move {
                let mut t = Tally::new()?;
                let language = Language::default();
                // Bounded by the duration: no new call starts after `end`.
                while Instant::now() < end {
                    let i = next.fetch_add(1, Ordering::Relaxed) % n;
                    let op =
                        RequestCode::new(PhoneNumberId::from(first + i), CodeMethod::Sms, language);
                    let sent = Instant::now();
                    let result = client.request_code(op).await;
                    let _ = t
                        .latency_us
                        .record(sent.elapsed().as_micros().max(1) as u64);
                    match result {
                        Ok(r) => {
                            t.succeeded += 1;
                            t.attempts += u64::from(r.attempts());
                        }
                        Err(e) => {
                            t.attempts += u64::from(e.attempts());
                            *t.errors.entry(e.kind().as_str()).or_default() += 1;
                            if e.kind() == ErrorKind::RateLimited && e.is_local() {
                                t.local_refusals += 1;
                            }
                            if e.status().is_some_and(|s| s.as_u16() == 429) {
                                t.upstream_429 += 1;
                            }
                        }
                    }
                }
                Ok::<_, Error>(t)
            })
        })
        .collect();
    if let Some(bar) = &progress {
        while Instant::now() < end {
            tokio::time::sleep(Duration::from_millis(250).min(end - Instant::now())).await;
            bar.set_position(started.elapsed().as_secs());
        }
        bar.finish_and_clear();
    }
    let mut total = match Tally::new() {
        Ok(t) => t,
        Err(e) => return output::refused(format, &e),
    };
    for w in workers {
        match w.await {
            Ok(Ok(t)) => total.merge(t),
            Ok(Err(e)) => return output::refused(format, &e),
            Err(e) => {
                eprintln!("error: a bench worker failed: {e}");
                return EXIT_FAILURE;
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let failed: u64 = total.errors.values().sum();
    let calls = total.succeeded + failed;
    let ms = |q: f64| total.latency_us.value_at_quantile(q) as f64 / 1000.0;
    let sandbox_requests = p.sandbox.as_ref().map(|s| s.stats().requests);
    let report = json!({
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
        "sandbox_requests": sandbox_requests,
    });
    if let Some(sb) = p.sandbox {
        sb.shutdown().await;
    }
    match format {
        Format::Json => println!("{report}"),
        Format::Text => {
            println!(
                "{calls} calls in {elapsed:.1}s: {:.0} calls/s, {} succeeded, {failed} failed",
                calls as f64 / elapsed,
                total.succeeded
            );
            println!("requests sent upstream: {}", total.attempts);
            println!(
                "latency ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}",
                ms(0.5),
                ms(0.9),
                ms(0.99),
                total.latency_us.max() as f64 / 1000.0
            );
            println!(
                "rate limits: {} calls waited for their slot, {} refused locally, {} upstream 429s",
                p.client.rate_limit_stats().waits(),
                total.local_refusals,
                total.upstream_429
            );
            let fallbacks = p.client.rate_limit_store().fallback_answers();
            if fallbacks > 0 {
                println!(
                    "rate-limit store: {fallbacks} checks answered by on_store_error, \
                     not shared across replicas (Redis down or slower than its timeout)"
                );
            }
            for (kind, n) in &total.errors {
                println!("  {kind}: {n}");
            }
        }
    }
    EXIT_OK
}

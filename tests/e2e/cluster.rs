use std::process::Command;
use std::time::{Duration, Instant};

use wa_verify_core::config::{StackConfig, StoreKind};
use wa_verify_core::rate_limit::redis::RedisStore;
use wa_verify_core::rate_limit::{
    Admission, Lesson, Limits, Quota, QuotaClass, RateLimitStore, Scope, StoreConfig,
};
use wa_verify_core::Client;
use wa_verify_sandbox::SandboxConfig;

use crate::dedup::{one_code_from_sixty_callers, slow_sandbox};
use crate::redis_cluster::RedisCluster;
use crate::redis_store::{
    admit, admit_in, each_numbers_quota_held, quota, settings, three_replicas, wide,
};
use crate::support::*;

/// Store settings on the cluster, with a wide timeout (a loaded machine never falls back
/// by accident).
fn on_cluster(cluster: &RedisCluster, prefix: &str) -> StoreConfig {
    let mut c = wide(prefix);
    c.kind = StoreKind::RedisCluster;
    c.urls = cluster.urls().iter().map(|u| u.parse().unwrap()).collect();
    c
}

fn scope(a: Admission) -> Option<Scope> {
    match a {
        Admission::Go => None,
        Admission::Wait { scope, .. } => Some(scope),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_across_shards_answers_like_one_redis_and_gives_back_what_a_later_shard_refused() {
    let cluster = RedisCluster::start("parts", Command::new).await;
    let redis = RedisServer::start().await;
    let mut limits = Limits::quotas(&[quota("1/h", 2)], Some(quota("1/h", 5)));
    limits.per_waba = vec![quota("1/h", 3)];
    // (number, WABA) one after another, and what binds: the per-number quota, then the
    // WABA's (number 3 takes its own slot on its shard, gives it back), the global one.
    let calls: [(u64, u64, Option<Scope>); 9] = [
        (1, 1, None),
        (1, 1, None),
        (1, 1, Some(Scope::Number)),
        (2, 1, None),
        (3, 1, Some(Scope::Waba)),
        (3, 2, None),
        // Number 3's second call goes: the slot the WABA refused was given back.
        (3, 2, None),
        (3, 2, Some(Scope::Number)),
        (4, 2, Some(Scope::Global)),
    ];
    let one = RedisStore::new(settings(&redis, "parts:"), limits.clone()).unwrap();
    let sharded = RedisStore::new(on_cluster(&cluster, "parts:"), limits).unwrap();
    for (n, w, expected) in calls {
        let (a, b) = (
            admit_in(&one, n, w, QuotaClass::RequestCode).await,
            admit_in(&sharded, n, w, QuotaClass::RequestCode).await,
        );
        assert_eq!(
            scope(a),
            expected,
            "one Redis, number {n} in WABA {w}: {a:?}"
        );
        assert_eq!(scope(b), expected, "cluster, number {n} in WABA {w}: {b:?}");
    }
    assert_eq!(sharded.fallback_answers(), 0);
    // Every slot or none: number 4's quota and WABA 2's third slot were given back.
    assert_eq!(cluster.cli(&["EXISTS", "parts:q0:{4}"]).trim(), "0");
    let waba_left = admit_in(&sharded, 9, 2, QuotaClass::RequestCode).await;
    assert_eq!(
        scope(waba_left),
        Some(Scope::Global),
        "WABA 2 still has room; the global quota refuses"
    );
    // Operators read and clear a number's state across its shard and the app's.
    let throttle = |app_wide| Lesson::Throttled {
        wait: Duration::from_secs(600),
        app_wide,
        code: None,
    };
    sharded
        .learn(Some(5), QuotaClass::RequestCode, throttle(false))
        .await;
    sharded
        .learn(None, QuotaClass::VerifyCode, throttle(true))
        .await;
    let shown = sharded.inspect(5).await.unwrap();
    assert_eq!(shown.cooldowns.len(), 2, "its own and the app's: {shown:?}");
    assert_eq!(sharded.clear(5, None).await.unwrap(), 1, "its own only");
    assert_eq!(sharded.inspect(5).await.unwrap().cooldowns.len(), 1);
}

fn cluster_config(base: &str, cluster: &RedisCluster, per_number: Quota) -> StackConfig {
    let mut c = client_config(base);
    c.rate_limit.per_number = vec![per_number];
    // Never binding: every call also takes a slot on the app's shard.
    c.rate_limit.global = Some(quota("10000/s", 10000));
    c.rate_limit.store = on_cluster(cluster, "wa-verify:");
    c.rate_limit.store.replicas = 3;
    c.retry.enabled = false;
    // These tests count the calls the limiter lets through: every call must be a send.
    c.dedup.enabled = false;
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_share_each_numbers_quota_through_a_redis_cluster() {
    let cluster = RedisCluster::start("replicas", Command::new).await;
    let recorder = Recorder::start(|_, _| None).await;
    let q = quota("5/s", 1);
    let run = Duration::from_secs(2);
    three_replicas(
        &recorder,
        || cluster_config(&recorder.base(), &cluster, q),
        run,
    )
    .await;
    each_numbers_quota_held(&recorder, run, "redis cluster");
    // The numbers spread over all three shards (3000..3020).
    let owners: std::collections::HashSet<usize> = (3000..3020)
        .map(|n| cluster.owner(&format!("wa-verify:q0:{{{n}}}")))
        .collect();
    assert_eq!(owners.len(), 3, "{owners:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_killed_mid_run_sends_only_its_checks_to_on_store_error_until_it_is_back() {
    let mut cluster = RedisCluster::start("kill", Command::new).await;
    let mut config = on_cluster(&cluster, "kill:");
    // Short, as in production; the bounds below allow 100 times as much.
    config.timeout = Duration::from_millis(300);
    let limits = Limits::quotas(&[quota("1/h", 1)], None);
    let first = RedisStore::new(config.clone(), limits.clone()).unwrap();
    let app = cluster.owner("kill:cd:request_code:{app}");
    let victim = (app + 1) % 3;
    let on = |node: usize| -> Vec<u64> {
        (1..400u64)
            .filter(|n| cluster.owner(&format!("kill:q0:{{{n}}}")) == node)
            .take(4)
            .collect()
    };
    let (mut dead, mut live) = (on(victim), on(app));
    assert_eq!((dead.len(), live.len()), (4, 4));
    let (paused, fresh) = (dead.pop().unwrap(), live.pop().unwrap());
    // The first replica takes number `dead[0]`'s only slot while every shard is up.
    assert_eq!(
        admit(&first, dead[0], QuotaClass::RequestCode).await,
        Admission::Go
    );
    assert_eq!(first.fallback_answers(), 0, "every shard answered");
    // A paused primary (hung, not refusing): its check falls back within the timeout.
    cluster.node_cli(victim, &["CLIENT", "PAUSE", "30000", "ALL"]);
    let started = Instant::now();
    assert_eq!(
        admit(&first, paused, QuotaClass::RequestCode).await,
        Admission::Go
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "a paused shard costs its check the 300 ms timeout: {:?}",
        started.elapsed()
    );
    assert_eq!(first.fallback_answers(), 1, "answered by the fallback");
    cluster.kill(victim);
    let second = RedisStore::new(config, limits).unwrap();
    for &n in &live {
        let started = Instant::now();
        assert_eq!(
            admit(&first, n, QuotaClass::RequestCode).await,
            Admission::Go
        );
        // Redis, not the fallback: the second replica has never seen the number.
        let a = admit(&second, n, QuotaClass::RequestCode).await;
        assert_eq!(scope(a), Some(Scope::Number), "number {n} on a live shard");
        assert!(started.elapsed() < Duration::from_secs(30));
    }
    let before = second.fallback_answers();
    for &n in &dead {
        let started = Instant::now();
        let a = admit(&second, n, QuotaClass::RequestCode).await;
        // The fallback's own share: it has not seen the number, so it admits.
        assert_eq!(a, Admission::Go, "number {n} on the dead shard");
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "bounded by the 300 ms store timeout: {:?}",
            started.elapsed()
        );
    }
    assert_eq!(second.fallback_answers() - before, dead.len() as u64);
    // A lesson about a number on the dead shard cannot land in Redis either: the
    // fallback keeps it, and Redis is still asked for the other shards' numbers.
    let lesson = Lesson::Throttled {
        wait: Duration::from_secs(600),
        app_wide: false,
        code: None,
    };
    second
        .learn(Some(dead[1]), QuotaClass::VerifyCode, lesson)
        .await;
    assert!(
        !second.is_in_outage(),
        "the app's shard is up: Redis is not skipped"
    );
    let fell = second.fallback_answers();
    assert_eq!(
        scope(admit(&second, fresh, QuotaClass::RequestCode).await),
        None,
        "a fresh number on a live shard"
    );
    assert_eq!(second.fallback_answers(), fell, "answered by Redis");
    cluster.restart(victim).await;
    // Back: the restarted shard answers again. Its state was lost with it, so the first
    // replica takes a fresh number's slot there and the second is refused by Redis.
    let fresh: Vec<u64> = (400..2000u64)
        .filter(|n| cluster.owner(&format!("kill:q0:{{{n}}}")) == victim)
        .take(200)
        .collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let (f, s, fresh, next) = (&first, &second, &fresh, &next);
    eventually(
        Duration::from_secs(30),
        Duration::from_millis(50),
        "the restarted shard answers",
        || async move {
            let n = fresh[next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % fresh.len()];
            let fell = (f.fallback_answers(), s.fallback_answers());
            let a = admit(f, n, QuotaClass::RequestCode).await;
            let b = admit(s, n, QuotaClass::RequestCode).await;
            let redis = fell == (f.fallback_answers(), s.fallback_answers());
            match (a, scope(b), redis) {
                (Admission::Go, Some(Scope::Number), true) => Ok(()),
                other => Err(format!("number {n}: {other:?}")),
            }
        },
    )
    .await;
}

fn cluster_client(base: &str, cluster: &RedisCluster) -> Client {
    let mut c = client_config(base);
    c.rate_limit.store = on_cluster(cluster, "dedup-cluster:");
    client(c)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_through_a_redis_cluster_send_one_code() {
    let cluster = RedisCluster::start("dedup", Command::new).await;
    let sb = slow_sandbox(&["4200"], Duration::from_millis(300)).await;
    let replicas: Vec<Client> = (0..3)
        .map(|_| cluster_client(sb.base_url(), &cluster))
        .collect();
    one_code_from_sixty_callers(&sb, &replicas).await;
}

/// The CLI, one process per call, on the cluster.
fn cli(
    sb: &wa_verify_sandbox::SandboxHandle,
    cluster: &RedisCluster,
    number: &str,
    extra: &[&str],
) -> Command {
    let mut cmd = request_code_json(sb, number, extra);
    cmd.args(["--limiter-store", "redis-cluster"]);
    for u in cluster.urls() {
        cmd.args(["--redis-url", &u]);
    }
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn separate_cli_runs_share_the_window_and_idempotency_keys_through_a_cluster() {
    let cluster = RedisCluster::start("cli", Command::new).await;
    let sb = sandbox(SandboxConfig::default()).await;
    let first = run(cli(&sb, &cluster, "4900", &[])).await;
    assert_eq!(first.status.code(), Some(0), "{first:?}");
    let second = json(&run(cli(&sb, &cluster, "4900", &[])).await);
    assert_eq!(second["already_sent"].as_bool(), Some(true), "{second}");
    assert_eq!(sb.outbox().sent_to("4900"), 1);
    let key = ["--idempotency-key", "signup-7"];
    let k1 = json(&run(cli(&sb, &cluster, "4901", &key)).await);
    let k2 = json(&run(cli(&sb, &cluster, "4901", &key)).await);
    assert_eq!(k2["replayed"].as_bool(), Some(true), "{k2}");
    assert_eq!(k2["fbtrace_id"], k1["fbtrace_id"]);
    // The key is tied to its number across shards too.
    let other = run(cli(&sb, &cluster, "4902", &key)).await;
    assert_eq!(other.status.code(), Some(2), "{other:?}");
    assert_eq!(json(&other)["error"]["kind"], "invalid_input");
    assert_eq!(sb.outbox().sent_to("4902"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_moved_to_another_primary_is_followed_with_its_state() {
    let cluster = RedisCluster::start("moved", Command::new).await;
    let store = RedisStore::new(
        on_cluster(&cluster, "mv:"),
        Limits::quotas(&[quota("1/h", 1)], None),
    )
    .unwrap();
    assert_eq!(
        admit(&store, 7, QuotaClass::RequestCode).await,
        Admission::Go
    );
    // Move the number's slot, with its keys, by hand as `redis-cli --cluster reshard`
    // would: the client still maps it to the old primary, which answers MOVED.
    let slot = cluster.node_cli(0, &["CLUSTER", "KEYSLOT", "{7}"]);
    let slot = slot.trim();
    let from = cluster.owner("mv:q0:{7}");
    let to = (from + 1) % 3;
    let id = |i: usize| cluster.node_cli(i, &["CLUSTER", "MYID"]).trim().to_owned();
    let (from_id, to_id) = (id(from), id(to));
    cluster.node_cli(to, &["CLUSTER", "SETSLOT", slot, "IMPORTING", &from_id]);
    cluster.node_cli(from, &["CLUSTER", "SETSLOT", slot, "MIGRATING", &to_id]);
    let keys = cluster.node_cli(from, &["CLUSTER", "GETKEYSINSLOT", slot, "100"]);
    let keys: Vec<&str> = keys.lines().filter(|k| !k.is_empty()).collect();
    assert!(keys.contains(&"mv:q0:{7}"), "{keys:?}");
    let port = cluster.ports[to].to_string();
    let mut migrate = vec!["MIGRATE", "127.0.0.1", &port, "", "0", "5000", "KEYS"];
    migrate.extend(&keys);
    assert_eq!(cluster.node_cli(from, &migrate).trim(), "OK");
    for i in 0..3 {
        cluster.node_cli(i, &["CLUSTER", "SETSLOT", slot, "NODE", &to_id]);
    }
    assert_eq!(cluster.owner("mv:q0:{7}"), to);
    let a = admit(&store, 7, QuotaClass::RequestCode).await;
    assert_eq!(
        scope(a),
        Some(Scope::Number),
        "the quota moved with its slot"
    );
    assert_eq!(store.fallback_answers(), 0, "the redirect was followed");
}

#[tokio::test]
async fn the_cli_says_what_a_cluster_store_needs_before_any_io() {
    let sb = sandbox(SandboxConfig::default()).await;
    let call = |extra: &[&str]| request_code_json(&sb, "4950", extra);
    let cases: [(&[&str], &str); 3] = [
        (&["--limiter-store", "redis-cluster"], "--redis-url"),
        (
            &[
                "--limiter-store",
                "redis",
                "--redis-url",
                "redis://127.0.0.1:1",
                "--redis-url",
                "redis://127.0.0.1:2",
            ],
            "once",
        ),
        (&["--limiter-store", "sharded"], "redis-cluster"),
    ];
    for (extra, says) in cases {
        let out = run(call(extra)).await;
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {out:?}");
        let v = json(&out);
        assert_eq!(v["error"]["kind"], "invalid_input", "{v}");
        let message = v["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{extra:?}: {message}");
    }
    assert_eq!(sb.stats().requests, 0, "nothing was sent");
}

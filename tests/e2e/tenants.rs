use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use wa_verify_core::config::StackConfig;
use wa_verify_core::rate_limit::{QuotaClass, Scope};
use wa_verify_core::tenant::TenantConfig;
use wa_verify_core::{Client, ErrorKind};
use wa_verify_sandbox::{Sandbox, SandboxConfig, SandboxHandle, SandboxTenant};

use crate::support::*;

/// A directory of the test's own, removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Self {
        let d = std::env::temp_dir().join(format!("wa-verify-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Self(d)
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Tenant `i`: id `t{i}`, token `FAKE-tenant-{i}`, WABA `100{i}`, numbers `{i}000..{i}000+n`.
fn numbers(i: u32, n: u32) -> Vec<String> {
    (0..n).map(|k| format!("{}", i * 100_000 + k)).collect()
}

fn sandbox_tenants(count: u32, n: u32) -> Vec<SandboxTenant> {
    (1..=count)
        .map(|i| {
            let mut t = SandboxTenant::default();
            t.id = format!("t{i}");
            t.token = format!("FAKE-tenant-{i}");
            t.waba_id = Some(format!("100{i}"));
            t.numbers = numbers(i, n);
            t
        })
        .collect()
}

fn client_tenants(dir: &Dir, count: u32, n: u32) -> Vec<TenantConfig> {
    (1..=count)
        .map(|i| {
            let mut t = TenantConfig::default();
            t.id = format!("t{i}");
            t.waba_id = Some(format!("100{i}"));
            t.token_file = Some(dir.file(&format!("t{i}.token"), &format!("FAKE-tenant-{i}\n")));
            t.numbers = numbers(i, n);
            t
        })
        .collect()
}

fn tenant_client(sb: &SandboxHandle, tenants: Vec<TenantConfig>) -> Client {
    let mut c: StackConfig = client_config(sb.base_url());
    c.tenants = tenants;
    Client::builder().config(c).build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_tenants_driven_at_once_each_request_carries_its_own_token() {
    let mut cfg = SandboxConfig::default();
    cfg.tenants = sandbox_tenants(3, 100);
    let sb = sandbox(cfg).await;
    let dir = Dir::new("tenants-3x100");
    let c = tenant_client(&sb, client_tenants(&dir, 3, 100));
    let calls: Vec<_> = (1..=3)
        .flat_map(|i| numbers(i, 100))
        .map(|n| {
            let c = c.clone();
            tokio::spawn(async move { c.request_code(request(&n)).await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    let stats = sb.stats();
    let want: BTreeMap<String, u64> = (1..=3).map(|i| (format!("t{i}"), 100)).collect();
    assert_eq!(
        stats.by_tenant, want,
        "every request carried its tenant's token"
    );
    assert_eq!(stats.by_status.get("403"), None, "{:?}", stats.by_status);
    assert_eq!(stats.by_status.get("401"), None, "{:?}", stats.by_status);
    // Never another tenant's token, even when asked under concurrency: refused before I/O.
    let received = sb.stats().received;
    let wrong: Vec<_> = numbers(2, 50)
        .into_iter()
        .map(|n| {
            let c = c.clone();
            tokio::spawn(async move { c.request_code(request(&n).tenant("t1")).await })
        })
        .collect();
    for call in wrong {
        let e = call.await.unwrap().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        assert!(e.to_string().contains("belongs to tenant t2"), "{e}");
    }
    let e = c.request_code(request("999999999")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "an unlisted number: {e}");
    let e = c
        .request_code(request("100000").tenant("nobody"))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("unknown tenant"), "{e}");
    assert_eq!(sb.stats().received, received, "nothing was sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_80007_cools_down_every_number_of_its_waba_and_no_other() {
    let mut cfg =
        SandboxConfig::from_toml("[quotas]\nper_waba = { rate = \"2/h\", burst = 2 }").unwrap();
    cfg.tenants = sandbox_tenants(2, 10);
    let sb = sandbox(cfg).await;
    let dir = Dir::new("tenants-80007");
    let c = tenant_client(&sb, client_tenants(&dir, 2, 10));
    let t1 = numbers(1, 10);
    c.request_code(request(&t1[0])).await.unwrap();
    c.request_code(request(&t1[1])).await.unwrap();
    // The WABA's third call: Meta's 80007, naming the WABA in its usage header.
    let e = c.request_code(request(&t1[2])).await.unwrap_err();
    assert_eq!(e.graph().map(|g| g.code), Some(80_007), "{e}");
    let store = c.rate_limit_store().memory().clone();
    assert!(store.waba_cooldown(1001, QuotaClass::RequestCode).is_some());
    // Every other number of that WABA now waits, locally; another WABA's does not.
    let received = sb.stats().received;
    for n in &t1[3..6] {
        let e = c.request_code(request(n)).await.unwrap_err();
        assert!(
            e.is_local() && e.kind() == ErrorKind::RateLimited,
            "{n}: {e}"
        );
        assert!(
            e.to_string().contains(Scope::Waba.as_str()) || e.retry_after().is_some(),
            "{e}"
        );
    }
    assert_eq!(
        sb.stats().received,
        received,
        "the WABA cooled down: nothing sent"
    );
    c.request_code(request(&numbers(2, 1)[0])).await.unwrap();
    assert_eq!(sb.stats().received, received + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rewritten_token_file_is_used_for_the_next_calls_without_a_restart() {
    // The sandbox's own token is the tenant's old one; its tenant `t1` has the new one,
    // so stats.by_tenant counts exactly the calls that carried the new token.
    let mut cfg = SandboxConfig::default();
    cfg.tenants = sandbox_tenants(1, 400);
    let sb = Sandbox::builder()
        .config(cfg)
        .token("FAKE-old-token")
        .start()
        .await
        .unwrap();
    let dir = Dir::new("tenants-rotate");
    let mut tenants = client_tenants(&dir, 1, 400);
    let token_file = tenants[0].token_file.clone().unwrap();
    std::fs::write(&token_file, "FAKE-old-token\n").unwrap();
    tenants[0].token_file = Some(token_file.clone());
    let c = tenant_client(&sb, tenants);
    let ids = numbers(1, 400);
    let mut next = ids.iter();
    let mut call = || {
        let c = c.clone();
        let n = next.next().expect("enough numbers").clone();
        async move { c.request_code(request(&n)).await.unwrap() }
    };
    call().await;
    assert_eq!(sb.stats().by_tenant.get("t1"), None, "the old token first");
    // Rewritten in place.
    rewrite(&token_file, "FAKE-tenant-1\n", false);
    let used = |sb: &SandboxHandle| sb.stats().by_tenant.get("t1").copied().unwrap_or(0);
    let mut switched = false;
    for _ in 0..150 {
        call().await;
        if used(&sb) > 0 {
            switched = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(switched, "the new token within 3 s (re-read every 200 ms)");
    // Replaced by rename, back to the old one.
    rewrite(&token_file, "FAKE-old-token\n", true);
    let mut back = false;
    for _ in 0..150 {
        let before = used(&sb);
        call().await;
        if used(&sb) == before {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(back, "the renamed file's token within 3 s");
}

/// Writes `text` to `path`, in place or through a new file renamed over it.
fn rewrite(path: &Path, text: &str, rename: bool) {
    if rename {
        let tmp = path.with_extension("new");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, path).unwrap();
    } else {
        std::fs::write(path, text).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_takes_a_tenants_file_and_a_tenant() {
    let mut cfg = SandboxConfig::default();
    cfg.tenants = sandbox_tenants(2, 10);
    let sb = sandbox(cfg).await;
    let dir = Dir::new("tenants-cli");
    let mut file = String::new();
    for i in 1..=2 {
        let token = dir.file(&format!("t{i}.token"), &format!("FAKE-tenant-{i}\n"));
        let nums: Vec<String> = numbers(i, 10).iter().map(|n| format!("\"{n}\"")).collect();
        file.push_str(&format!(
            "[[tenants]]\nid = \"t{i}\"\nwaba_id = \"100{i}\"\ntoken_file = \"{}\"\nnumbers = [{}]\n",
            token.display(),
            nums.join(", ")
        ));
    }
    let tenants = dir.file("tenants.toml", &file);
    let cli = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend_from_slice(&[
            "--tenants",
            tenants.to_str().unwrap(),
            "--base-url",
            sb.base_url(),
            "--output",
            "json",
        ]);
        wa(&all) // no WHATSAPP_ACCESS_TOKEN: the tenants' tokens are used
    };
    let out = run(cli(&["request-code", "--phone-number-id", "200000"])).await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(sb.stats().by_tenant.get("t2"), Some(&1));
    let out = run(cli(&[
        "request-code",
        "--phone-number-id",
        "200001",
        "--tenant",
        "t1",
    ]))
    .await;
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert_eq!(json(&out)["error"]["kind"], "invalid_input");
    let out = run(cli(&[
        "request-code",
        "--phone-number-id",
        "200001",
        "--tenant",
        "t9",
    ]))
    .await;
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    // bench drives the file's numbers, every tenant's in file order; --numbers takes the
    // first N.
    let out = run(cli(&[
        "bench",
        "--numbers",
        "12",
        "--duration",
        "300ms",
        "--concurrency",
        "4",
    ]))
    .await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let driven: std::collections::BTreeSet<String> = sb
        .outbox()
        .entries()
        .into_iter()
        .map(|e| e.phone_number_id)
        .collect();
    let first12: std::collections::BTreeSet<String> =
        numbers(1, 10).into_iter().chain(numbers(2, 2)).collect();
    assert!(
        driven.iter().all(|n| first12.contains(n) || n == "200000"),
        "{driven:?}"
    );
    assert!(sb.stats().by_tenant.get("t1").copied().unwrap_or(0) > 0);
}

#[test]
fn tenants_config_is_checked_before_anything_runs() {
    let t = |id: &str, numbers: &[&str]| {
        let mut t = TenantConfig::default();
        t.id = id.into();
        t.token_env = Some("WA_VERIFY_TEST_NO_SUCH_VAR".into());
        t.numbers = numbers.iter().map(|s| s.to_string()).collect();
        t
    };
    let build = |tenants: Vec<TenantConfig>| {
        let mut c = StackConfig::default();
        c.tenants = tenants;
        Client::builder().config(c).build().unwrap_err().to_string()
    };
    assert!(build(vec![t("a", &["1"]), t("b", &["1"])]).contains("listed by tenants a and b"));
    assert!(build(vec![t("a", &[]), t("a", &[])]).contains("listed twice"));
    assert!(build(vec![t("a b", &[])]).contains("tenant id"));
    assert!(build(vec![t("a", &["12x"])]).contains("digits"));
    assert!(build(vec![t("a", &[])]).contains("WA_VERIFY_TEST_NO_SUCH_VAR is not set"));
    let mut both = t("a", &[]);
    both.token_file = Some("/nonexistent".into());
    assert!(build(vec![both]).contains("exactly one of token_file and token_env"));
}

/// Quotas per WABA are config like the others.
#[test]
fn per_waba_quotas_come_from_config() {
    let c = StackConfig::from_toml("[rate_limit]\nper_waba = [{ rate = \"200/h\" }]").unwrap();
    assert_eq!(c.rate_limit.per_waba.len(), 1);
    assert_eq!(c.rate_limit.per_waba[0].rate, "200/h".parse().unwrap());
    assert!(StackConfig::from_toml("[rate_limit]\nper_waba = [{ rate = \"0/h\" }]").is_err());
}

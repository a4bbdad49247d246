use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use wa_verify_core::auth::Token;
use wa_verify_core::config::StackConfig;
use wa_verify_core::{Client, CodeMethod, Language, PhoneNumberId, RequestCode, VerifyCode};
use wa_verify_sandbox::{Sandbox, SandboxConfig, SandboxHandle};

/// A fake token: never a real one.
pub(crate) const FAKE_TOKEN: &str = "FAKE-test-token-0123456789abcdef";

pub(crate) fn token() -> Token {
    FAKE_TOKEN.parse().unwrap()
}

pub(crate) async fn sandbox(config: SandboxConfig) -> SandboxHandle {
    Sandbox::builder()
        .config(config)
        .token(FAKE_TOKEN)
        .start()
        .await
        .unwrap()
}

/// A client for `base` with fast, deterministic retries.
pub(crate) fn client_config(base: &str) -> StackConfig {
    let mut c = StackConfig::default();
    c.base_url = base.parse().unwrap();
    c.retry.initial_backoff = Duration::from_millis(1);
    c.retry.max_backoff = Duration::from_millis(5);
    c.retry.jitter = 0.0;
    c
}

/// [`client_config`] with the dedup layer off: for tests of the limiter, the retries
/// and Meta's throttles, which call one number again and again and must see every call
/// sent (dedup would answer the repeats from the number's live-code window).
pub(crate) fn sending_config(base: &str) -> StackConfig {
    let mut c = client_config(base);
    c.dedup.enabled = false;
    c
}

/// A loopback base URL nobody listens on: bound, then released, so connecting is refused.
pub(crate) async fn closed_base() -> String {
    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("http://127.0.0.1:{port}")
}

/// Asks `check` again every `every` until it gives `Ok`, failing after `limit` with
/// `what` and the last `Err`: for effects that land beside a call (a lesson on its way
/// to Redis, a key expiring, a window passing).
pub(crate) async fn eventually<T, F, Fut>(
    limit: Duration,
    every: Duration,
    what: &str,
    mut check: F,
) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let started = Instant::now();
    loop {
        let not_yet = match check().await {
            Ok(v) => return v,
            Err(e) => e,
        };
        assert!(
            started.elapsed() < limit,
            "{what} within {limit:?}: {not_yet}"
        );
        tokio::time::sleep(every).await;
    }
}

/// The built `wa-verify` with `args`, without the token or `RUST_LOG` of the environment.
pub(crate) fn wa(args: &[&str]) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_wa-verify"));
    c.args(args)
        .env_remove("WHATSAPP_ACCESS_TOKEN")
        .env_remove("RUST_LOG");
    c
}

/// [`wa`] against the sandbox `sb`, with a fake token.
pub(crate) fn against(sb: &SandboxHandle, args: &[&str]) -> std::process::Command {
    let mut c = wa(args);
    c.args(["--base-url", sb.base_url()])
        .env("WHATSAPP_ACCESS_TOKEN", FAKE_TOKEN);
    c
}

/// `wa-verify request-code` for `number` against `sb`, JSON output, with `extra` flags.
pub(crate) fn request_code_json(
    sb: &SandboxHandle,
    number: &str,
    extra: &[&str],
) -> std::process::Command {
    let mut c = against(
        sb,
        &[
            "request-code",
            "--phone-number-id",
            number,
            "--output",
            "json",
        ],
    );
    c.args(extra);
    c
}

/// Runs the CLI off the async runtime (it blocks) and returns its output.
pub(crate) async fn run(mut cmd: std::process::Command) -> std::process::Output {
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

/// The one JSON object the CLI printed on stdout.
pub(crate) fn json(out: &std::process::Output) -> serde_json::Value {
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.trim().lines().count(),
        1,
        "exactly one JSON object: {text}"
    );
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// Everything the CLI printed, stdout then stderr.
pub(crate) fn printed(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

pub(crate) fn client(config: StackConfig) -> Client {
    Client::from_config(config, token()).unwrap()
}

pub(crate) fn id(s: &str) -> PhoneNumberId {
    s.parse().unwrap()
}

pub(crate) fn request(id_: &str) -> RequestCode {
    RequestCode::new(
        id(id_),
        CodeMethod::Sms,
        "en_US".parse::<Language>().unwrap(),
    )
}

pub(crate) fn verify(id_: &str, code: &str) -> VerifyCode {
    VerifyCode::new(id(id_), code.parse().unwrap())
}

/// A plain HTTP answer.
pub(crate) struct Plain {
    pub(crate) status: u16,
    pub(crate) headers: http::HeaderMap,
    pub(crate) body: Bytes,
}

impl Plain {
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Sends one request with a plain hyper client, not the stack under test.
pub(crate) async fn plain(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Result<Plain, hyper_util::client::legacy::Error> {
    let client: HyperClient<_, Full<Bytes>> = HyperClient::builder(TokioExecutor::new())
        .pool_idle_timeout(None)
        .build_http();
    let mut req = http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = client
        .request(req.body(Full::new(body.into())).unwrap())
        .await?;
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let body = res
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    Ok(Plain {
        status,
        headers,
        body,
    })
}

/// What a scripted server does with one request.
#[derive(Clone)]
pub(crate) enum Script {
    /// Writes these bytes and closes the connection.
    Bytes(Vec<u8>),
    /// Reads the request and closes without answering.
    Close,
    /// Reads the request and never answers.
    Hang,
}

/// A raw HTTP/1.1 server on 127.0.0.1 answering each request by its path.
pub(crate) struct Scripted {
    pub(crate) addr: SocketAddr,
    pub(crate) hits: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Scripted {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Scripted {
    pub(crate) async fn start(answer: impl Fn(&str) -> Script + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        let answer = Arc::new(answer);
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let answer = answer.clone();
                let counter = counter.clone();
                tokio::spawn(async move {
                    let Some(path) = read_request(&mut stream).await else {
                        return;
                    };
                    counter.fetch_add(1, Ordering::SeqCst);
                    match answer(&path) {
                        Script::Bytes(b) => {
                            let _ = stream.write_all(&b).await;
                            let _ = stream.shutdown().await;
                        }
                        Script::Close => {}
                        Script::Hang => std::future::pending::<()>().await,
                    }
                });
            }
        });
        Self { addr, hits, task }
    }

    pub(crate) fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub(crate) fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// Reads one request (headers and a Content-Length body); returns its path.
async fn read_request(stream: &mut tokio::net::TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 64 * 1024 {
            return None;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let len = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    head.split_whitespace().nth(1).map(str::to_owned)
}

/// An HTTP/1.1 answer with a Graph trace header.
pub(crate) fn http_answer(status: u16, content_type: &str, body: &str, extra: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\
         x-fb-trace-id: HdrTrace{status}\r\nconnection: close\r\n{extra}\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// A `redis-server` of the test's own on a free loopback port, persistence off, killed on
/// drop. Missing binary: the test fails and says how to install it (never skipped).
pub(crate) struct RedisServer {
    child: Option<std::process::Child>,
    pub(crate) port: u16,
}

impl RedisServer {
    pub(crate) async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut s = Self { child: None, port };
        s.spawn().await;
        s
    }

    async fn spawn(&mut self) {
        let child = std::process::Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start redis-server ({e}): install it with `apt-get install redis-server` (.ci/run does)")
            });
        self.child = Some(child);
        // Bounded wait for the server to answer PING (wide: a loaded machine is slow).
        for _ in 0..600 {
            if self.cli(&["PING"]).await.trim() == "PONG" {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!(
            "redis-server on port {} did not answer within 30 s",
            self.port
        );
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Runs `redis-cli` against this server and returns its output.
    pub(crate) async fn cli(&self, args: &[&str]) -> String {
        let mut cmd = tokio::process::Command::new("redis-cli");
        cmd.args(["-p", &self.port.to_string()]).args(args);
        match cmd.output().await {
            Ok(o) => String::from_utf8_lossy(&o.stdout).into_owned(),
            Err(e) => panic!("cannot run redis-cli ({e}): install redis-server (.ci/run does)"),
        }
    }

    /// SIGKILL, as a crash would.
    pub(crate) fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port (empty: persistence is off).
    pub(crate) async fn restart(&mut self) {
        self.kill();
        self.spawn().await;
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A loopback server answering 200 `{"success":true}` and recording when each request for
/// each number arrived; `answer` can script other answers by number.
pub(crate) struct Recorder {
    pub(crate) addr: SocketAddr,
    pub(crate) arrivals: Arc<std::sync::Mutex<Vec<(String, String, std::time::Instant)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Recorder {
    /// `answer(id, operation)` gives the raw HTTP answer, or `None` for a 200 success.
    pub(crate) async fn start(
        answer: impl Fn(&str, &str) -> Option<Vec<u8>> + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let arrivals: Arc<std::sync::Mutex<Vec<(String, String, std::time::Instant)>>> =
            Arc::default();
        let log = arrivals.clone();
        let answer = Arc::new(answer);
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let log = log.clone();
                let answer = answer.clone();
                tokio::spawn(async move {
                    // Keep-alive: answer requests on this connection until it closes.
                    while let Some(path) = read_request(&mut stream).await {
                        let mut parts = path.split('/').skip(2);
                        let id = parts.next().unwrap_or("").to_owned();
                        let op = parts.next().unwrap_or("").to_owned();
                        log.lock().unwrap().push((
                            id.clone(),
                            op.clone(),
                            std::time::Instant::now(),
                        ));
                        let bytes = answer(&id, &op).unwrap_or_else(|| {
                            let body = r#"{"success":true}"#;
                            format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}", body.len()).into_bytes()
                        });
                        if stream.write_all(&bytes).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Self {
            addr,
            arrivals,
            task,
        }
    }

    pub(crate) fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub(crate) fn count_for(&self, id: &str) -> usize {
        self.arrivals
            .lock()
            .unwrap()
            .iter()
            .filter(|(i, _, _)| i == id)
            .count()
    }

    pub(crate) fn times_by_number(
        &self,
    ) -> std::collections::HashMap<String, Vec<std::time::Instant>> {
        let mut m: std::collections::HashMap<String, Vec<std::time::Instant>> =
            std::collections::HashMap::new();
        for (id, _, t) in self.arrivals.lock().unwrap().iter() {
            m.entry(id.clone()).or_default().push(*t);
        }
        m
    }
}

//! A Redis Cluster of three primaries from Debian's `redis-server`, on loopback ports:
//! for the e2e tests and the throughput bench (which includes this file), so both run
//! the store on the same kind of cluster. Every wait is bounded.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Three primaries (no replicas) in a directory of their own. A node killed keeps its
/// `nodes.conf`, so it comes back with its slots (and none of its data).
pub(crate) struct RedisCluster {
    dir: PathBuf,
    /// Each node's port (its cluster bus is the port + 10000).
    pub(crate) ports: [u16; 3],
    nodes: [Option<Child>; 3],
    /// How a node's `redis-server` starts (the bench pins it to a core).
    program: fn(&'static str) -> Command,
}

/// A port free for a node and for its cluster bus (port + 10000), both below Linux's
/// ephemeral range (32768 and up), where a client connection could take them.
fn free_port_pair(seed: &mut u64, taken: &[u16]) -> u16 {
    for _ in 0..1000 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let port = 10_000 + (*seed >> 33) as u16 % 12_000;
        let free = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
        let clash = taken
            .iter()
            .any(|q| q.abs_diff(port) <= 1 || q.abs_diff(port) == 10_000);
        if !clash && free(port) && free(port + 10_000) {
            return port;
        }
    }
    panic!("no free port pair for a cluster node");
}

/// `redis-cli` with `args`, for at most 30 s (a paused node would hold it).
fn cli_output(args: &[&str]) -> String {
    match Command::new("timeout")
        .args(["30", "redis-cli"])
        .args(args)
        .output()
    {
        // `timeout` answers 127 when it cannot find the program.
        Ok(o) if o.status.code() == Some(127) => {
            panic!("cannot run redis-cli: install redis-server (.ci/run does)")
        }
        Ok(o) => String::from_utf8_lossy(&o.stdout).into_owned(),
        Err(e) => panic!("cannot run timeout ({e}): coreutils is needed"),
    }
}

/// Polls `check` every 50 ms until it holds, for at most `limit`.
async fn wait_for(what: &str, limit: Duration, mut check: impl FnMut() -> Result<(), String>) {
    let end = Instant::now() + limit;
    loop {
        let last = match check() {
            Ok(()) => return,
            Err(e) => e,
        };
        assert!(
            Instant::now() < end,
            "{what}: not within {limit:?} ({last})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl RedisCluster {
    /// Starts three nodes with `program` (`Command::new`, or a wrapper) and joins them.
    pub(crate) async fn start(name: &str, program: fn(&'static str) -> Command) -> Self {
        let dir =
            std::env::temp_dir().join(format!("wa-verify-cluster-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a directory for the cluster's nodes.conf");
        let mut seed = u64::from(std::process::id())
            ^ std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
        let mut c = Self {
            dir,
            ports: [0; 3],
            nodes: [None, None, None],
            program,
        };
        for i in 0..3 {
            // A port found free can be taken before the node binds it (another test's
            // server): the node then exits, and another port is tried.
            let mut started = false;
            for _ in 0..10 {
                c.ports[i] = free_port_pair(&mut seed, &c.ports[..i]);
                if c.spawn(i).await {
                    started = true;
                    break;
                }
            }
            assert!(started, "a cluster node could not start on any of 10 ports");
        }
        let ports = c.ports;
        let addrs: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let mut args = vec!["--cluster", "create"];
        args.extend(addrs.iter().map(String::as_str));
        args.extend(["--cluster-replicas", "0", "--cluster-yes"]);
        // `--cluster create` waits, with no bound, until every node has met the others. A
        // loaded machine can drop a handshake; meeting again (idempotent) completes it,
        // and the wait is bounded.
        let mut create = Command::new("redis-cli")
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("redis-cli runs");
        let end = Instant::now() + Duration::from_secs(120);
        let status = loop {
            if let Ok(Some(status)) = create.try_wait() {
                break status;
            }
            if Instant::now() > end {
                let _ = create.kill();
                let _ = create.wait();
                panic!("redis-cli --cluster create did not finish within 120 s");
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            for p in &ports[1..] {
                c.node_cli(0, &["CLUSTER", "MEET", "127.0.0.1", &p.to_string()]);
            }
        };
        let mut said = String::new();
        if let Some(mut out) = create.stdout.take() {
            let _ = std::io::Read::read_to_string(&mut out, &mut said);
        }
        assert!(status.success(), "redis-cli --cluster create: {said}");
        for i in 0..3 {
            c.until_ok(i).await;
        }
        c
    }

    /// Starts node `i` on its port; `false` when it could not (the port was taken).
    async fn spawn(&mut self, i: usize) -> bool {
        let port = self.ports[i].to_string();
        let conf = format!("nodes-{port}.conf");
        let child = (self.program)("redis-server")
            .args(["--port", &port, "--bind", "127.0.0.1", "--cluster-enabled", "yes"])
            // Long enough that a handshake survives a loaded machine.
            .args(["--cluster-config-file", &conf, "--cluster-node-timeout", "15000"])
            // A dead primary leaves the others serving their own slots.
            .args(["--cluster-require-full-coverage", "no"])
            .args(["--save", "", "--appendonly", "no", "--dir"])
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start redis-server ({e}): install it with `apt-get install redis-server` (.ci/run does)")
            });
        self.nodes[i] = Some(child);
        // Ours once it answers with its own directory (a server of someone else's could
        // hold the port); gone if it exited.
        let dir = self.dir.to_string_lossy().into_owned();
        let end = Instant::now() + Duration::from_secs(30);
        while Instant::now() < end {
            if let Some(Ok(Some(_))) = self.nodes[i].as_mut().map(Child::try_wait) {
                self.nodes[i] = None;
                return false;
            }
            if cli_output(&["-p", &port, "CONFIG", "GET", "dir"]).contains(&dir) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.kill(i);
        false
    }

    /// Waits (bounded) until node `i` sees the whole cluster: every node, every slot.
    /// (`cluster_state:ok` alone is not enough: with `cluster-require-full-coverage no`, a
    /// node that knows only itself says ok.)
    async fn until_ok(&self, i: usize) {
        let port = self.ports[i].to_string();
        let whole = [
            "cluster_state:ok",
            "cluster_known_nodes:3",
            "cluster_slots_ok:16384",
        ];
        wait_for(
            "each node sees the whole cluster",
            Duration::from_secs(60),
            || {
                let info = cli_output(&["-p", &port, "CLUSTER", "INFO"]);
                match whole.iter().all(|w| info.contains(w)) {
                    true => Ok(()),
                    false => Err(info.lines().take(7).collect::<Vec<_>>().join(" ")),
                }
            },
        )
        .await;
    }

    /// Every node's URL.
    pub(crate) fn urls(&self) -> Vec<String> {
        self.ports
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect()
    }

    /// The port of a node that is up.
    fn live(&self) -> String {
        self.ports
            .iter()
            .zip(&self.nodes)
            .find(|(_, n)| n.is_some())
            .map(|(p, _)| p.to_string())
            .expect("a live node")
    }

    /// The index of the node that holds `key`'s slot.
    pub(crate) fn owner(&self, key: &str) -> usize {
        let live = self.live();
        let slot: u16 = cli_output(&["-p", &live, "CLUSTER", "KEYSLOT", key])
            .trim()
            .parse()
            .expect("CLUSTER KEYSLOT answers a slot");
        for line in cli_output(&["-p", &live, "CLUSTER", "NODES"]).lines() {
            // id host:port@bus flags master ping pong epoch state slots...
            let fields: Vec<&str> = line.split_whitespace().collect();
            let Some(port) = fields
                .get(1)
                .and_then(|a| a.split('@').next())
                .and_then(|a| a.rsplit(':').next())
                .and_then(|p| p.parse::<u16>().ok())
            else {
                continue;
            };
            let holds = fields.iter().skip(8).any(|range| {
                let (a, b) = range.split_once('-').unwrap_or((range, range));
                matches!((a.parse::<u16>(), b.parse::<u16>()), (Ok(a), Ok(b)) if (a..=b).contains(&slot))
            });
            if let (true, Some(i)) = (holds, self.ports.iter().position(|p| *p == port)) {
                return i;
            }
        }
        panic!("no node holds slot {slot}");
    }

    /// Runs `redis-cli -c` (following redirects) against a live node.
    pub(crate) fn cli(&self, args: &[&str]) -> String {
        let live = self.live();
        let mut all = vec!["-c", "-p", &live];
        all.extend_from_slice(args);
        cli_output(&all)
    }

    /// Runs `redis-cli` against node `i` only.
    pub(crate) fn node_cli(&self, i: usize, args: &[&str]) -> String {
        let port = self.ports[i].to_string();
        let mut all = vec!["-p", &port];
        all.extend_from_slice(args);
        cli_output(&all)
    }

    /// SIGKILL node `i`, as a crash would.
    pub(crate) fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts node `i` again (its data is gone; its slots come back with it).
    pub(crate) async fn restart(&mut self, i: usize) {
        self.kill(i);
        assert!(self.spawn(i).await, "node {i} could not start again");
        self.until_ok(i).await;
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for i in 0..3 {
            self.kill(i);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

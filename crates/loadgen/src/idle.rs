//! W3: as many idle, authenticated WebSocket connections as one process may
//! hold, the server's memory per connection and the rate at which they open.
//! A few users' tokens are shared by all connections (a user may have many
//! devices). Connections are spread over several 127.0.0.x source addresses so
//! ephemeral ports never run short, and over the server's nodes when it has
//! several.
//!
//! Several generator processes can share one measurement (one process may
//! hold only so many descriptors): with a sync directory each announces when
//! it has signed in and when its connections are held, and waits for the
//! files `go` (open the connections) and `release` (ping and close) that
//! the script driving them writes, reading the nodes' memory in between.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use futures_util::{SinkExt, StreamExt, stream};
use serde::Serialize;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

use crate::usage::{Process, Usage};
use crate::ws::{self, Endpoint, Socket};

/// How W3 runs.
#[derive(Debug, Clone)]
pub struct IdleOptions {
    pub connections: usize,
    pub sources: Vec<IpAddr>,
    pub concurrency: usize,
    /// Wait for each connection's `ready` frame this long (None: the server sends none).
    pub ready: Option<Duration>,
    /// Pause after the last connection opened, before memory is read.
    pub settle: Duration,
    /// How long the connections are held before the liveness check.
    pub hold: Duration,
    /// Where to meet other generator processes (see the module doc).
    pub sync: Option<Sync>,
}

/// The files through which several generators open and close their
/// connections together.
#[derive(Debug, Clone)]
pub struct Sync {
    pub dir: PathBuf,
    /// This generator's name in the files it writes.
    pub name: String,
}

impl Sync {
    fn announce(&self, what: &str) -> Result<()> {
        let path = self.dir.join(format!("{}.{what}", self.name));
        std::fs::write(&path, b"").with_context(|| format!("writing {}", path.display()))
    }

    async fn await_file(&self, name: &str) {
        let path = self.dir.join(name);
        eprintln!("  waiting for {}", path.display());
        while !Path::exists(&path) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// What W3 measured.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IdleReport {
    pub target: usize,
    pub opened: u64,
    pub failed: u64,
    pub errors: BTreeMap<String, u64>,
    pub setup_seconds: f64,
    pub setup_rate: f64,
    /// When the first connection attempt started and the last one ended,
    /// seconds since the Unix epoch (to add up several generators' rates).
    pub setup_started_unix: f64,
    pub setup_finished_unix: f64,
    /// Nodes the connections were spread over.
    pub nodes: usize,
    pub server_rss_before_mib: f64,
    pub server_rss_after_mib: f64,
    pub server_kib_per_connection: f64,
    pub server_during_setup: Option<Usage>,
    pub loadgen_rss_before_mib: f64,
    pub loadgen_rss_after_mib: f64,
    pub loadgen_kib_per_connection: f64,
    pub loadgen_during_setup: Usage,
    /// Connections the server closed while they were held.
    pub closed_while_held: u64,
    /// Connections that answered a `ping` with a `pong` after the hold.
    pub answered_ping: u64,
    pub open_files_limit: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Command {
    Hold,
    Ping,
    Close,
}

#[derive(Default)]
struct Counters {
    closed: AtomicU64,
    pongs: AtomicU64,
}

/// Opens, holds, checks and closes the connections.
pub async fn run(
    endpoints: &[Endpoint],
    tokens: &[String],
    options: &IdleOptions,
    server: Option<&Process>,
    open_files_limit: u64,
) -> Result<IdleReport> {
    if let Some(sync) = &options.sync {
        sync.announce("signed-in")?;
        sync.await_file("go").await;
    }
    let me = Process::current();
    let server_before = server.and_then(|p| p.sample().ok());
    let me_before = me.sample().ok();
    let (command, commands) = watch::channel(Command::Hold);
    let counters = Arc::new(Counters::default());
    let mut holders = tokio::task::JoinSet::new();
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    let mut opened = 0u64;

    let started = Instant::now();
    let started_unix = unix_seconds();
    let mut attempts = stream::iter(0..options.connections)
        .map(|k| {
            let token = &tokens[k % tokens.len().max(1)];
            let endpoint = &endpoints[k % endpoints.len()];
            let source = options
                .sources
                .get(k % options.sources.len().max(1))
                .copied();
            async move {
                let mut socket =
                    ws::connect(endpoint, token, None, source, ws::config(4096)).await?;
                if let Some(wait) = options.ready {
                    ws::await_ready(&mut socket, wait, |_| {}).await?;
                }
                anyhow::Ok(socket)
            }
        })
        .buffer_unordered(options.concurrency.max(1));
    let mut last_report = Instant::now();
    while let Some(result) = attempts.next().await {
        match result {
            Ok(socket) => {
                opened += 1;
                holders.spawn(hold(socket, commands.clone(), counters.clone()));
            }
            Err(error) => {
                let reason = error.root_cause().to_string();
                *errors.entry(reason).or_insert(0) += 1;
            }
        }
        if last_report.elapsed() > Duration::from_secs(2) {
            eprintln!("  {opened} connections open");
            last_report = Instant::now();
        }
    }
    drop(attempts);
    let setup_seconds = started.elapsed().as_secs_f64();
    let finished_unix = unix_seconds();
    let server_setup_end = server.and_then(|p| p.sample().ok());
    let me_setup_end = me.sample().ok();

    tokio::time::sleep(options.settle).await;
    let server_after = server.and_then(|p| p.sample().ok());
    let me_after = me.sample().ok();
    eprintln!(
        "  holding {opened} connections for {:.0} s",
        options.hold.as_secs_f64()
    );
    tokio::time::sleep(options.hold).await;
    if let Some(sync) = &options.sync {
        sync.announce("held")?;
        sync.await_file("release").await;
    }

    let _ = command.send(Command::Ping);
    let deadline = Instant::now() + Duration::from_secs(30);
    while counters.pongs.load(Ordering::Relaxed) + counters.closed.load(Ordering::Relaxed) < opened
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = command.send(Command::Close);
    let _ = tokio::time::timeout(Duration::from_secs(30), async {
        while holders.join_next().await.is_some() {}
    })
    .await;
    holders.abort_all();

    let per_connection = |before: Option<u64>, after: Option<u64>| match (before, after) {
        (Some(b), Some(a)) if opened > 0 => (a as f64 - b as f64) / opened as f64,
        _ => 0.0,
    };
    let rss =
        |sample: Option<crate::usage::Sample>| sample.map_or(0.0, |s| s.rss_kib as f64 / 1024.0);
    Ok(IdleReport {
        target: options.connections,
        opened,
        failed: errors.values().sum(),
        errors,
        setup_seconds,
        setup_rate: opened as f64 / setup_seconds.max(1e-9),
        setup_started_unix: started_unix,
        setup_finished_unix: finished_unix,
        nodes: endpoints.len(),
        server_rss_before_mib: rss(server_before),
        server_rss_after_mib: rss(server_after),
        server_kib_per_connection: per_connection(
            server_before.map(|s| s.rss_kib),
            server_after.map(|s| s.rss_kib),
        ),
        server_during_setup: server_before
            .zip(server_setup_end)
            .map(|(a, b)| Usage::between(&a, &b)),
        loadgen_rss_before_mib: rss(me_before),
        loadgen_rss_after_mib: rss(me_after),
        loadgen_kib_per_connection: per_connection(
            me_before.map(|s| s.rss_kib),
            me_after.map(|s| s.rss_kib),
        ),
        loadgen_during_setup: me_before
            .zip(me_setup_end)
            .map(|(a, b)| Usage::between(&a, &b))
            .unwrap_or_default(),
        closed_while_held: counters.closed.load(Ordering::Relaxed),
        answered_ping: counters.pongs.load(Ordering::Relaxed),
        open_files_limit,
    })
}

/// Keeps one connection open, reading (so the server's pings are answered),
/// until told to ping once and then to close.
async fn hold(mut socket: Socket, mut commands: watch::Receiver<Command>, counters: Arc<Counters>) {
    let mut pinged = false;
    loop {
        tokio::select! {
            changed = commands.changed() => {
                if changed.is_err() {
                    return;
                }
                let command = *commands.borrow_and_update();
                match command {
                    Command::Hold => {}
                    Command::Ping => {
                        pinged = socket.send(Message::text(r#"{"type":"ping"}"#)).await.is_ok();
                    }
                    Command::Close => {
                        let _ = tokio::time::timeout(Duration::from_secs(5), socket.close(None)).await;
                        return;
                    }
                }
            }
            next = socket.next() => match next {
                Some(Ok(Message::Text(text))) => {
                    if pinged && text.contains(r#""pong""#) {
                        pinged = false;
                        counters.pongs.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                    counters.closed.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Some(Ok(_)) => {}
            },
        }
    }
}

fn unix_seconds() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

//! The Switchboard server: wires configuration, the store, the bus, the
//! HTTP API, the WebSocket gateway, the workers and the embedded portal
//! together.
//!
//! Requests come in through [`http`] and [`ws`], which parse and authorize
//! and then call a use case in [`service`]; the store's commits publish
//! events through the bus back to [`ws`]. No SQL lives in this crate.

pub mod admin_cli;
pub mod app;
pub mod auth;
pub mod bus;
pub mod carriers;
pub mod clock;
pub mod config;
pub mod demo;
pub mod http;
pub mod media;
pub mod metrics;
pub mod secrets;
pub mod service;
pub mod simulator;
pub mod workers;
pub mod ws;

use crate::app::App;
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, LogFormat};
use axum::serve::ListenerExt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use switchboard_store::{PgOptions, PgStore, SqliteOptions, SqliteStore, Store};

pub fn init_tracing(filter: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Threads doing Argon2 work: enough to keep sign-in storms moving, few
/// enough that they cannot starve the message path of CPU or memory.
const PASSWORD_THREADS: usize = 2;

/// Connection attempts the kernel queues before we accept them. A reconnect
/// storm after a restart arrives all at once; the default of 128 drops SYNs
/// and delays clients by a second each. The kernel caps it at somaxconn.
const LISTEN_BACKLOG: u32 = 4096;

fn listen(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Every WebSocket is an open file; a soft limit of 1,024 would refuse
/// clients long before the hardware is busy. Raise it to the hard limit.
fn raise_open_file_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::debug!(limit, "open file limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open file limit"),
    }
}

/// How long shutdown waits for WebSocket tasks to close cleanly.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// A server accepting connections, until [`Running::shut_down`].
pub struct Running {
    pub app: Arc<App>,
    pub addr: SocketAddr,
    /// The demo organization, when this start created it.
    pub seeded: Option<demo::Seeded>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Opens the store `url` names: SQLite (creating the file) or PostgreSQL
/// (applying migrations under a lock, so nodes starting together migrate
/// once).
pub async fn open_store(
    url: &config::DatabaseUrl,
    sqlite_synchronous: switchboard_store::Synchronous,
    node: Option<String>,
) -> anyhow::Result<Arc<dyn Store>> {
    Ok(match url {
        config::DatabaseUrl::Sqlite(path) => {
            let mut options = SqliteOptions::new(path);
            options.synchronous = sqlite_synchronous;
            Arc::new(SqliteStore::open(options)?)
        }
        config::DatabaseUrl::Postgres(url) => {
            let mut options = PgOptions::new(url.expose());
            options.node = node;
            Arc::new(PgStore::open(options).await?)
        }
    })
}

/// Opens the store and starts serving on `config.listen` with the given
/// clock. [`serve`] runs it for the command line; tests start it in-process
/// with a clock they drive.
pub async fn start(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<Running> {
    std::fs::create_dir_all(&config.data_dir).map_err(|e| {
        anyhow::anyhow!(
            "cannot create the data directory {}: {e}",
            config.data_dir.display()
        )
    })?;
    let node = config::node_name(&config.data_dir)?;
    let store = open_store(
        &config.database(),
        config.database.sqlite_synchronous,
        Some(node),
    )
    .await?;
    // This node's previous run is over: the jobs it left running were cut
    // short, and say so. Before serving, so no job of this run is taken
    // for one of them.
    let interrupted = store.interrupt_own_jobs(clock.now()).await?;
    if interrupted > 0 {
        tracing::warn!(
            jobs = interrupted,
            "jobs cut short by the last stop are marked failed"
        );
    }
    let bus = bus::connect_bus(
        config.bus_url.as_ref().map(config::BusUrl::expose),
        Arc::clone(&store),
    )
    .await?;
    let passwords = auth::PasswordWorkers::start(PASSWORD_THREADS)?;
    let seeded = if config.demo {
        demo::seed_if_empty(
            store.as_ref(),
            &passwords,
            config.demo_password.as_ref().map(|s| s.expose()),
            clock.now(),
        )
        .await?
    } else {
        None
    };
    raise_open_file_limit();
    let listener = listen(config.listen)
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
    let addr = listener.local_addr()?;
    let mut config = config;
    // The default public URL names the port actually bound (`listen` may
    // ask for port 0).
    if config.public_url.is_none() {
        config.public_url = Some(config::PublicUrl::of_address(addr));
    }
    switchboard_carriers::install_crypto_provider();
    let sealer = secrets::Sealer::from_key_file(&config::secret_key_path(&config.data_dir))?;
    let app = App::new(app::Parts {
        store,
        bus,
        clock,
        passwords,
        sealer,
        config,
    })
    .map_err(|e| anyhow::anyhow!("cannot prepare the image folder in the data directory: {e}"))?;

    // Small frames must leave at once: with Nagle's algorithm a second small
    // write (a send's answer right after its echo) waits for the client's
    // delayed acknowledgement.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
    });
    let shutdown = app.shutdown.clone();
    let server = tokio::spawn(
        axum::serve(
            listener,
            http::router(Arc::clone(&app)).into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .into_future(),
    );
    tracing::info!(%addr, "listening");
    Ok(Running {
        app,
        addr,
        seeded,
        server,
    })
}

impl Running {
    /// Shuts down gracefully: in-flight requests finish, WebSockets get a
    /// close frame, workers stop, the writer commits what it has queued.
    pub async fn shut_down(self) -> anyhow::Result<()> {
        self.app.shutdown.cancel();
        let served = self.server.await;
        self.app.tasks.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, self.app.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("some connections did not close in time");
        }
        self.app.bus.close().await;
        served??;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Runs the server until SIGINT or SIGTERM, then shuts it down gracefully.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let running = start(config, Arc::new(SystemClock)).await?;
    let url = format!("http://{}", running.addr);
    if let Some(seeded) = &running.seeded {
        println!("{}", demo::welcome(&url, seeded));
    }
    println!("listening on {url}");
    wait_for_signal().await;
    tracing::info!("shutting down");
    running.shut_down().await
}

async fn wait_for_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}

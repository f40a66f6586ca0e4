//! The server's shared state: one handle to each part (store, bus, gateway,
//! typing, jobs, clock, auth helpers), built once and handed to every handler,
//! connection and worker.

use crate::auth::{PasswordWorkers, SessionCache, SignInLimiter};
use crate::clock::Clock;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::secrets::Sealer;
use crate::workers::jobs::JobRunner;
use crate::workers::typing::TypingHandle;
use crate::ws::Gateway;
use std::sync::Arc;
use std::time::Duration;
use switchboard_bus::Bus;
use switchboard_store::Store;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub struct App {
    pub store: Arc<dyn Store>,
    pub bus: Arc<dyn Bus>,
    pub gateway: Arc<Gateway>,
    pub typing: TypingHandle,
    /// Bulk work running after its request was answered (CSV imports).
    pub jobs: JobRunner,
    pub clock: Arc<dyn Clock>,
    pub limiter: SignInLimiter,
    pub passwords: PasswordWorkers,
    /// Seals and opens carrier credentials (`secrets`).
    pub sealer: Sealer,
    pub sessions: Arc<SessionCache>,
    pub metrics: Arc<Metrics>,
    pub config: Config,
    /// Cancelled when the server shuts down; WebSocket tasks watch it.
    pub shutdown: CancellationToken,
    /// Every WebSocket task and worker, so shutdown can wait for them.
    pub tasks: TaskTracker,
}

/// Failed sign-ins allowed per account within the window.
pub const SIGN_IN_FAILURES_PER_ACCOUNT: u32 = 5;
/// Failed sign-ins allowed per client address within the window.
pub const SIGN_IN_FAILURES_PER_ADDRESS: u32 = 30;
pub const SIGN_IN_WINDOW: Duration = Duration::from_secs(15 * 60);

/// The parts an app is made of; the rest it builds itself.
pub struct Parts {
    pub store: Arc<dyn Store>,
    pub bus: Arc<dyn Bus>,
    pub clock: Arc<dyn Clock>,
    pub passwords: PasswordWorkers,
    /// Seals carrier credentials before they are stored.
    pub sealer: Sealer,
    pub config: Config,
}

impl App {
    pub fn new(parts: Parts) -> Arc<Self> {
        let Parts {
            store,
            bus,
            clock,
            passwords,
            sealer,
            config,
        } = parts;
        let metrics = Arc::new(Metrics::new());
        let gateway = Arc::new(Gateway::new(Arc::clone(&metrics)));
        let sessions = Arc::new(SessionCache::new());
        // The cache first: a request racing a revocation must not find the
        // session cached after its socket was closed.
        bus.attach(sessions.clone());
        bus.attach(gateway.clone());

        // Committed events go on the bus from the store's commit hook, so
        // they are published in cursor order and only once durable.
        let publish_bus = Arc::clone(&bus);
        let publish_metrics = Arc::clone(&metrics);
        store.on_commit(Arc::new(move |event| {
            publish_metrics.count_committed(event);
            publish_bus.publish(crate::ws::frames::envelope_for(event));
        }));

        let shutdown = CancellationToken::new();
        let tasks = TaskTracker::new();
        tasks.spawn({
            let shutdown = shutdown.clone();
            let gateway = Arc::clone(&gateway);
            async move {
                shutdown.cancelled().await;
                gateway.stop_all();
            }
        });
        crate::workers::sessions::spawn(
            crate::workers::sessions::SessionCheck {
                store: Arc::clone(&store),
                gateway: Arc::clone(&gateway),
                cache: Arc::clone(&sessions),
            },
            Arc::clone(&clock),
            shutdown.clone(),
            &tasks,
        );
        let typing = crate::workers::typing::spawn(
            Arc::clone(&bus),
            Arc::clone(&clock),
            shutdown.clone(),
            &tasks,
        );
        let jobs = JobRunner::new(
            Arc::clone(&bus),
            Arc::clone(&clock),
            tasks.clone(),
            shutdown.clone(),
        );
        Arc::new(Self {
            store,
            bus,
            gateway,
            typing,
            jobs,
            clock,
            limiter: SignInLimiter::new(
                SIGN_IN_WINDOW,
                SIGN_IN_FAILURES_PER_ACCOUNT,
                SIGN_IN_FAILURES_PER_ADDRESS,
            ),
            passwords,
            sealer,
            sessions,
            metrics,
            config,
            shutdown,
            tasks,
        })
    }
}

//! The server's shared state: one handle to each part (store, bus, gateway,
//! typing, jobs, clock, auth helpers), built once and handed to every handler,
//! connection and worker.

use crate::auth::{PasswordWorkers, SessionCache, SignInLimiter};
use crate::carriers::CarrierClients;
use crate::clock::Clock;
use crate::config::Config;
use crate::media::Media;
use crate::metrics::Metrics;
use crate::secrets::Sealer;
use crate::simulator::Simulator;
use crate::workers::jobs::JobRunner;
use crate::workers::media_fetch::MediaFetches;
use crate::workers::outbox::Outbox;
use crate::workers::typing::TypingHandle;
use crate::ws::Gateway;
use std::sync::Arc;
use std::time::Duration;
use switchboard_bus::Bus;
use switchboard_store::{AttemptLimits, Store};
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
    /// The carrier connections' clients and webhook checks.
    pub carriers: Arc<CarrierClients>,
    /// The built-in simulator carrier and its phones.
    pub simulator: Arc<Simulator>,
    /// Stored images and signed links to them.
    pub media: Arc<Media>,
    /// Inbound MMS images waiting to be fetched.
    pub media_fetches: MediaFetches,
    /// Texts waiting for their carrier.
    pub outbox: Arc<Outbox>,
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
    /// The app, its workers started; fails when the data directory cannot
    /// hold images.
    pub fn new(parts: Parts) -> std::io::Result<Arc<Self>> {
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
        let (simulator, receipts) = Simulator::new(Arc::clone(&store), Arc::clone(&clock));
        tasks.spawn({
            let shutdown = shutdown.clone();
            async move {
                tokio::select! {
                    () = shutdown.cancelled() => {}
                    () = receipts => {}
                }
            }
        });
        let carriers = Arc::new(CarrierClients::new(
            Arc::clone(&store),
            sealer.clone(),
            Arc::clone(&simulator),
            config.sms.request_timeout,
        ));
        let public_url = config.public_url();
        let media = Arc::new(Media::open(
            &config.data_dir,
            config.media.bucket().as_ref(),
            sealer.media_link_key(),
            public_url.as_str(),
        )?);
        let media_fetches = crate::workers::media_fetch::spawn(
            Arc::clone(&store),
            Arc::clone(&carriers),
            Arc::clone(&media),
            Arc::clone(&clock),
            shutdown.clone(),
            &tasks,
        );
        let outbox = Arc::new(Outbox::new(
            Arc::clone(&store),
            Arc::clone(&carriers),
            Arc::clone(&media),
            public_url,
            config.sms.claim(),
        ));
        crate::workers::outbox::spawn(
            Arc::clone(&outbox),
            Arc::clone(&clock),
            shutdown.clone(),
            &tasks,
        );
        let jobs = JobRunner::new(
            Arc::clone(&store),
            Arc::clone(&bus),
            Arc::clone(&clock),
            tasks.clone(),
            shutdown.clone(),
        );
        // Counted in the database when nodes share it, in memory otherwise.
        let limiter = SignInLimiter::for_store(
            Arc::clone(&store),
            AttemptLimits {
                window: SIGN_IN_WINDOW,
                per_account: SIGN_IN_FAILURES_PER_ACCOUNT,
                per_address: SIGN_IN_FAILURES_PER_ADDRESS,
            },
        );
        Ok(Arc::new(Self {
            store,
            bus,
            gateway,
            typing,
            jobs,
            clock,
            limiter,
            passwords,
            sealer,
            carriers,
            simulator,
            media,
            media_fetches,
            outbox,
            sessions,
            metrics,
            config,
            shutdown,
            tasks,
        }))
    }
}

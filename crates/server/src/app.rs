//! The server's shared state and the wiring between store, bus and gateway.

use crate::auth::{PasswordWorkers, SessionCache, SignInLimiter};
use crate::config::Config;
use crate::gateway::Gateway;
use crate::metrics::Metrics;
use crate::typing::TypingHandle;
use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;
use switchboard_bus::{Bus, Envelope};
use switchboard_domain::Timestamp;
use switchboard_store::{Recorded, Store};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Reads the time. Behaviour that depends on time asks this, not the system,
/// so that tests could drive it.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        Timestamp(i64::try_from(ms).unwrap_or(i64::MAX))
    }
}

pub struct App {
    pub store: Arc<dyn Store>,
    pub bus: Arc<dyn Bus>,
    pub gateway: Arc<Gateway>,
    pub typing: TypingHandle,
    pub clock: Arc<dyn Clock>,
    pub limiter: SignInLimiter,
    pub passwords: PasswordWorkers,
    pub sessions: SessionCache,
    pub metrics: Arc<Metrics>,
    pub config: Config,
    /// Cancelled when the server shuts down; WebSocket tasks watch it.
    pub shutdown: CancellationToken,
    /// Every WebSocket task, so shutdown can wait for them.
    pub tasks: TaskTracker,
}

/// Failed sign-ins allowed per account within the window.
pub const SIGN_IN_FAILURES_PER_ACCOUNT: u32 = 5;
/// Failed sign-ins allowed per client address within the window.
pub const SIGN_IN_FAILURES_PER_ADDRESS: u32 = 30;
pub const SIGN_IN_WINDOW: Duration = Duration::from_secs(15 * 60);

impl App {
    pub fn new(
        store: Arc<dyn Store>,
        bus: Arc<dyn Bus>,
        passwords: PasswordWorkers,
        config: Config,
    ) -> Arc<Self> {
        let metrics = Arc::new(Metrics::new());
        let gateway = Arc::new(Gateway::new(Arc::clone(&metrics)));
        bus.attach(gateway.clone());

        // Committed events go on the bus from the store's commit hook, so
        // they are published in cursor order and only once durable.
        let publish_bus = Arc::clone(&bus);
        let publish_metrics = Arc::clone(&metrics);
        store.on_commit(Arc::new(move |event: &Recorded| {
            if event.kind == "message.created" {
                publish_metrics.messages_stored.inc();
            }
            publish_bus.publish(envelope_for(event));
        }));

        let shutdown = CancellationToken::new();
        let tasks = TaskTracker::new();
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        tasks.spawn({
            let shutdown = shutdown.clone();
            let gateway = Arc::clone(&gateway);
            async move {
                shutdown.cancelled().await;
                gateway.stop_all();
            }
        });
        let typing = crate::typing::spawn(
            Arc::clone(&bus),
            Arc::clone(&clock),
            shutdown.clone(),
            &tasks,
        );
        Arc::new(Self {
            store,
            bus,
            gateway,
            typing,
            clock,
            limiter: SignInLimiter::new(
                SIGN_IN_WINDOW,
                SIGN_IN_FAILURES_PER_ACCOUNT,
                SIGN_IN_FAILURES_PER_ADDRESS,
            ),
            passwords,
            sessions: SessionCache::new(),
            metrics,
            config,
            shutdown,
            tasks,
        })
    }
}

impl App {
    /// Ends one session: its cached entry and its WebSockets.
    pub fn session_revoked(&self, auth: &crate::auth::Authed) {
        self.sessions.forget_token(&auth.token_hash);
        self.gateway
            .end_session(auth.session.extension.id, &auth.token_hash);
    }

    /// An extension changed. Cached sessions are dropped so the change shows
    /// on the next request; with `end_sockets`, its WebSockets (except those
    /// of `keep`) are closed too.
    pub fn extension_changed(
        &self,
        ext: switchboard_domain::ExtensionId,
        end_sockets: bool,
        keep: Option<&switchboard_store::TokenHash>,
    ) {
        self.sessions.forget_extension(ext);
        if end_sockets {
            self.gateway.end_extension(ext, keep);
        }
    }
}

/// The WebSocket frame of a durable event: built once, shared by every
/// recipient.
pub fn durable_frame(kind: &str, cursor: switchboard_domain::Cursor, payload: &str) -> String {
    let mut frame = String::with_capacity(payload.len() + kind.len() + 48);
    frame.push_str(r#"{"type":""#);
    frame.push_str(kind);
    frame.push_str(r#"","cursor":""#);
    frame.push_str(&cursor.to_string());
    frame.push_str(r#"","data":"#);
    frame.push_str(payload);
    frame.push('}');
    frame
}

fn envelope_for(event: &Recorded) -> Envelope {
    Envelope {
        cursor: Some(event.cursor),
        recipients: Arc::clone(&event.recipients),
        except: None,
        frame: Bytes::from(durable_frame(event.kind, event.cursor, &event.payload)),
    }
}

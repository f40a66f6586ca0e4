//! Ends the WebSockets of sessions that ended where this node could not hear
//! it. Sign-outs and changes made through a server reach every node as
//! events; a change made by the admin command line on the same database
//! (disabling an extension, resetting its password) reaches none, and a
//! session's expiry is no event at all. So every [`CHECK_INTERVAL`] the
//! sessions of this node's open WebSockets are looked up in the store, all
//! in one query, and those no longer live are closed with 4401.

use crate::auth::SessionCache;
use crate::clock::Clock;
use crate::ws::Gateway;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use switchboard_domain::Timestamp;
use switchboard_store::{Store, StoreError};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How often open WebSockets are checked against the store: the bound on
/// how long a socket outlives its session's end when no event tells of it.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(5);

/// One check of this node's WebSockets against the store.
pub struct SessionCheck {
    pub store: Arc<dyn Store>,
    pub gateway: Arc<Gateway>,
    pub cache: Arc<SessionCache>,
}

impl SessionCheck {
    /// Closes the WebSockets whose session is no longer live at `now` and
    /// forgets what was cached of their extensions; returns how many
    /// sessions ended.
    pub async fn run_once(&self, now: Timestamp) -> Result<usize, StoreError> {
        let open = self.gateway.open_sessions();
        if open.is_empty() {
            return Ok(0);
        }
        let tags = open.iter().map(|(_, tag)| *tag).collect();
        let live: HashSet<_> = self
            .store
            .live_sessions(tags, now)
            .await?
            .into_iter()
            .collect();
        let mut ended = 0;
        for (extension, tag) in open {
            if !live.contains(&tag) {
                // The cache first, as for events: a request racing the close
                // must not find the session cached.
                self.cache.forget_extension(extension);
                self.gateway.end_session(extension, tag);
                tracing::info!(%extension, "websocket session no longer valid; closed");
                ended += 1;
            }
        }
        Ok(ended)
    }
}

/// Runs [`SessionCheck::run_once`] every [`CHECK_INTERVAL`] of `clock`
/// until `shutdown`.
pub fn spawn(
    check: SessionCheck,
    clock: Arc<dyn Clock>,
    shutdown: CancellationToken,
    tasks: &TaskTracker,
) {
    // The first pass is scheduled from the clock as it reads now, so that a
    // test moving a manual clock on by the interval always causes a pass.
    let first = clock.now().saturating_add(CHECK_INTERVAL);
    tasks.spawn(async move {
        let mut next = first;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = clock.sleep_until(next) => {}
            }
            let now = clock.now();
            if let Err(e) = check.run_once(now).await {
                tracing::warn!(error = %e, "cannot check the sessions of open websockets");
            }
            next = now.saturating_add(CHECK_INTERVAL);
        }
    });
}

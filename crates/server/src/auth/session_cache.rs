//! Recently seen sessions, so that the message path does not read the
//! session table on every request.

use std::collections::HashMap;
use std::time::Duration;
use switchboard_bus::{Envelope, Sink};
use switchboard_domain::{Event, ExtensionId, Timestamp};
use switchboard_store::{Session, TokenHash};

/// Sessions seen within [`SESSION_CACHE_TTL`]. Every revocation and every
/// change to an extension removes its entries as soon as its event is heard
/// on the bus; a change this node cannot hear takes effect within the TTL.
pub struct SessionCache {
    entries: parking_lot::RwLock<HashMap<TokenHash, (Session, Timestamp)>>,
}

/// How long a session read from the store is trusted without reading it
/// again: **a revoked session is refused by every node within this bound.**
/// The bus does not carry every revocation to every node: a node hears an
/// organization's events only while it holds WebSockets of it, so one that
/// serves a session's REST requests alone (with several nodes), or a change
/// made behind the server's back (the admin command line on the same
/// database), is caught by the entry running out. One second keeps that
/// promise and still spares the store all but one session read per second
/// per busy session.
pub const SESSION_CACHE_TTL: Duration = Duration::from_secs(1);
/// Entries kept at most; past it the cache starts over rather than grow.
const SESSION_CACHE_MAX: usize = 200_000;

impl SessionCache {
    pub fn new() -> Self {
        Self {
            entries: parking_lot::RwLock::new(HashMap::new()),
        }
    }

    pub fn get(&self, token: &TokenHash, now: Timestamp) -> Option<Session> {
        let entries = self.entries.read();
        let (session, cached) = entries.get(token)?;
        (now.since(*cached) < SESSION_CACHE_TTL && session.expires_at > now)
            .then(|| session.clone())
    }

    pub fn insert(&self, token: TokenHash, session: Session, now: Timestamp) {
        let mut entries = self.entries.write();
        if entries.len() >= SESSION_CACHE_MAX {
            entries.clear();
        }
        entries.insert(token, (session, now));
    }

    /// After any change to an extension (revocation, password, settings).
    pub fn forget_extension(&self, ext: ExtensionId) {
        self.entries
            .write()
            .retain(|_, (s, _)| s.extension.id != ext);
    }

    /// After a change to an organization, which every session carries.
    pub fn forget_all(&self) {
        self.entries.write().clear();
    }
}

/// Drops cached sessions when an event says they ended or their extension
/// changed, wherever the change was committed.
impl Sink for SessionCache {
    fn deliver(&self, envelope: &Envelope) {
        match envelope.event.as_deref() {
            Some(Event::SessionEnded { extension_id, .. })
            | Some(Event::ExtensionChanged { extension_id, .. }) => {
                self.forget_extension(*extension_id);
            }
            _ => {}
        }
    }
}

impl Default for SessionCache {
    fn default() -> Self {
        Self::new()
    }
}

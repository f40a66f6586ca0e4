//! The PostgreSQL store, for several nodes sharing one database.
//!
//! **Writes** go through one writer task per node, as on SQLite: jobs wait
//! on a bounded channel, the writer runs every job that is waiting inside one
//! transaction on its own connection (each job in a savepoint, so one
//! failing job undoes only itself), commits, tells the commit listeners, and
//! only then answers each caller. Group commit keeps one fsync for many
//! sends; listeners hear this node's commits in cursor order.
//!
//! **Several nodes** write at once. What keeps them correct is in the
//! database, never in a node's memory: each organization's events form one
//! stream whose row (`org_streams`) every write transaction of that
//! organization locks first, so within an organization writes serialize,
//! cursors and message ids grow in commit order and no event becomes
//! visible behind a cursor a client was already given (see `events.rs` and
//! ARCHITECTURE.md); idempotency keys, sessions, outbox leases and jobs are
//! rows and unique indexes.
//!
//! **Reads** run on a pool of connections.

mod conversations;
mod directory;
mod events;
mod groups;
mod jobs;
mod limits;
mod messages;
mod numbers;
mod outbox;
mod sends;
mod sms;
mod writer;

use crate::{CommitListener, Result, StoreError};
use parking_lot::RwLock;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use std::collections::HashMap;
use std::sync::Arc;
use switchboard_domain::{ConversationId, ExtensionId, OrgId};
use tokio::sync::mpsc;
use writer::Job;

/// How to reach the database.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// `postgres://user:password@host:port/database`.
    pub url: String,
    /// Connections for reads (the writer has one more of its own).
    pub readers: u32,
    /// This node's name, unique among the nodes of the database and the
    /// same across its restarts: a node that starts again releases the
    /// outbox claims its previous run held and fails the jobs it left
    /// running (that run is over), while the claims and jobs of other
    /// nodes wait for their lease to run out. `None`: a new random name,
    /// whose claims and jobs nobody ends early.
    pub node: Option<String>,
}

impl PgOptions {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            readers: 8,
            node: None,
        }
    }
}

pub struct PgStore {
    pool: PgPool,
    /// Which organization a conversation or an extension belongs to, which
    /// never changes: a write names its organization before it runs.
    owners: Owners,
    jobs: mpsc::Sender<Job>,
    listeners: Arc<parking_lot::RwLock<Vec<CommitListener>>>,
    /// This node's name for the outbox claims and the jobs it holds (see
    /// [`PgOptions::node`]).
    node: Arc<str>,
}

pub(crate) fn backend(e: sqlx::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        backend(e)
    }
}

#[derive(Default)]
struct Owners {
    conversations: RwLock<HashMap<ConversationId, OrgId>>,
    extensions: RwLock<HashMap<ExtensionId, OrgId>>,
}

/// Entries kept at most per map; past it the map starts over (it only
/// saves a look-up).
const OWNERS_KEPT: usize = 1 << 20;

fn remember<K: std::hash::Hash + Eq>(map: &RwLock<HashMap<K, OrgId>>, key: K, org: OrgId) {
    let mut map = map.write();
    if map.len() >= OWNERS_KEPT {
        map.clear();
    }
    map.insert(key, org);
}

/// A random name for this node, unique among the nodes of a database.
fn node_id() -> Result<String> {
    let mut bytes = [0u8; 12];
    getrandom::fill(&mut bytes)
        .map_err(|e| StoreError::Backend(format!("no randomness for the node's name: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl PgStore {
    /// Connects, applies the migrations (under PostgreSQL's advisory lock,
    /// so that nodes starting together migrate once) and starts the writer.
    pub async fn open(options: PgOptions) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(options.readers.max(1))
            .connect(&options.url)
            .await
            .map_err(|e| StoreError::Backend(format!("cannot connect to PostgreSQL: {e}")))?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| StoreError::Backend(format!("cannot migrate the database: {e}")))?;
        events::begin_run(&pool).await?;
        let listeners = Arc::default();
        let jobs = writer::start(options.url.clone(), Arc::clone(&listeners)).await?;
        Ok(Self {
            pool,
            owners: Owners::default(),
            jobs,
            listeners,
            node: match options.node {
                Some(name) => name.into(),
                None => node_id()?.into(),
            },
        })
    }

    /// The organization of a conversation (`None`: no such conversation).
    pub(super) async fn org_of_conversation(&self, id: ConversationId) -> Result<Option<OrgId>> {
        if let Some(org) = self.owners.conversations.read().get(&id) {
            return Ok(Some(*org));
        }
        let org: Option<i64> = sqlx::query_scalar("SELECT org_id FROM conversations WHERE id = $1")
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await?;
        let org = org.map(OrgId);
        if let Some(org) = org {
            remember(&self.owners.conversations, id, org);
        }
        Ok(org)
    }

    /// The organization of an extension (`None`: no such extension).
    pub(super) async fn org_of_extension(&self, id: ExtensionId) -> Result<Option<OrgId>> {
        if let Some(org) = self.owners.extensions.read().get(&id) {
            return Ok(Some(*org));
        }
        let org: Option<i64> = sqlx::query_scalar("SELECT org_id FROM extensions WHERE id = $1")
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await?;
        let org = org.map(OrgId);
        if let Some(org) = org {
            remember(&self.owners.extensions, id, org);
        }
        Ok(org)
    }

    /// The organization `sql` finds for `id` (one row, one `org_id`
    /// column), for writes reached through something other than a
    /// conversation or an extension: a carrier connection, an outbox text.
    pub(super) async fn org_found_by(&self, sql: &'static str, id: i64) -> Result<Option<OrgId>> {
        let org: Option<i64> = sqlx::query_scalar(sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(org.map(OrgId))
    }

    /// This node's name on the outbox claims and the jobs it holds.
    pub(super) fn node(&self) -> Arc<str> {
        Arc::clone(&self.node)
    }

    /// A connection for reads of several statements.
    pub(super) async fn reader(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Postgres>> {
        Ok(self.pool.acquire().await?)
    }

    /// The pool itself, for single-statement reads.
    pub(super) fn pool(&self) -> &PgPool {
        &self.pool
    }
}

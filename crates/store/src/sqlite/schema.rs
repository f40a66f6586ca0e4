//! The SQLite schema and its migrations.
//!
//! Migrations are applied in order at start; `PRAGMA user_version` records
//! how many have run. A migration is never edited once released: changes
//! come as a new one. Columns for capabilities still to come (business
//! numbers, externals, queues) arrive with their migrations; the shapes here
//! leave room for them (conversation kinds, nullable senders).

use crate::Result;
use rusqlite::Connection;

const MIGRATIONS: &[&str] = &[
    // 1: organizations, extensions, sessions, conversations, messages, events.
    r#"
    CREATE TABLE organizations (
        id          INTEGER PRIMARY KEY,
        slug        TEXT NOT NULL UNIQUE,
        name        TEXT NOT NULL,
        alert_tone  TEXT NOT NULL DEFAULT 'chime',
        created_at  INTEGER NOT NULL
    );

    CREATE TABLE extensions (
        id            INTEGER PRIMARY KEY,
        org_id        INTEGER NOT NULL REFERENCES organizations(id),
        number        TEXT NOT NULL,
        name          TEXT NOT NULL,
        role          TEXT NOT NULL CHECK (role IN ('member', 'admin')),
        password_hash TEXT NOT NULL,
        disabled      INTEGER NOT NULL DEFAULT 0,
        alert_muted   INTEGER NOT NULL DEFAULT 0,
        created_at    INTEGER NOT NULL,
        UNIQUE (org_id, number)
    );

    CREATE TABLE sessions (
        token_hash    BLOB PRIMARY KEY,
        extension_id  INTEGER NOT NULL REFERENCES extensions(id),
        created_at    INTEGER NOT NULL,
        expires_at    INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX sessions_by_extension ON sessions (extension_id);

    CREATE TABLE conversations (
        id                INTEGER PRIMARY KEY,
        org_id            INTEGER NOT NULL REFERENCES organizations(id),
        kind              TEXT NOT NULL CHECK (kind IN ('direct', 'group', 'sms', 'queue')),
        name              TEXT,
        -- "lo:hi" extension ids for direct chats: one per pair.
        direct_key        TEXT UNIQUE,
        created_by        INTEGER REFERENCES extensions(id),
        created_at        INTEGER NOT NULL
    );

    -- Membership periods are expressed in event cursors so that a resuming
    -- client sees exactly the events of the time it was a participant.
    CREATE TABLE participants (
        conversation_id       INTEGER NOT NULL REFERENCES conversations(id),
        extension_id          INTEGER NOT NULL REFERENCES extensions(id),
        joined_seq            INTEGER NOT NULL,
        left_seq              INTEGER,
        last_read_message_id  INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (conversation_id, extension_id)
    ) WITHOUT ROWID;
    CREATE INDEX participants_by_extension ON participants (extension_id, conversation_id);

    -- Every membership period, current and past: someone who leaves and is
    -- added back still has the events of their first period replayed.
    CREATE TABLE memberships (
        conversation_id  INTEGER NOT NULL REFERENCES conversations(id),
        extension_id     INTEGER NOT NULL REFERENCES extensions(id),
        joined_seq       INTEGER NOT NULL,
        left_seq         INTEGER,
        PRIMARY KEY (conversation_id, extension_id, joined_seq)
    ) WITHOUT ROWID;

    CREATE TABLE messages (
        id               INTEGER PRIMARY KEY,
        conversation_id  INTEGER NOT NULL REFERENCES conversations(id),
        kind             TEXT NOT NULL CHECK (kind IN ('text', 'system')),
        sender_id        INTEGER REFERENCES extensions(id),
        body             TEXT NOT NULL,
        system           TEXT,
        idempotency_key  TEXT,
        created_at       INTEGER NOT NULL
    );
    CREATE INDEX messages_by_conversation ON messages (conversation_id, id);
    CREATE UNIQUE INDEX messages_by_idempotency_key
        ON messages (sender_id, idempotency_key) WHERE idempotency_key IS NOT NULL;

    -- The durable event log. `seq` is the cursor clients resume from.
    CREATE TABLE events (
        seq                  INTEGER PRIMARY KEY,
        conversation_id      INTEGER,
        target_extension_id  INTEGER,
        kind                 TEXT NOT NULL,
        payload              TEXT NOT NULL,
        created_at           INTEGER NOT NULL
    );
    CREATE INDEX events_by_target ON events (target_extension_id, seq)
        WHERE target_extension_id IS NOT NULL;
    "#,
    // 2: idempotency keys of sends are looked up in the writer's memory
    // (`recent_sends.rs`); their index put every send on a random page.
    r#"
    DROP INDEX messages_by_idempotency_key;
    "#,
    // 3: business numbers, the extensions that text from them, and the
    // carrier connections serving them. Credentials arrive sealed by the
    // server.
    r#"
    CREATE TABLE carrier_connections (
        id             INTEGER PRIMARY KEY,
        org_id         INTEGER NOT NULL REFERENCES organizations(id),
        kind           TEXT NOT NULL CHECK (kind IN ('twilio', 'telnyx', 'simulator')),
        name           TEXT NOT NULL,
        settings       TEXT NOT NULL,
        sealed_secret  BLOB NOT NULL,
        created_at     INTEGER NOT NULL,
        UNIQUE (org_id, name)
    );

    CREATE TABLE business_numbers (
        id             INTEGER PRIMARY KEY,
        org_id         INTEGER NOT NULL REFERENCES organizations(id),
        number         TEXT NOT NULL UNIQUE,
        sms_enabled    INTEGER NOT NULL,
        connection_id  INTEGER REFERENCES carrier_connections(id),
        created_at     INTEGER NOT NULL
    );
    CREATE INDEX business_numbers_by_org ON business_numbers (org_id, number);

    CREATE TABLE number_assignments (
        number_id     INTEGER NOT NULL REFERENCES business_numbers(id),
        extension_id  INTEGER NOT NULL REFERENCES extensions(id),
        is_default    INTEGER NOT NULL,
        PRIMARY KEY (number_id, extension_id)
    ) WITHOUT ROWID;
    CREATE INDEX number_assignments_by_extension ON number_assignments (extension_id, number_id);
    "#,
    // 4: the country numbers typed without `+` are read in.
    r#"
    ALTER TABLE organizations ADD COLUMN default_country TEXT NOT NULL DEFAULT 'US';
    "#,
    // 5: texting outside numbers. SMS conversations (one per pair of
    // numbers), the outside participants of conversations, who wrote a
    // message from outside, the delivery of each text, the outbox the
    // carriers are fed from, the webhooks already taken (so a retried one
    // changes nothing) and opt-outs per business number.
    r#"
    ALTER TABLE conversations ADD COLUMN business_number_id INTEGER REFERENCES business_numbers(id);
    ALTER TABLE conversations ADD COLUMN sms_key TEXT;
    CREATE UNIQUE INDEX conversations_by_sms_key ON conversations (sms_key) WHERE sms_key IS NOT NULL;
    CREATE INDEX conversations_by_business_number ON conversations (business_number_id, kind)
        WHERE business_number_id IS NOT NULL;

    CREATE TABLE external_participants (
        conversation_id  INTEGER NOT NULL REFERENCES conversations(id),
        number           TEXT NOT NULL,
        joined_seq       INTEGER NOT NULL,
        left_seq         INTEGER,
        PRIMARY KEY (conversation_id, number)
    ) WITHOUT ROWID;
    CREATE INDEX external_participants_by_number ON external_participants (number);

    ALTER TABLE messages ADD COLUMN external_sender TEXT;
    ALTER TABLE messages ADD COLUMN attachments TEXT;

    CREATE TABLE deliveries (
        message_id          INTEGER NOT NULL REFERENCES messages(id),
        recipient           TEXT NOT NULL,
        status              TEXT NOT NULL CHECK (status IN ('queued', 'sent', 'delivered', 'failed')),
        reason              TEXT,
        connection_id       INTEGER NOT NULL REFERENCES carrier_connections(id),
        carrier_message_id  TEXT,
        updated_at          INTEGER NOT NULL,
        PRIMARY KEY (message_id, recipient)
    ) WITHOUT ROWID;
    CREATE UNIQUE INDEX deliveries_by_carrier_id ON deliveries (connection_id, carrier_message_id)
        WHERE carrier_message_id IS NOT NULL;

    -- `due_at` is when a pending text is next tried, or when the claim on a
    -- text being sent runs out.
    CREATE TABLE outbox (
        id               INTEGER PRIMARY KEY,
        message_id       INTEGER NOT NULL REFERENCES messages(id),
        connection_id    INTEGER NOT NULL REFERENCES carrier_connections(id),
        sender           TEXT NOT NULL,
        recipient        TEXT NOT NULL,
        body             TEXT NOT NULL,
        media            TEXT NOT NULL DEFAULT '[]',
        idempotency_key  TEXT NOT NULL UNIQUE,
        state            TEXT NOT NULL CHECK (state IN ('pending', 'sending', 'sent', 'failed')),
        attempts         INTEGER NOT NULL DEFAULT 0,
        due_at           INTEGER NOT NULL,
        last_error       TEXT,
        created_at       INTEGER NOT NULL
    );
    CREATE INDEX outbox_by_due ON outbox (due_at) WHERE state IN ('pending', 'sending');

    CREATE TABLE carrier_webhooks (
        connection_id  INTEGER NOT NULL REFERENCES carrier_connections(id),
        event_key      TEXT NOT NULL,
        received_at    INTEGER NOT NULL,
        PRIMARY KEY (connection_id, event_key)
    ) WITHOUT ROWID;

    -- A status can arrive before the carrier's id of the text is recorded
    -- (the carrier answers the send and reports on it at once): it waits
    -- here until then.
    CREATE TABLE early_statuses (
        connection_id       INTEGER NOT NULL,
        carrier_message_id  TEXT NOT NULL,
        status              TEXT NOT NULL,
        reason              TEXT,
        received_at         INTEGER NOT NULL
    );
    CREATE INDEX early_statuses_by_id ON early_statuses (connection_id, carrier_message_id);

    -- Which messages carry which stored image, for who may fetch it.
    CREATE TABLE message_media (
        media_id    TEXT NOT NULL,
        message_id  INTEGER NOT NULL REFERENCES messages(id),
        PRIMARY KEY (media_id, message_id)
    ) WITHOUT ROWID;

    -- Images uploaded, before and after they are sent.
    CREATE TABLE media (
        org_id        INTEGER NOT NULL REFERENCES organizations(id),
        id            TEXT NOT NULL,
        uploaded_by   INTEGER REFERENCES extensions(id),
        content_type  TEXT NOT NULL,
        width         INTEGER NOT NULL,
        height        INTEGER NOT NULL,
        size          INTEGER NOT NULL,
        carrier_copy  TEXT,
        created_at    INTEGER NOT NULL,
        PRIMARY KEY (org_id, id)
    ) WITHOUT ROWID;

    CREATE TABLE opt_outs (
        business_number_id  INTEGER NOT NULL REFERENCES business_numbers(id),
        number              TEXT NOT NULL,
        keyword             TEXT NOT NULL,
        at                  INTEGER NOT NULL,
        PRIMARY KEY (business_number_id, number)
    ) WITHOUT ROWID;
    "#,
    // 6: long work (CSV imports) as jobs, so a restart reports what it
    // interrupted. `seq` orders an organization's jobs; at most one runs.
    r#"
    CREATE TABLE jobs (
        seq          INTEGER PRIMARY KEY,
        id           TEXT NOT NULL UNIQUE,
        org_id       INTEGER NOT NULL,
        owner_id     INTEGER NOT NULL,
        kind         TEXT NOT NULL,
        state        TEXT NOT NULL CHECK (state IN ('running', 'succeeded', 'failed')),
        total        INTEGER NOT NULL,
        done         INTEGER NOT NULL DEFAULT 0,
        created      INTEGER NOT NULL DEFAULT 0,
        refused      TEXT NOT NULL DEFAULT '[]',
        error        TEXT,
        started_at   INTEGER NOT NULL,
        finished_at  INTEGER,
        node         TEXT NOT NULL,
        reported_at  INTEGER NOT NULL
    );
    CREATE INDEX jobs_by_org ON jobs (org_id, seq);
    CREATE UNIQUE INDEX jobs_running_per_org ON jobs (org_id) WHERE state = 'running';
    "#,
];

pub(super) fn migrate(conn: &Connection) -> Result<()> {
    let applied: usize =
        conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))? as usize;
    if applied > MIGRATIONS.len() {
        return Err(crate::StoreError::Backend(format!(
            "the database is at schema version {applied}, newer than this server knows ({}); \
             run a newer server",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
        let version = i + 1;
        conn.execute_batch(&format!(
            "BEGIN IMMEDIATE; {sql}\nPRAGMA user_version = {version}; COMMIT;"
        ))
        .inspect_err(|_| {
            let _ = conn.execute_batch("ROLLBACK");
        })?;
        tracing::info!(version, "applied database migration");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::expect_used,
        reason = "a test reports a broken rule by panicking"
    )]

    use super::*;
    use crate::sqlite::messages::{MESSAGE_COLUMNS, MESSAGE_FROM, message_from_row};

    /// A database as a server before texting left it (migrations 1–3), with
    /// a chat in it, takes the later migrations and keeps what it held.
    #[test]
    fn a_database_from_before_texting_upgrades_with_its_chats() {
        let conn = Connection::open_in_memory().expect("a database");
        for (i, sql) in MIGRATIONS.iter().enumerate().take(3) {
            conn.execute_batch(&format!(
                "BEGIN; {sql}\nPRAGMA user_version = {}; COMMIT;",
                i + 1
            ))
            .expect("an old migration");
        }
        conn.execute_batch(
            "INSERT INTO organizations (id, slug, name, created_at) VALUES (1, 'acme', 'Acme', 0);
             INSERT INTO extensions (id, org_id, number, name, role, password_hash, created_at)
                 VALUES (1, 1, '101', 'Alice', 'admin', 'h', 0), (2, 1, '102', 'Bob', 'member', 'h', 0);
             INSERT INTO conversations (id, org_id, kind, direct_key, created_by, created_at)
                 VALUES (1, 1, 'direct', '1:2', 1, 0);
             INSERT INTO participants (conversation_id, extension_id, joined_seq)
                 VALUES (1, 1, 1), (1, 2, 1);
             INSERT INTO messages (id, conversation_id, kind, sender_id, body, created_at)
                 VALUES (1, 1, 'text', 1, 'Lunch?', 5);",
        )
        .expect("old data");

        migrate(&conn).expect("the new migrations");

        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .expect("version");
        assert_eq!(version as usize, MIGRATIONS.len());
        let country: String = conn
            .query_row("SELECT default_country FROM organizations", [], |r| {
                r.get(0)
            })
            .expect("country");
        assert_eq!(country, "US");
        let message = conn
            .query_row(
                &format!("SELECT {MESSAGE_COLUMNS} FROM {MESSAGE_FROM} WHERE m.id = 1"),
                [],
                message_from_row,
            )
            .expect("the old message reads");
        assert_eq!(message.text, "Lunch?");
        assert_eq!(message.sender.map(|s| s.name), Some("Alice".to_owned()));
        assert!(message.external_sender.is_none());
        assert!(message.attachments.is_empty());
        let number: Option<i64> = conn
            .query_row(
                "SELECT business_number_id FROM conversations WHERE id = 1",
                [],
                |r| r.get(0),
            )
            .expect("the chat");
        assert_eq!(number, None, "a chat has no business number");
    }
}

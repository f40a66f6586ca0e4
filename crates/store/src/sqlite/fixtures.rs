//! Fixtures shared by the tests of the writer and of the checkpointer.

use super::{SqliteOptions, SqliteStore};
use crate::{Conversations, Directory, Extension, NewExtension, NewMessage, OpenDirect};
use std::path::Path;
use std::sync::Arc;
use switchboard_domain::{
    ConversationId, DisplayName, ExtensionNumber, IdempotencyKey, MessageText, OrgSlug, Role,
    Timestamp,
};

/// The salt in the WAL header changes each time the WAL starts over.
pub(super) fn wal_salt(wal: &Path) -> [u8; 8] {
    let header = std::fs::read(wal).expect("read the WAL");
    header[16..24].try_into().expect("a WAL header")
}

/// A store on a new database file, shared by the tasks of a test.
pub(super) fn fresh_store() -> (tempfile::TempDir, Arc<SqliteStore>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("switchboard.db");
    let store = SqliteStore::open(SqliteOptions::new(path)).expect("open");
    (dir, Arc::new(store))
}

/// An organization with two people and their direct chat.
pub(super) async fn two_people_chatting(store: &SqliteStore) -> (Vec<Extension>, ConversationId) {
    let org = store
        .create_org(
            &OrgSlug::parse("steady").expect("slug"),
            &DisplayName::parse("Steady").expect("name"),
        )
        .await
        .expect("org");
    let people = store
        .create_extensions(
            org.id,
            ["201", "202"]
                .iter()
                .map(|n| NewExtension {
                    number: ExtensionNumber::parse(n).expect("number"),
                    name: DisplayName::parse(&format!("Person {n}")).expect("name"),
                    role: Role::Member,
                    password_hash: String::new(),
                })
                .collect(),
            Timestamp(0),
        )
        .await
        .expect("extensions");
    let chat = store
        .open_direct(OpenDirect {
            org: org.id,
            me: people[0].id,
            other: people[1].id,
            now: Timestamp(0),
        })
        .await
        .expect("chat")
        .value
        .conversation
        .id;
    (people, chat)
}

pub(super) fn send(
    sender: &Extension,
    chat: ConversationId,
    key: Option<&str>,
    at: i64,
) -> NewMessage {
    NewMessage {
        conversation_id: chat,
        sender: sender.as_ref(),
        text: MessageText::parse("On my way").expect("text"),
        attachments: Vec::new(),
        carrier_media: Vec::new(),
        idempotency_key: key.map(|k| IdempotencyKey::parse(k).expect("key")),
        now: Timestamp(at),
    }
}

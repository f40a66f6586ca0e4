//! STUB: to be written.
#![allow(unused_variables, unused_imports)]
use super::PgStore;
use crate::*;
use async_trait::async_trait;
use switchboard_domain::phone::{Country, E164};
use switchboard_domain::*;

#[async_trait]
impl Outbox for PgStore {
    async fn claim_texts(
        &self,
        now: Timestamp,
        claim_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<OutboxText>> {
        todo!("postgres: claim_texts")
    }
    async fn text_accepted(
        &self,
        id: i64,
        carrier_message_id: String,
        now: Timestamp,
    ) -> Result<Committed<()>> {
        todo!("postgres: text_accepted")
    }
    async fn text_retry(&self, id: i64, due_at: Timestamp, error: String) -> Result<()> {
        todo!("postgres: text_retry")
    }
    async fn text_failed(&self, id: i64, reason: String, now: Timestamp) -> Result<Committed<()>> {
        todo!("postgres: text_failed")
    }
    async fn text_opted_out(
        &self,
        id: i64,
        reason: String,
        now: Timestamp,
    ) -> Result<Committed<()>> {
        todo!("postgres: text_opted_out")
    }
    async fn next_text_due(&self) -> Result<Option<Timestamp>> {
        todo!("postgres: next_text_due")
    }
    async fn release_claims(&self, now: Timestamp) -> Result<u64> {
        todo!("postgres: release_claims")
    }
}

//! STUB: to be written.
#![allow(unused_variables, unused_imports)]
use super::PgStore;
use crate::*;
use async_trait::async_trait;
use switchboard_domain::phone::{Country, E164};
use switchboard_domain::*;

#[async_trait]
impl Sms for PgStore {
    async fn open_sms(&self, open: OpenSms) -> Result<Committed<OpenedSms>> {
        todo!("postgres: open_sms")
    }
    async fn accept_inbound(&self, text: InboundText) -> Result<Committed<InboundOutcome>> {
        todo!("postgres: accept_inbound")
    }
    async fn record_status(&self, report: StatusReport) -> Result<Committed<StatusOutcome>> {
        todo!("postgres: record_status")
    }
    async fn update_attachment(
        &self,
        message: MessageId,
        index: usize,
        attachment: Attachment,
    ) -> Result<Committed<()>> {
        todo!("postgres: update_attachment")
    }
    async fn may_see_media(&self, me: ExtensionId, media_id: String) -> Result<bool> {
        todo!("postgres: may_see_media")
    }
    async fn add_media(&self, record: MediaRecord, now: Timestamp) -> Result<()> {
        todo!("postgres: add_media")
    }
    async fn media_record(&self, org: OrgId, id: String) -> Result<Option<MediaRecord>> {
        todo!("postgres: media_record")
    }
}

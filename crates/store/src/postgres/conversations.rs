//! STUB: to be written.
#![allow(unused_variables, unused_imports)]
use super::PgStore;
use crate::*;
use async_trait::async_trait;
use switchboard_domain::phone::{Country, E164};
use switchboard_domain::*;

#[async_trait]
impl Conversations for PgStore {
    async fn open_direct(&self, open: OpenDirect) -> Result<Committed<OpenedDirect>> {
        todo!("postgres: open_direct")
    }
    async fn create_group(&self, group: NewGroup) -> Result<Committed<Conversation>> {
        todo!("postgres: create_group")
    }
    async fn edit_group(&self, edit: EditGroup) -> Result<Committed<Conversation>> {
        todo!("postgres: edit_group")
    }
    async fn conversations_of(&self, me: ExtensionId) -> Result<Vec<ConversationSummary>> {
        todo!("postgres: conversations_of")
    }
    async fn conversation_for(
        &self,
        me: ExtensionId,
        id: ConversationId,
    ) -> Result<Option<Conversation>> {
        todo!("postgres: conversation_for")
    }
    async fn post_message(&self, message: NewMessage) -> Result<Committed<Posted>> {
        todo!("postgres: post_message")
    }
    async fn history(
        &self,
        me: ExtensionId,
        conversation: ConversationId,
        page: HistoryPage,
    ) -> Result<(Vec<Message>, bool)> {
        todo!("postgres: history")
    }
    async fn mark_read(&self, read: MarkRead) -> Result<Committed<u32>> {
        todo!("postgres: mark_read")
    }
    async fn receipts(
        &self,
        me: ExtensionId,
        conversation: ConversationId,
    ) -> Result<Vec<Receipt>> {
        todo!("postgres: receipts")
    }
}

//! STUB: to be written.
#![allow(unused_variables, unused_imports)]
use super::PgStore;
use crate::*;
use async_trait::async_trait;
use switchboard_domain::phone::{Country, E164};
use switchboard_domain::*;

#[async_trait]
impl Directory for PgStore {
    async fn create_org(&self, slug: &OrgSlug, name: &DisplayName) -> Result<Org> {
        todo!("postgres: create_org")
    }
    async fn org_by_slug(&self, slug: &OrgSlug) -> Result<Option<Org>> {
        todo!("postgres: org_by_slug")
    }
    async fn list_orgs(&self) -> Result<Vec<Org>> {
        todo!("postgres: list_orgs")
    }
    async fn set_alert_tone(&self, org: OrgId, tone: AlertTone) -> Result<Org> {
        todo!("postgres: set_alert_tone")
    }
    async fn set_default_country(&self, org: OrgId, country: Country) -> Result<Org> {
        todo!("postgres: set_default_country")
    }
    async fn create_extensions(
        &self,
        org: OrgId,
        new: Vec<NewExtension>,
        now: Timestamp,
    ) -> Result<Vec<Extension>> {
        todo!("postgres: create_extensions")
    }
    async fn extension(&self, org: OrgId, id: ExtensionId) -> Result<Option<Extension>> {
        todo!("postgres: extension")
    }
    async fn extension_for_sign_in(
        &self,
        org: OrgId,
        number: &ExtensionNumber,
    ) -> Result<Option<(Extension, String)>> {
        todo!("postgres: extension_for_sign_in")
    }
    async fn list_extensions(&self, org: OrgId) -> Result<Vec<Extension>> {
        todo!("postgres: list_extensions")
    }
    async fn update_extension(
        &self,
        org: OrgId,
        id: ExtensionId,
        update: ExtensionUpdate,
    ) -> Result<Committed<Extension>> {
        todo!("postgres: update_extension")
    }
    async fn set_password_hash(&self, change: NewPassword) -> Result<Committed<()>> {
        todo!("postgres: set_password_hash")
    }
    async fn create_session(&self, session: NewSession) -> Result<()> {
        todo!("postgres: create_session")
    }
    async fn session(&self, token: &TokenHash, now: Timestamp) -> Result<Option<Session>> {
        todo!("postgres: session")
    }
    async fn live_sessions(
        &self,
        tags: Vec<SessionTag>,
        now: Timestamp,
    ) -> Result<Vec<SessionTag>> {
        todo!("postgres: live_sessions")
    }
    async fn revoke_session(&self, token: &TokenHash) -> Result<Committed<()>> {
        todo!("postgres: revoke_session")
    }
}

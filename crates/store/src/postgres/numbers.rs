//! STUB: to be written.
#![allow(unused_variables, unused_imports)]
use super::PgStore;
use crate::*;
use async_trait::async_trait;
use switchboard_domain::phone::{Country, E164};
use switchboard_domain::*;

#[async_trait]
impl Numbers for PgStore {
    async fn add_connection(&self, new: NewConnection) -> Result<CarrierConnection> {
        todo!("postgres: add_connection")
    }
    async fn connections(&self, org: OrgId) -> Result<Vec<CarrierConnection>> {
        todo!("postgres: connections")
    }
    async fn connection(&self, id: ConnectionId) -> Result<Option<CarrierConnection>> {
        todo!("postgres: connection")
    }
    async fn add_number(&self, new: NewNumber) -> Result<BusinessNumber> {
        todo!("postgres: add_number")
    }
    async fn numbers(&self, org: OrgId) -> Result<Vec<BusinessNumber>> {
        todo!("postgres: numbers")
    }
    async fn update_number(
        &self,
        org: OrgId,
        id: NumberId,
        update: NumberUpdate,
    ) -> Result<BusinessNumber> {
        todo!("postgres: update_number")
    }
    async fn number_by_e164(&self, number: &E164) -> Result<Option<BusinessNumber>> {
        todo!("postgres: number_by_e164")
    }
    async fn assign_number(
        &self,
        org: OrgId,
        number: NumberId,
        to: ExtensionId,
    ) -> Result<Committed<()>> {
        todo!("postgres: assign_number")
    }
    async fn unassign_number(
        &self,
        org: OrgId,
        number: NumberId,
        from: ExtensionId,
    ) -> Result<Committed<()>> {
        todo!("postgres: unassign_number")
    }
    async fn assignments(&self, org: OrgId) -> Result<Vec<Assignment>> {
        todo!("postgres: assignments")
    }
    async fn numbers_of(&self, extension: ExtensionId) -> Result<Vec<OwnNumber>> {
        todo!("postgres: numbers_of")
    }
    async fn set_default_number(&self, extension: ExtensionId, number: NumberId) -> Result<()> {
        todo!("postgres: set_default_number")
    }
}

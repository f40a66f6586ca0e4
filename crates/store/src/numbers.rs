//! The [`Numbers`] capability: an organization's business numbers, which
//! extensions may text from each, and the carrier connections that serve
//! them.

use crate::{Committed, Result};
use async_trait::async_trait;
use switchboard_domain::phone::E164;
use switchboard_domain::{CarrierKind, ConnectionId, ExtensionId, NumberId, OrgId};

/// One carrier account of an organization. `settings` holds what may be
/// shown (account id, base URL, public key); `sealed_secret` holds the
/// credentials as the server encrypted them: the store never sees them in
/// the clear.
#[derive(Clone, PartialEq, Eq)]
pub struct CarrierConnection {
    pub id: ConnectionId,
    pub org_id: OrgId,
    pub kind: CarrierKind,
    pub name: String,
    pub settings: String,
    pub sealed_secret: Vec<u8>,
}

impl std::fmt::Debug for CarrierConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CarrierConnection")
            .field("id", &self.id)
            .field("org_id", &self.org_id)
            .field("kind", &self.kind)
            .field("name", &self.name)
            .field("settings", &self.settings)
            .field("sealed_secret", &"<sealed>")
            .finish()
    }
}

/// A carrier connection to create.
#[derive(Debug, Clone)]
pub struct NewConnection {
    pub org: OrgId,
    pub kind: CarrierKind,
    pub name: String,
    pub settings: String,
    pub sealed_secret: Vec<u8>,
}

/// A business number of an organization.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BusinessNumber {
    pub id: NumberId,
    #[serde(skip)]
    pub org_id: OrgId,
    pub number: E164,
    pub sms_enabled: bool,
    pub connection_id: Option<ConnectionId>,
}

/// A business number to add.
#[derive(Debug, Clone)]
pub struct NewNumber {
    pub org: OrgId,
    pub number: E164,
    pub sms_enabled: bool,
    pub connection: Option<ConnectionId>,
}

/// Fields of a business number to change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct NumberUpdate {
    pub sms_enabled: Option<bool>,
    /// `Some(None)` takes the number off any connection.
    pub connection: Option<Option<ConnectionId>>,
}

/// A number an extension may text from, and whether it is the one new texts
/// go out from unless the extension picks another.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OwnNumber {
    #[serde(flatten)]
    pub number: BusinessNumber,
    pub default: bool,
}

/// An extension that may text from a business number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Assignment {
    pub number: NumberId,
    pub extension: ExtensionId,
}

#[async_trait]
pub trait Numbers: Send + Sync + 'static {
    /// Adds a carrier connection; a name is unique in its organization.
    async fn add_connection(&self, new: NewConnection) -> Result<CarrierConnection>;
    async fn connections(&self, org: OrgId) -> Result<Vec<CarrierConnection>>;
    /// One connection, whichever organization it belongs to (webhooks name
    /// the connection in their URL, before anyone is signed in).
    async fn connection(&self, id: ConnectionId) -> Result<Option<CarrierConnection>>;

    /// Adds a business number. A number belongs to one organization only:
    /// adding it anywhere a second time is a conflict. Its connection must
    /// be one of the same organization.
    async fn add_number(&self, new: NewNumber) -> Result<BusinessNumber>;
    async fn numbers(&self, org: OrgId) -> Result<Vec<BusinessNumber>>;
    async fn update_number(
        &self,
        org: OrgId,
        id: NumberId,
        update: NumberUpdate,
    ) -> Result<BusinessNumber>;
    /// The number a text from outside was sent to, whichever organization
    /// holds it.
    async fn number_by_e164(&self, number: &E164) -> Result<Option<BusinessNumber>>;

    /// Lets an extension text from a number of its organization. Its first
    /// SMS-enabled number becomes its default. It joins the number's SMS
    /// conversations (their history included).
    async fn assign_number(
        &self,
        org: OrgId,
        number: NumberId,
        to: ExtensionId,
    ) -> Result<Committed<()>>;
    /// Takes a number away from an extension (its default passes to another
    /// of its numbers, if any). The number's SMS conversations leave its
    /// list; their history stays with the others.
    async fn unassign_number(
        &self,
        org: OrgId,
        number: NumberId,
        from: ExtensionId,
    ) -> Result<Committed<()>>;
    /// Who may text from which number, for every number of the
    /// organization, by number then extension.
    async fn assignments(&self, org: OrgId) -> Result<Vec<Assignment>>;
    /// The numbers an extension may text from, by number.
    async fn numbers_of(&self, extension: ExtensionId) -> Result<Vec<OwnNumber>>;
    /// Chooses the number new texts go out from; it must be one of the
    /// extension's SMS-enabled numbers.
    async fn set_default_number(&self, extension: ExtensionId, number: NumberId) -> Result<()>;
}

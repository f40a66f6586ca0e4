//! Identifiers. Each kind of row has its own type so that an extension id can
//! never be passed where a conversation id is expected.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// An organization (tenant). Nothing ever crosses organizations.
    OrgId
);
id_type!(
    /// An extension: a person who signs in.
    ExtensionId
);
id_type!(
    /// A direct chat, group, SMS or queue conversation.
    ConversationId
);
id_type!(
    /// A message. Ids grow with time within the whole server, so ordering
    /// messages by id orders them by when they were stored.
    MessageId
);
id_type!(
    /// A business number of an organization.
    NumberId
);
id_type!(
    /// A carrier connection: one carrier account's credentials.
    ConnectionId
);

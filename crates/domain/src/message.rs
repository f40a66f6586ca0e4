//! Messages and history pages.

use crate::delivery::DeliveryStatus;
use crate::phone::E164;
use crate::{ConversationId, ExtensionRef, InvalidValue, MessageId, SystemAction, Timestamp};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageKind {
    /// Written by a person.
    Text,
    /// A lifecycle line (renamed, joined, left…), shown as a gray pill.
    System,
}

impl MessageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::System => "system",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Text, Self::System]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// A stored message as every participant sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub id: MessageId,
    pub conversation_id: ConversationId,
    pub kind: MessageKind,
    /// The colleague who wrote it; `None` for system messages and for
    /// messages from outside.
    pub sender: Option<ExtensionRef>,
    /// The outside number that wrote it, when a customer did.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub external_sender: Option<ExternalRef>,
    pub text: String,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub attachments: Vec<Attachment>,
    /// One per outside number the message was texted to.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub deliveries: Vec<Delivery>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub system: Option<SystemAction>,
    pub created_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub idempotency_key: Option<String>,
}

/// An outside number as people see it: the number and how it is shown (a
/// name once contacts exist, else the number formatted for the
/// organization's country).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExternalRef {
    pub number: E164,
    pub display: String,
}

/// Whether an attached image can be shown yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttachmentState {
    /// Still being fetched from the carrier.
    Pending,
    Ready,
    /// The carrier's copy could not be fetched.
    Failed,
}

/// An image sent with a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// The content's SHA-256 (hex) once stored; for a pending inbound image,
    /// a placeholder that names its position.
    pub id: String,
    pub content_type: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub width: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub height: Option<u32>,
    pub state: AttachmentState,
    /// Where clients fetch it; `None` until it is ready.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub url: Option<String>,
}

/// How far a text to one outside number has gone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub to: E164,
    pub status: DeliveryStatus,
    /// Why it failed, in the carrier's words.
    pub reason: Option<String>,
}

/// Which way a history page reads from its anchor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageDirection {
    /// The newest messages, or those just before `anchor`.
    Before(Option<MessageId>),
    /// The messages just after `anchor`.
    After(MessageId),
}

/// A validated request for a page of history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryPage {
    pub direction: PageDirection,
    pub limit: u32,
}

pub const DEFAULT_PAGE_LIMIT: u32 = 50;
pub const MAX_PAGE_LIMIT: u32 = 200;

impl HistoryPage {
    pub fn parse(
        before: Option<i64>,
        after: Option<i64>,
        limit: Option<u32>,
    ) -> Result<Self, InvalidValue> {
        let limit = limit.unwrap_or(DEFAULT_PAGE_LIMIT);
        if limit == 0 || limit > MAX_PAGE_LIMIT {
            return Err(InvalidValue::new(
                "limit",
                format!("must be between 1 and {MAX_PAGE_LIMIT}"),
            ));
        }
        let direction = match (before, after) {
            (Some(_), Some(_)) => {
                return Err(InvalidValue::new(
                    "before",
                    "give either before or after, not both",
                ));
            }
            (Some(b), None) => PageDirection::Before(Some(MessageId(b))),
            (None, Some(a)) => PageDirection::After(MessageId(a)),
            (None, None) => PageDirection::Before(None),
        };
        Ok(Self { direction, limit })
    }

    /// Puts a page read from the store into the order clients get (ascending
    /// ids) and says whether more lie beyond it. The store reads `limit + 1`
    /// rows in the direction of travel so that the extra row answers that.
    pub fn finish(&self, mut rows: Vec<Message>) -> (Vec<Message>, bool) {
        let has_more = rows.len() > self.limit as usize;
        rows.truncate(self.limit as usize);
        if matches!(self.direction, PageDirection::Before(_)) {
            rows.reverse();
        }
        (rows, has_more)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(id: i64) -> Message {
        Message {
            id: MessageId(id),
            conversation_id: ConversationId(1),
            kind: MessageKind::Text,
            sender: None,
            external_sender: None,
            text: String::new(),
            attachments: Vec::new(),
            deliveries: Vec::new(),
            system: None,
            created_at: Timestamp(0),
            idempotency_key: None,
        }
    }

    #[test]
    fn page_parameters() {
        assert!(HistoryPage::parse(Some(1), Some(2), None).is_err());
        assert!(HistoryPage::parse(None, None, Some(0)).is_err());
        assert!(HistoryPage::parse(None, None, Some(201)).is_err());
        assert_eq!(
            HistoryPage::parse(None, None, None).unwrap(),
            HistoryPage {
                direction: PageDirection::Before(None),
                limit: 50
            }
        );
    }

    #[test]
    fn before_pages_come_back_ascending_with_has_more() {
        let page = HistoryPage::parse(Some(10), None, Some(2)).unwrap();
        let (rows, more) = page.finish(vec![msg(9), msg(8), msg(7)]);
        assert_eq!(rows.iter().map(|m| m.id.0).collect::<Vec<_>>(), vec![8, 9]);
        assert!(more);
        let page = HistoryPage::parse(None, Some(7), Some(5)).unwrap();
        let (rows, more) = page.finish(vec![msg(8), msg(9)]);
        assert_eq!(rows.iter().map(|m| m.id.0).collect::<Vec<_>>(), vec![8, 9]);
        assert!(!more);
    }
}

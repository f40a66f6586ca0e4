//! The parts of the OpenAPI document that are not one handler's own: the
//! shapes of the domain and store values the API returns, described here so
//! that those crates stay free of utoipa, and the answers every operation
//! gets from its extractors, added by [`ExtractorAnswers`] so that no route
//! can forget them.
//!
//! The shapes are never built; a test below serializes the real values and
//! checks that they have exactly the properties described.

use serde::Serialize;
use utoipa::ToSchema;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::{Content, OpenApi, Ref, RefOr, Response, ResponseBuilder};

/// What an extension may do beyond chatting.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Member,
    Admin,
}

/// The sound played when a message arrives.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AlertTone {
    Chime,
    Marimba,
    Pop,
    Bell,
}

/// A person who signs in, as administrators and colleagues see them.
#[derive(Serialize, ToSchema)]
pub struct Extension {
    pub id: i64,
    /// The extension number, e.g. "101".
    pub number: String,
    pub name: String,
    pub role: Role,
    /// Disabled extensions cannot sign in and are left out of the directory.
    pub disabled: bool,
}

/// An organization (tenant).
#[derive(Serialize, ToSchema)]
pub struct Organization {
    pub id: i64,
    /// The short name used to sign in, e.g. "demo".
    pub slug: String,
    pub name: String,
    pub alert_tone: AlertTone,
    /// The ISO 3166 code of the country numbers typed without `+` belong
    /// to, and whose numbers are shown in national form, e.g. "US".
    pub default_country: String,
}

/// The kind of carrier a connection talks to.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CarrierKind {
    Twilio,
    Telnyx,
    Simulator,
}

/// A carrier connection as administrators see it: never its secrets, only
/// their last characters.
#[derive(Serialize, ToSchema)]
pub struct CarrierConnection {
    pub id: i64,
    pub kind: CarrierKind,
    pub name: String,
    /// Twilio's account SID.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub account_sid: Option<String>,
    /// Twilio's API key SID, when the API is called with an API key.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub api_key_sid: Option<String>,
    /// Telnyx's public key for its webhooks.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub public_key: Option<String>,
    /// The carrier's API base URL, when not the carrier's own.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub base_url: Option<String>,
    /// The last characters of the auth token or API key, e.g. "…1234".
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub secret_hint: Option<String>,
    /// The last characters of the API key's secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub api_key_secret_hint: Option<String>,
    /// The URLs to paste into the carrier's console (none for the
    /// simulator), under the server's `public_url`.
    pub webhook_urls: Vec<String>,
}

/// A business number as administrators see it.
#[derive(Serialize, ToSchema)]
pub struct BusinessNumber {
    pub id: i64,
    /// E.164, e.g. "+14155550100".
    pub number: String,
    /// As people of the organization's country write it, e.g.
    /// "(415) 555-0100".
    pub display: String,
    pub sms_enabled: bool,
    /// The carrier connection that serves it.
    #[schema(required = true)]
    pub connection_id: Option<i64>,
    /// The extensions that text from it, by id.
    pub extension_ids: Vec<i64>,
}

/// A business number I may text from.
#[derive(Serialize, ToSchema)]
pub struct OwnNumber {
    pub id: i64,
    /// E.164, e.g. "+14155550100".
    pub number: String,
    /// As people of the organization's country write it.
    pub display: String,
    pub sms_enabled: bool,
    /// New texts go out from this number unless I pick another.
    pub default: bool,
}

/// A colleague as other people see them: enough to show a name.
#[derive(Serialize, ToSchema)]
pub struct ExtensionRef {
    pub id: i64,
    pub number: String,
    pub name: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ConversationKind {
    Direct,
    Group,
    Sms,
    Queue,
}

/// A conversation as its participants see it.
#[derive(Serialize, ToSchema)]
pub struct Conversation {
    pub id: i64,
    pub kind: ConversationKind,
    /// The group's name; null for direct chats.
    #[schema(required = true)]
    pub name: Option<String>,
    pub participants: Vec<ExtensionRef>,
    /// The outside numbers taking part by SMS; empty in a chat.
    pub externals: Vec<ExternalParticipant>,
    /// The business number texts go out from; null in a chat.
    #[schema(required = true)]
    pub business_number: Option<BusinessNumberRef>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub last_activity_at: String,
}

/// An outside number in a conversation.
#[derive(Serialize, ToSchema)]
pub struct ExternalParticipant {
    /// E.164, e.g. "+14155552671".
    pub number: String,
    /// The number formatted for the organization's country.
    pub display: String,
    /// It texted STOP: nothing can be texted to it until it texts START.
    pub opted_out: bool,
}

/// The business number of a conversation.
#[derive(Serialize, ToSchema)]
pub struct BusinessNumberRef {
    pub id: i64,
    /// E.164.
    pub number: String,
    pub display: String,
}

/// An outside number that wrote a message.
#[derive(Serialize, ToSchema)]
pub struct ExternalRef {
    /// E.164.
    pub number: String,
    pub display: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AttachmentState {
    /// Still being fetched from the carrier.
    Pending,
    Ready,
    /// It could not be fetched.
    Failed,
}

/// An image sent with a message.
#[derive(Serialize, ToSchema)]
pub struct Attachment {
    pub id: String,
    pub content_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub width: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub height: Option<u32>,
    pub state: AttachmentState,
    /// Where to fetch it, once ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub url: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    Queued,
    Sent,
    Delivered,
    Failed,
}

/// How far the text to one outside number has gone.
#[derive(Serialize, ToSchema)]
pub struct Delivery {
    /// E.164.
    pub to: String,
    pub status: DeliveryStatus,
    /// Why it failed, in the carrier's words.
    #[schema(required = true)]
    pub reason: Option<String>,
}

/// A conversation in my list: the conversation, its last message and how
/// many messages I have not read.
#[derive(Serialize, ToSchema)]
pub struct ConversationSummary {
    #[serde(flatten)]
    pub conversation: Conversation,
    #[schema(required = true)]
    pub last_message: Option<Message>,
    pub unread_count: u32,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MessageKind {
    /// Written by a person.
    Text,
    /// A lifecycle line (renamed, joined, left…).
    System,
}

/// What a system message records, in a form clients can act on.
#[derive(Serialize, ToSchema)]
#[serde(tag = "action", rename_all = "lowercase")]
pub enum SystemAction {
    Created {
        actor_id: i64,
        name: String,
    },
    Renamed {
        actor_id: i64,
        name: String,
    },
    Added {
        actor_id: i64,
        extension_ids: Vec<i64>,
    },
    Removed {
        actor_id: i64,
        extension_ids: Vec<i64>,
    },
    Left {
        actor_id: i64,
    },
    #[serde(rename = "opted_out")]
    OptedOut {
        number: String,
        display: String,
    },
    #[serde(rename = "opted_in")]
    OptedIn {
        number: String,
        display: String,
    },
}

/// A stored message as every participant sees it.
#[derive(Serialize, ToSchema)]
pub struct Message {
    pub id: i64,
    pub conversation_id: i64,
    pub kind: MessageKind,
    /// The colleague who wrote it; null for system messages and messages
    /// from outside.
    #[schema(required = true)]
    pub sender: Option<ExtensionRef>,
    /// The outside number that wrote it, when a customer did.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub external_sender: Option<ExternalRef>,
    pub text: String,
    /// Images sent with it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
    /// One per outside number it was texted to.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub deliveries: Vec<Delivery>,
    /// Only on system messages.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub system: Option<SystemAction>,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// Only on my own messages sent with a key.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub idempotency_key: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    Gsm7,
    Ucs2,
}

/// The first character that rules GSM-7 out, and where it stands.
#[derive(Serialize, ToSchema)]
pub struct Offender {
    pub character: String,
    /// Its position in the text, counted in characters from zero.
    pub index: u32,
}

/// How a text goes out as SMS.
#[derive(Serialize, ToSchema)]
pub struct Segments {
    pub encoding: Encoding,
    /// Septets (GSM-7) or UTF-16 units (UCS-2) the text takes.
    pub units: u32,
    pub segments: u32,
    /// Units a segment holds at this length.
    pub per_segment: u32,
    /// Units left before another segment is needed.
    pub remaining: u32,
    /// Why the text is UCS-2, when it is; null for GSM-7.
    #[schema(required = true)]
    pub offender: Option<Offender>,
}

/// One participant's read position.
#[derive(Serialize, ToSchema)]
pub struct Receipt {
    pub extension_id: i64,
    pub name: String,
    pub last_read_message_id: i64,
}

/// Adds to every operation the answers that come from its extractors and
/// from the server as a whole rather than from the handler: a credential
/// ([`crate::auth::Authed`]) brings 401 and, on changes made with the
/// cookie, a CSRF 403; a JSON body ([`super::extract::Body`]) brings 400,
/// 413, 415 and 422; a path or query parameter brings 400; every operation
/// can meet 500 and 503. Answers an operation already documents are kept,
/// and a documented 403 is told about CSRF too.
pub struct ExtractorAnswers;

const UNAUTHENTICATED: &str = "`unauthenticated`: the session is missing, expired or revoked";
const CSRF: &str =
    "`csrf_failed`: a change made with the session cookie lacks the X-CSRF-Token header";
const BAD_BODY: &str = "the body is not well-formed JSON";
const BAD_PARAMETER: &str = "a path or query parameter has the wrong type or is unknown";
const TOO_LARGE: &str = "`payload_too_large`: the body is larger than the limit";
const NOT_JSON: &str = "`unsupported_media_type`: the body is not sent as application/json";
const INVALID_BODY: &str =
    "`validation_failed`: a field is missing, unknown, of the wrong type or refused";
const INTERNAL: &str = "`internal`: something went wrong on the server's side and was logged";
const UNAVAILABLE: &str = "`unavailable`: the server is shutting down";

fn error_answer(description: &str) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            Content::new(Some(Ref::from_schema_name("ErrorBody"))),
        )
        .build()
        .into()
}

/// Documents `status` unless the operation already does.
fn add(operation: &mut Operation, status: &str, description: &str) {
    operation
        .responses
        .responses
        .entry(status.to_owned())
        .or_insert_with(|| error_answer(description));
}

impl ExtractorAnswers {
    fn complete(method: &str, operation: &mut Operation) {
        let protected = operation.security.as_ref().is_some_and(|s| !s.is_empty());
        if protected {
            add(operation, "401", UNAUTHENTICATED);
        }
        if protected && method != "get" {
            if let Some(RefOr::T(forbidden)) = operation.responses.responses.get_mut("403") {
                forbidden.description = format!("{}; or {CSRF}", forbidden.description);
            } else {
                add(operation, "403", CSRF);
            }
        }

        let json_body = operation
            .request_body
            .as_ref()
            .is_some_and(|body| match body {
                RefOr::T(body) => body.content.contains_key("application/json"),
                RefOr::Ref(_) => false,
            });
        if operation.request_body.is_some() {
            add(operation, "413", TOO_LARGE);
        }
        if json_body {
            add(operation, "415", NOT_JSON);
            add(operation, "422", INVALID_BODY);
        }

        let has_parameters = operation.parameters.iter().flatten().any(|p| match p {
            RefOr::T(p) => matches!(p.parameter_in, ParameterIn::Path | ParameterIn::Query),
            RefOr::Ref(_) => false,
        });
        let bad_request: Vec<&str> = [(json_body, BAD_BODY), (has_parameters, BAD_PARAMETER)]
            .into_iter()
            .filter_map(|(applies, why)| applies.then_some(why))
            .collect();
        if !bad_request.is_empty() {
            add(
                operation,
                "400",
                &format!("`bad_request`: {}", bad_request.join("; or ")),
            );
        }

        add(operation, "500", INTERNAL);
        add(operation, "503", UNAVAILABLE);
    }
}

impl utoipa::Modify for ExtractorAnswers {
    fn modify(&self, openapi: &mut OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            for (method, operation) in [
                ("get", &mut item.get),
                ("put", &mut item.put),
                ("post", &mut item.post),
                ("delete", &mut item.delete),
                ("patch", &mut item.patch),
            ] {
                if let Some(operation) = operation {
                    Self::complete(method, operation);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use switchboard_domain as domain;
    use utoipa::PartialSchema;
    use utoipa::openapi::Schema;

    /// The property names a schema describes, and those it requires; of an
    /// `allOf`, those of its inline parts.
    fn described<T: PartialSchema>() -> (BTreeSet<String>, BTreeSet<String>) {
        let parts = match T::schema() {
            RefOr::T(Schema::Object(o)) => vec![o],
            RefOr::T(Schema::AllOf(all)) => all
                .items
                .into_iter()
                .filter_map(|item| match item {
                    RefOr::T(Schema::Object(o)) => Some(o),
                    _ => None,
                })
                .collect(),
            _ => panic!("an object schema"),
        };
        let mut properties = BTreeSet::new();
        let mut required = BTreeSet::new();
        for o in parts {
            properties.extend(o.properties.keys().cloned());
            required.extend(o.required.iter().cloned());
        }
        (properties, required)
    }

    fn keys(value: impl serde::Serialize) -> BTreeSet<String> {
        match serde_json::to_value(value) {
            Ok(serde_json::Value::Object(o)) => o.keys().cloned().collect(),
            other => panic!("an object: {other:?}"),
        }
    }

    /// Fails when a store or domain type gains, loses or renames a field
    /// without its description here following.
    fn assert_shape<T: PartialSchema>(
        name: &str,
        fullest: BTreeSet<String>,
        emptiest: BTreeSet<String>,
    ) {
        let (properties, required) = described::<T>();
        assert_eq!(
            properties, fullest,
            "{name}: the properties described and served"
        );
        assert_eq!(
            required, emptiest,
            "{name}: the properties always served are required"
        );
    }

    fn e164() -> domain::phone::E164 {
        domain::phone::E164::parse_strict("+14155552671").expect("a number")
    }

    fn attachment() -> domain::Attachment {
        domain::Attachment {
            id: "ab".repeat(32),
            content_type: "image/png".into(),
            width: Some(10),
            height: Some(10),
            state: domain::AttachmentState::Ready,
            url: Some("/api/v1/media/ab".into()),
        }
    }

    fn reference() -> domain::ExtensionRef {
        domain::ExtensionRef {
            id: domain::ExtensionId(1),
            number: "101".into(),
            name: "Alice".into(),
        }
    }

    #[test]
    fn the_described_shapes_match_what_is_served() {
        let extension = switchboard_store::Extension {
            id: domain::ExtensionId(1),
            org_id: domain::OrgId(1),
            number: "101".into(),
            name: "Alice".into(),
            role: domain::Role::Admin,
            disabled: false,
            alert_muted: false,
        };
        assert_shape::<Extension>("Extension", keys(&extension), keys(&extension));

        let org = switchboard_store::Org {
            id: domain::OrgId(1),
            slug: "demo".into(),
            name: "Demo".into(),
            alert_tone: domain::AlertTone::Chime,
            default_country: domain::phone::Country::US,
        };
        assert_shape::<Organization>("Organization", keys(&org), keys(&org));

        let full_settings = crate::service::carriers::Settings {
            account_sid: Some("AC1".into()),
            api_key_sid: Some("SK1".into()),
            public_key: Some("key".into()),
            base_url: Some("http://x".into()),
            secret_hint: Some("…1234".into()),
            api_key_secret_hint: Some("…5678".into()),
        };
        let connection = |settings: crate::service::carriers::Settings| {
            crate::service::carriers::ConnectionView {
                id: domain::ConnectionId(1),
                kind: domain::CarrierKind::Twilio,
                name: "main".into(),
                settings,
                webhook_urls: Vec::new(),
            }
        };
        assert_shape::<CarrierConnection>(
            "CarrierConnection",
            keys(connection(full_settings)),
            keys(connection(Default::default())),
        );

        let number = switchboard_store::BusinessNumber {
            id: domain::NumberId(1),
            org_id: domain::OrgId(1),
            number: domain::phone::E164::parse_strict("+14155552671").expect("valid"),
            sms_enabled: true,
            connection_id: None,
        };
        let view = crate::service::carriers::NumberView {
            number: number.clone(),
            display: "(415) 555-2671".into(),
            extension_ids: Vec::new(),
        };
        assert_shape::<BusinessNumber>("BusinessNumber", keys(&view), keys(&view));
        let own = crate::service::carriers::OwnNumberView {
            id: number.id,
            number: number.number,
            display: "(415) 555-2671".into(),
            sms_enabled: true,
            default: true,
        };
        assert_shape::<OwnNumber>("OwnNumber", keys(&own), keys(&own));
        assert_shape::<ExtensionRef>("ExtensionRef", keys(reference()), keys(reference()));

        let conversation = domain::Conversation {
            id: domain::ConversationId(1),
            kind: domain::ConversationKind::Direct,
            name: None,
            participants: vec![reference()],
            externals: Vec::new(),
            business_number: None,
            created_at: domain::Timestamp(0),
            last_activity_at: domain::Timestamp(0),
        };
        assert_shape::<Conversation>("Conversation", keys(&conversation), keys(&conversation));

        let plain = domain::Message {
            id: domain::MessageId(1),
            conversation_id: domain::ConversationId(1),
            kind: domain::MessageKind::Text,
            sender: Some(reference()),
            external_sender: None,
            text: "hi".into(),
            attachments: Vec::new(),
            deliveries: Vec::new(),
            system: None,
            created_at: domain::Timestamp(0),
            idempotency_key: None,
        };
        let fullest = domain::Message {
            system: Some(domain::SystemAction::Left {
                actor_id: domain::ExtensionId(1),
            }),
            idempotency_key: Some("k".into()),
            external_sender: Some(domain::ExternalRef {
                number: e164(),
                display: "(415) 555-2671".into(),
            }),
            attachments: vec![attachment()],
            deliveries: vec![domain::Delivery {
                to: e164(),
                status: domain::DeliveryStatus::Failed,
                reason: Some("unreachable".into()),
            }],
            ..plain.clone()
        };
        assert_shape::<Attachment>(
            "Attachment",
            keys(attachment()),
            keys(domain::Attachment {
                width: None,
                height: None,
                url: None,
                ..attachment()
            }),
        );
        let delivery = domain::Delivery {
            to: e164(),
            status: domain::DeliveryStatus::Sent,
            reason: None,
        };
        assert_shape::<Delivery>("Delivery", keys(&delivery), keys(&delivery));
        let external = domain::ExternalParticipant {
            number: e164(),
            display: "x".into(),
            opted_out: false,
        };
        assert_shape::<ExternalParticipant>(
            "ExternalParticipant",
            keys(&external),
            keys(&external),
        );
        let business = domain::BusinessNumberRef {
            id: domain::NumberId(1),
            number: e164(),
            display: "x".into(),
        };
        assert_shape::<BusinessNumberRef>("BusinessNumberRef", keys(&business), keys(&business));
        assert_shape::<Message>("Message", keys(&fullest), keys(&plain));

        // The summary is the conversation with two more properties.
        let summary = switchboard_store::ConversationSummary {
            conversation: conversation.clone(),
            last_message: None,
            unread_count: 0,
        };
        let own = |all: BTreeSet<String>| -> BTreeSet<String> {
            all.difference(&keys(&conversation)).cloned().collect()
        };
        assert_shape::<ConversationSummary>(
            "ConversationSummary",
            own(keys(&summary)),
            own(keys(&summary)),
        );

        let receipt = switchboard_store::Receipt {
            extension_id: domain::ExtensionId(1),
            name: "Alice".into(),
            last_read_message_id: domain::MessageId(1),
        };
        assert_shape::<Receipt>("Receipt", keys(&receipt), keys(&receipt));

        let segments = domain::sms::segments("😀");
        assert_shape::<Segments>("Segments", keys(segments), keys(segments));
        let offender = segments.offender.expect("UCS-2");
        assert_shape::<Offender>("Offender", keys(offender), keys(offender));
    }
}

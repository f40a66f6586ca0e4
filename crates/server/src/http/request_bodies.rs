//! Every JSON request body of the API (and the history query string), read
//! with the extractor its handler uses and then parsed into the domain
//! values its use case parses it into, by the same functions, without the
//! store or the password threads. The `request_bodies` fuzz target feeds it
//! any bytes: whatever it is given, it answers values or an error the client
//! could get, and never panics.

use super::admin::{CreateExtension, ResetPassword, UpdateExtension, UpdateOrganization};
use super::conversations::{
    AddParticipants, CreateGroup, HistoryQuery, MarkRead, OpenDirect, Rename, SendMessage,
};
use super::error::{ApiError, ApiResult};
use super::extract::{Body, QueryParams};
use super::me::{PasswordChange, SettingsUpdate};
use super::numbers::{CreateConnection, CreateNumber, DefaultNumber, UpdateNumber};
use super::session::SignIn;
use crate::service::ServiceError;
use crate::service::carriers::{self, ConnectionDraft, ValidConnection};
use crate::service::directory::ExtensionDraft;
use axum::http::Uri;
use serde::de::DeserializeOwned;
use switchboard_domain::phone::{Country, E164};
use switchboard_domain::{
    AlertTone, ConnectionId, ConversationName, DisplayName, ExtensionId, ExtensionNumber,
    HistoryPage, IdempotencyKey, InvalidValue, MessageId, MessageText, NumberId, OrgSlug, Password,
    Role,
};

/// An operation of the API that reads a body (or, for `History`, a query
/// string), named as its handler is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    SignIn,
    ChangePassword,
    UpdateSettings,
    CreateExtension,
    UpdateExtension,
    ResetPassword,
    UpdateOrganization,
    OpenDirect,
    CreateGroup,
    Rename,
    AddParticipants,
    History,
    Send,
    MarkRead,
    CreateConnection,
    CreateNumber,
    UpdateNumber,
    SetDefaultNumber,
}

impl Route {
    pub const ALL: [Route; 18] = [
        Route::SignIn,
        Route::ChangePassword,
        Route::UpdateSettings,
        Route::CreateExtension,
        Route::UpdateExtension,
        Route::ResetPassword,
        Route::UpdateOrganization,
        Route::OpenDirect,
        Route::CreateGroup,
        Route::Rename,
        Route::AddParticipants,
        Route::History,
        Route::Send,
        Route::MarkRead,
        Route::CreateConnection,
        Route::CreateNumber,
        Route::UpdateNumber,
        Route::SetDefaultNumber,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Route::SignIn => "sign_in",
            Route::ChangePassword => "change_password",
            Route::UpdateSettings => "update_settings",
            Route::CreateExtension => "create_extension",
            Route::UpdateExtension => "update_extension",
            Route::ResetPassword => "reset_password",
            Route::UpdateOrganization => "update_organization",
            Route::OpenDirect => "open_direct",
            Route::CreateGroup => "create_group",
            Route::Rename => "rename",
            Route::AddParticipants => "add_participants",
            Route::History => "history",
            Route::Send => "send",
            Route::MarkRead => "mark_read",
            Route::CreateConnection => "create_connection",
            Route::CreateNumber => "create_number",
            Route::UpdateNumber => "update_number",
            Route::SetDefaultNumber => "set_default_number",
        }
    }

    pub fn by_name(name: &str) -> Option<Route> {
        Route::ALL.into_iter().find(|r| r.name() == name)
    }
}

/// What a body means once parsed: the values its use case goes on with.
#[derive(Debug)]
pub enum Parsed {
    SignIn {
        organization: OrgSlug,
        extension: ExtensionNumber,
        password: Password,
    },
    ChangePassword {
        current: Password,
        new: Password,
    },
    UpdateSettings {
        alert_muted: Option<bool>,
    },
    CreateExtension {
        number: ExtensionNumber,
        name: DisplayName,
        role: Role,
        password: Password,
    },
    UpdateExtension {
        name: Option<DisplayName>,
        role: Option<Role>,
        disabled: Option<bool>,
    },
    ResetPassword(Password),
    UpdateOrganization {
        alert_tone: Option<AlertTone>,
        default_country: Option<Country>,
    },
    OpenDirect(ExtensionId),
    CreateGroup {
        name: ConversationName,
        members: Vec<ExtensionId>,
    },
    Rename(ConversationName),
    AddParticipants(Vec<ExtensionId>),
    History(HistoryPage),
    Send {
        text: MessageText,
        idempotency_key: Option<IdempotencyKey>,
    },
    MarkRead(MessageId),
    CreateConnection(ValidConnection),
    /// The number as read with [`FUZZ_HOME`] for the organization's
    /// country.
    CreateNumber {
        number: E164,
        sms_enabled: bool,
        connection: Option<ConnectionId>,
    },
    UpdateNumber {
        sms_enabled: Option<bool>,
        connection: Option<Option<ConnectionId>>,
    },
    SetDefaultNumber(NumberId),
}

/// The organization's country numbers are read with here; the handler
/// takes the signed-in organization's.
pub const FUZZ_HOME: Country = Country::US;

fn body<T: DeserializeOwned>(input: &[u8]) -> ApiResult<T> {
    Body::<T>::from_bytes(input).map(|Body(b)| b)
}

/// Reads `input` as `route`'s handler would (JSON; for `History` the query
/// string after `?`) and parses it into domain values as its use case does.
/// The error is the one the client gets for a body like this one.
pub fn parse(route: Route, input: &[u8]) -> ApiResult<Parsed> {
    Ok(match route {
        Route::SignIn => {
            // A malformed credential fails like a wrong one (sessions::sign_in).
            let b: SignIn = body(input)?;
            let invalid = |_| ApiError::from(ServiceError::InvalidCredentials);
            Parsed::SignIn {
                organization: OrgSlug::parse(&b.organization).map_err(invalid)?,
                extension: ExtensionNumber::parse(&b.extension).map_err(invalid)?,
                password: Password::parse_attempt(&b.password).map_err(invalid)?,
            }
        }
        Route::ChangePassword => {
            // As sessions::change_password: the new password is judged
            // first, and an impossible current one is simply wrong.
            let b: PasswordChange = body(input)?;
            let new = Password::parse_new(&b.new_password)?;
            let current = Password::parse_attempt(&b.current_password).map_err(|_| {
                ApiError::from(ServiceError::Forbidden("the current password is not right"))
            })?;
            Parsed::ChangePassword { current, new }
        }
        Route::UpdateSettings => {
            let b: SettingsUpdate = body(input)?;
            Parsed::UpdateSettings {
                alert_muted: b.alert_muted,
            }
        }
        Route::CreateExtension => {
            let b: CreateExtension = body(input)?;
            let d = ExtensionDraft::parse(&b.number, &b.name, &b.password, b.role.as_deref())?;
            Parsed::CreateExtension {
                number: d.number,
                name: d.name,
                role: d.role,
                password: d.password,
            }
        }
        Route::UpdateExtension => {
            // As directory::update_extension.
            let b: UpdateExtension = body(input)?;
            Parsed::UpdateExtension {
                name: b.name.as_deref().map(DisplayName::parse).transpose()?,
                role: b.role.as_deref().map(Role::parse).transpose()?,
                disabled: b.disabled,
            }
        }
        Route::ResetPassword => {
            let b: ResetPassword = body(input)?;
            Parsed::ResetPassword(Password::parse_new(&b.password)?)
        }
        Route::UpdateOrganization => {
            // As admin::update_organization.
            let b: UpdateOrganization = body(input)?;
            let alert_tone = b.alert_tone.as_deref().map(AlertTone::parse).transpose()?;
            let default_country = b
                .default_country
                .as_deref()
                .map(|c| {
                    Country::parse(c).map_err(|e| InvalidValue::new("default_country", e.reason))
                })
                .transpose()?;
            if alert_tone.is_none() && default_country.is_none() {
                return Err(ApiError::validation(
                    "give alert_tone, default_country or both",
                ));
            }
            Parsed::UpdateOrganization {
                alert_tone,
                default_country,
            }
        }
        Route::OpenDirect => Parsed::OpenDirect(body::<OpenDirect>(input)?.extension_id),
        Route::CreateGroup => {
            let b: CreateGroup = body(input)?;
            Parsed::CreateGroup {
                name: ConversationName::parse(&b.name)?,
                members: b.member_ids,
            }
        }
        Route::Rename => Parsed::Rename(ConversationName::parse(&body::<Rename>(input)?.name)?),
        Route::AddParticipants => {
            Parsed::AddParticipants(body::<AddParticipants>(input)?.extension_ids)
        }
        Route::History => {
            // A request line hyper cannot read never reaches the handler;
            // it is answered 400 like a bad query string.
            let mut target = b"/api/v1/conversations/1/messages?".to_vec();
            target.extend_from_slice(input);
            let uri = Uri::try_from(target)
                .map_err(|_| ApiError::bad_request("the request target is not a valid URI"))?;
            let QueryParams(q) = QueryParams::<HistoryQuery>::from_uri(&uri)?;
            Parsed::History(HistoryPage::parse(q.before, q.after, q.limit)?)
        }
        Route::Send => {
            // As messaging::post_message.
            let b: SendMessage = body(input)?;
            Parsed::Send {
                text: MessageText::parse(&b.text)?,
                idempotency_key: b
                    .idempotency_key
                    .as_deref()
                    .map(IdempotencyKey::parse)
                    .transpose()?,
            }
        }
        Route::MarkRead => Parsed::MarkRead(body::<MarkRead>(input)?.message_id),
        Route::CreateConnection => {
            // As carriers::add_connection, before sealing.
            let b: CreateConnection = body(input)?;
            let draft = ConnectionDraft {
                kind: &b.kind,
                name: &b.name,
                account_sid: b.account_sid.as_deref(),
                api_key_sid: b.api_key_sid.as_deref(),
                secret: b.secret.as_deref(),
                api_key_secret: b.api_key_secret.as_deref(),
                public_key: b.public_key.as_deref(),
                base_url: b.base_url.as_deref(),
            };
            Parsed::CreateConnection(draft.validate()?)
        }
        Route::CreateNumber => {
            // As carriers::add_number.
            let b: CreateNumber = body(input)?;
            Parsed::CreateNumber {
                number: carriers::parse_number(&b.number, FUZZ_HOME)?,
                sms_enabled: b.sms_enabled.unwrap_or(true),
                connection: b.connection_id,
            }
        }
        Route::UpdateNumber => {
            let b: UpdateNumber = body(input)?;
            Parsed::UpdateNumber {
                sms_enabled: b.sms_enabled,
                connection: b.connection_id,
            }
        }
        Route::SetDefaultNumber => {
            Parsed::SetDefaultNumber(body::<DefaultNumber>(input)?.number_id)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    #[test]
    fn every_route_has_its_own_name() {
        for route in Route::ALL {
            assert_eq!(Route::by_name(route.name()), Some(route));
        }
    }

    #[test]
    fn bodies_parse_into_domain_values_or_client_errors() {
        let sent = parse(Route::Send, br#"{"text":" hi ","idempotency_key":"k-1"}"#).unwrap();
        let Parsed::Send {
            text,
            idempotency_key,
        } = sent
        else {
            panic!("a send body parses as a send");
        };
        assert_eq!(text.as_str(), " hi ");
        assert_eq!(
            idempotency_key.map(IdempotencyKey::into_string),
            Some("k-1".into())
        );

        let page = parse(Route::History, b"before=9&limit=5").unwrap();
        assert!(matches!(page, Parsed::History(p) if p.limit == 5));

        let refused: [(Route, &[u8], StatusCode); 7] = [
            (Route::Send, b"{", StatusCode::BAD_REQUEST),
            (
                Route::Send,
                br#"{"text":1}"#,
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (
                Route::Send,
                br#"{"text":"  "}"#,
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (
                Route::SignIn,
                br#"{"organization":"-","extension":"1","password":"x"}"#,
                StatusCode::UNAUTHORIZED,
            ),
            (Route::History, b"limit=0", StatusCode::UNPROCESSABLE_ENTITY),
            (Route::History, b"limit=x", StatusCode::BAD_REQUEST),
            (Route::History, b"a b", StatusCode::BAD_REQUEST),
        ];
        for (route, input, status) in refused {
            let e = parse(route, input).expect_err("refused");
            assert_eq!(
                e.status,
                status,
                "{route:?} {}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn number_carrier_and_organization_bodies_parse_as_their_handlers_read_them() {
        let Ok(Parsed::CreateNumber {
            number,
            sms_enabled,
            connection,
        }) = parse(Route::CreateNumber, br#"{"number":"(415) 555-0100"}"#)
        else {
            panic!("a local number parses");
        };
        assert_eq!(number.as_str(), "+14155550100");
        assert!(sms_enabled, "texting is on unless asked");
        assert_eq!(connection, None);

        let absent = parse(Route::UpdateNumber, br#"{"sms_enabled":false}"#);
        assert!(matches!(
            absent,
            Ok(Parsed::UpdateNumber {
                sms_enabled: Some(false),
                connection: None
            })
        ));
        let null = parse(Route::UpdateNumber, br#"{"connection_id":null}"#);
        assert!(matches!(
            null,
            Ok(Parsed::UpdateNumber {
                connection: Some(None),
                ..
            })
        ));
        let set = parse(Route::UpdateNumber, br#"{"connection_id":7}"#);
        assert!(matches!(
            set,
            Ok(Parsed::UpdateNumber {
                connection: Some(Some(ConnectionId(7))),
                ..
            })
        ));

        let Ok(Parsed::CreateConnection(valid)) = parse(
            Route::CreateConnection,
            br#"{"kind":"Twilio","name":" Main ","account_sid":"AC1","secret":"token-1234",
                 "api_key_sid":"SK1","api_key_secret":"secret-5678"}"#,
        ) else {
            panic!("a Twilio connection parses");
        };
        assert_eq!(valid.name, "Main");
        assert_eq!(valid.settings.secret_hint.as_deref(), Some("…1234"));
        assert_eq!(valid.settings.api_key_secret_hint.as_deref(), Some("…5678"));
        assert!(
            !format!("{valid:?}").contains("token-1234"),
            "secrets are redacted"
        );

        let refused: [(Route, &[u8], &str); 5] = [
            (Route::CreateNumber, br#"{"number":"12"}"#, "number:"),
            (
                Route::CreateConnection,
                br#"{"kind":"telnyx","name":"T","secret":"KEY1"}"#,
                "public_key:",
            ),
            (Route::UpdateOrganization, b"{}", "give alert_tone"),
            (
                Route::UpdateOrganization,
                br#"{"default_country":"XX"}"#,
                "default_country:",
            ),
            (Route::SetDefaultNumber, br#"{"number_id":"x"}"#, ""),
        ];
        for (route, input, starts) in refused {
            let e = parse(route, input).expect_err("refused");
            assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY, "{route:?}");
            assert!(e.message.starts_with(starts), "{route:?}: {}", e.message);
        }
    }
}

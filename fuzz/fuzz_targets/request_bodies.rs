//! The REST API's request bodies. The input is a route name (see
//! `switchboard::http::request_bodies::Route::name`), a newline, then the body (for
//! `history`, the query string). The body is read with the handler's own
//! extractor and parsed into the domain values its use case parses.
//!
//! Checked: nothing panics; a refusal is a 4xx with a code and a message;
//! parsed values are in their documented form (message text and keys kept
//! as typed, names trimmed and bounded, roles, tones and countries one of
//! theirs, phone numbers in E.164 form, carrier secrets only with their
//! hints) and
//! parse again to themselves; and the canonical body written from the values
//! parses back to the same values.

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use switchboard::http::request_bodies::{self as bodies, Parsed, Route};
use switchboard_domain::message::MAX_PAGE_LIMIT;
use switchboard_domain::phone::{Country, E164};
use switchboard_domain::values::{MAX_MESSAGE_CHARS, MAX_NAME_CHARS};
use switchboard_domain::{
    AlertTone, ConversationName, DisplayName, ExtensionNumber, HistoryPage, IdempotencyKey,
    MessageText, OrgSlug, PageDirection, Password, Role,
};

fuzz_target!(|data: &[u8]| {
    let Some(newline) = data.iter().position(|&b| b == b'\n') else {
        return;
    };
    let Some(route) = std::str::from_utf8(&data[..newline])
        .ok()
        .and_then(Route::by_name)
    else {
        return;
    };
    let input = &data[newline + 1..];
    let parsed = match bodies::parse(route, input) {
        Ok(parsed) => parsed,
        Err(e) => {
            assert!(
                e.status.is_client_error(),
                "{route:?} answered {} {}: {}",
                e.status,
                e.code,
                e.message
            );
            assert!(!e.code.is_empty() && !e.message.is_empty());
            return;
        }
    };
    check_values(&parsed, input);
    let written = canonical(&parsed);
    let again = bodies::parse(route, written.as_bytes())
        .unwrap_or_else(|e| panic!("{route:?}: {written} does not parse back: {}", e.message));
    assert_eq!(canonical(&again), written, "{route:?}");
});

/// The JSON field `name` of the body as sent, when it is a string.
fn raw<'a>(body: &'a Option<Value>, name: &str) -> Option<&'a str> {
    body.as_ref()?.get(name)?.as_str()
}

fn check_values(parsed: &Parsed, input: &[u8]) {
    let body: Option<Value> = serde_json::from_slice(input).ok();
    match parsed {
        Parsed::SignIn {
            organization,
            extension,
            password,
        } => {
            slug(organization);
            number(extension);
            assert_eq!(Some(password.expose()), raw(&body, "password"));
            attempt(password);
        }
        Parsed::ChangePassword { current, new } => {
            attempt(current);
            new_password(new);
        }
        Parsed::UpdateSettings { .. } | Parsed::OpenDirect(_) | Parsed::MarkRead(_) => {}
        Parsed::AddParticipants(_) => {}
        Parsed::CreateExtension {
            number: n,
            name,
            role: r,
            password,
        } => {
            number(n);
            display_name(name, raw(&body, "name"));
            role(*r);
            new_password(password);
        }
        Parsed::UpdateExtension { name, role: r, .. } => {
            if let Some(name) = name {
                display_name(name, raw(&body, "name"));
            }
            if let Some(r) = r {
                role(*r);
            }
        }
        Parsed::ResetPassword(p) => new_password(p),
        Parsed::UpdateOrganization {
            alert_tone,
            default_country,
        } => {
            assert!(alert_tone.is_some() || default_country.is_some());
            if let Some(tone) = alert_tone {
                assert_eq!(AlertTone::parse(tone.as_str()), Ok(*tone));
                let json = serde_json::to_string(tone).expect("a tone is JSON");
                assert_eq!(serde_json::from_str::<AlertTone>(&json).ok(), Some(*tone));
            }
            if let Some(country) = default_country {
                assert_eq!(Country::parse(country.code()), Ok(*country));
                assert!(Country::all().contains(country));
            }
        }
        Parsed::CreateConnection(valid) => {
            assert_eq!(Some(valid.name.as_str()), raw(&body, "name").map(str::trim));
            assert!(!valid.name.is_empty() && valid.name.chars().count() <= 60);
            let hint = |secret: &str| {
                let tail: String = secret.chars().rev().take(4).collect();
                format!("…{}", tail.chars().rev().collect::<String>())
            };
            match &valid.credentials {
                Some(c) => {
                    assert!(!c.secret.is_empty());
                    assert_eq!(valid.settings.secret_hint, Some(hint(&c.secret)));
                    assert_eq!(
                        valid.settings.api_key_secret_hint,
                        c.api_key_secret.as_deref().map(hint)
                    );
                    assert_eq!(
                        c.api_key_secret.is_some(),
                        valid.settings.api_key_sid.is_some()
                    );
                }
                None => assert_eq!(valid.kind.as_str(), "simulator"),
            }
        }
        Parsed::CreateNumber { number, .. } | Parsed::OpenSms { to: number, .. } => {
            assert!(E164::parse_strict(number.as_str()).is_ok(), "{number}");
        }
        Parsed::UpdateNumber { .. } | Parsed::SetDefaultNumber(_) => {}
        Parsed::CreateGroup { name, .. } | Parsed::Rename(name) => {
            conversation_name(name, raw(&body, "name"));
        }
        Parsed::History(page) => {
            assert!((1..=MAX_PAGE_LIMIT).contains(&page.limit), "{page:?}");
        }
        Parsed::Send {
            text,
            idempotency_key,
            attachments,
        } => {
            // Kept as typed; a caption that shows nothing is no text.
            let typed = raw(&body, "text").unwrap_or("");
            assert!(
                text.as_str() == typed || (!attachments.is_empty() && text.as_str().is_empty()),
                "text is kept as typed"
            );
            assert!(attachments.len() <= 10);
            assert!(text.as_str().chars().count() <= MAX_MESSAGE_CHARS);
            if attachments.is_empty() {
                assert!(!text.as_str().trim().is_empty());
                assert_eq!(MessageText::parse(text.as_str()).as_ref(), Ok(text));
            } else {
                assert_eq!(MessageText::caption(text.as_str()).as_ref(), Ok(text));
            }
            if let Some(key) = idempotency_key {
                assert_eq!(Some(key.as_str()), raw(&body, "idempotency_key"));
                assert_eq!(IdempotencyKey::parse(key.as_str()).as_ref(), Ok(key));
            }
        }
    }
}

fn slug(s: &OrgSlug) {
    assert_eq!(OrgSlug::parse(s.as_str()).as_ref(), Ok(s));
}

fn number(n: &ExtensionNumber) {
    assert_eq!(ExtensionNumber::parse(n.as_str()).as_ref(), Ok(n));
    assert!(n.as_str().bytes().all(|b| b.is_ascii_digit()));
}

fn name_rules(name: &str, raw: Option<&str>) {
    assert_eq!(Some(name), raw.map(str::trim), "a name is kept trimmed");
    assert!(!name.is_empty() && name.chars().count() <= MAX_NAME_CHARS);
    assert!(!name.chars().any(char::is_control));
}

fn display_name(name: &DisplayName, raw: Option<&str>) {
    name_rules(name.as_str(), raw);
    assert_eq!(DisplayName::parse(name.as_str()).as_ref(), Ok(name));
}

fn conversation_name(name: &ConversationName, raw: Option<&str>) {
    name_rules(name.as_str(), raw);
    assert_eq!(ConversationName::parse(name.as_str()).as_ref(), Ok(name));
}

fn role(r: Role) {
    assert_eq!(Role::parse(r.as_str()), Ok(r));
    let json = serde_json::to_string(&r).expect("a role is JSON");
    assert_eq!(serde_json::from_str::<Role>(&json).ok(), Some(r));
}

fn attempt(p: &Password) {
    assert!(Password::parse_attempt(p.expose()).is_ok());
}

fn new_password(p: &Password) {
    assert!(Password::parse_new(p.expose()).is_ok());
    attempt(p);
}

/// The body a well-behaved client would send for these values.
fn canonical(parsed: &Parsed) -> String {
    let body = match parsed {
        Parsed::SignIn {
            organization,
            extension,
            password,
        } => json!({
            "organization": organization.as_str(),
            "extension": extension.as_str(),
            "password": password.expose(),
        }),
        Parsed::ChangePassword { current, new } => json!({
            "current_password": current.expose(),
            "new_password": new.expose(),
        }),
        Parsed::UpdateSettings { alert_muted } => json!({ "alert_muted": alert_muted }),
        Parsed::CreateExtension {
            number,
            name,
            role,
            password,
        } => json!({
            "number": number.as_str(),
            "name": name.as_str(),
            "password": password.expose(),
            "role": role.as_str(),
        }),
        Parsed::UpdateExtension {
            name,
            role,
            disabled,
        } => json!({
            "name": name.as_ref().map(DisplayName::as_str),
            "role": role.map(Role::as_str),
            "disabled": disabled,
        }),
        Parsed::ResetPassword(p) => json!({ "password": p.expose() }),
        Parsed::UpdateOrganization {
            alert_tone,
            default_country,
        } => json!({
            "alert_tone": alert_tone.map(AlertTone::as_str),
            "default_country": default_country.as_ref().map(Country::code),
        }),
        Parsed::OpenDirect(id) => json!({ "extension_id": id.0 }),
        Parsed::CreateGroup { name, members } => json!({
            "name": name.as_str(),
            "member_ids": members.iter().map(|m| m.0).collect::<Vec<_>>(),
        }),
        Parsed::Rename(name) => json!({ "name": name.as_str() }),
        Parsed::AddParticipants(ids) => {
            json!({ "extension_ids": ids.iter().map(|m| m.0).collect::<Vec<_>>() })
        }
        Parsed::History(page) => return history_query(page),
        Parsed::Send {
            text,
            idempotency_key,
            attachments,
        } => json!({
            "text": text.as_str(),
            "idempotency_key": idempotency_key.as_ref().map(IdempotencyKey::as_str),
            "attachments": attachments,
        }),
        Parsed::OpenSms { to, from } => json!({
            "to": to.as_str(),
            "from_number_id": from.map(|n| n.0),
        }),
        Parsed::MarkRead(id) => json!({ "message_id": id.0 }),
        Parsed::CreateConnection(valid) => {
            let secrets = valid.credentials.as_ref();
            json!({
                "kind": valid.kind.as_str(),
                "name": valid.name,
                "account_sid": valid.settings.account_sid,
                "api_key_sid": valid.settings.api_key_sid,
                "secret": secrets.map(|c| c.secret.as_str()),
                "api_key_secret": secrets.and_then(|c| c.api_key_secret.as_deref()),
                "public_key": valid.settings.public_key,
                "base_url": valid.settings.base_url,
            })
        }
        Parsed::CreateNumber {
            number,
            sms_enabled,
            connection,
        } => json!({
            "number": number.as_str(),
            "sms_enabled": sms_enabled,
            "connection_id": connection.map(|c| c.0),
        }),
        Parsed::UpdateNumber {
            sms_enabled,
            connection,
        } => {
            // An absent connection keeps it; null takes it off.
            let mut body = json!({ "sms_enabled": sms_enabled });
            if let Some(connection) = connection {
                body["connection_id"] = json!(connection.map(|c| c.0));
            }
            body
        }
        Parsed::SetDefaultNumber(id) => json!({ "number_id": id.0 }),
    };
    body.to_string()
}

fn history_query(page: &HistoryPage) -> String {
    let anchor = match page.direction {
        PageDirection::Before(None) => String::new(),
        PageDirection::Before(Some(id)) => format!("before={id}&"),
        PageDirection::After(id) => format!("after={id}&"),
    };
    format!("{anchor}limit={}", page.limit)
}

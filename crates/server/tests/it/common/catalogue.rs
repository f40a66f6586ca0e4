//! The endpoint catalogue: one concrete request for every route that needs
//! a credential, grouped by what it addresses. The authorization tests walk
//! it; `authorization::endpoints` checks it against the served OpenAPI
//! document, so a new route cannot skip them.

use super::request::TINY_PNG;
use super::{Endpoint, PASSWORD, Payload, uuid_like};
use serde_json::json;

/// The routes anyone may call without a credential, as the OpenAPI document
/// writes them; every other documented route is in the catalogue.
pub const PUBLIC_ROUTES: [(&str, &str); 1] = [("POST", "/api/v1/auth/sign-in")];

/// A job id of the right form that no job has.
pub const UNKNOWN_JOB: &str = "0123456789abcdef0123456789abcdef";

/// Every endpoint: mine, conversation `c`'s and the administrators', with
/// `ext` wherever an extension is addressed.
pub fn every_endpoint(c: i64, ext: i64) -> Vec<Endpoint> {
    let mut all = own_endpoints(ext);
    all.extend(conversation_endpoints(c, ext));
    all.extend(admin_endpoints(ext));
    all
}

/// Endpoints about me and my organization, addressing nothing by id except
/// `colleague`.
pub fn own_endpoints(colleague: i64) -> Vec<Endpoint> {
    vec![
        Endpoint::new("GET", "/api/v1/me", Payload::Empty),
        Endpoint::new(
            "PATCH",
            "/api/v1/me/settings",
            Payload::Json(json!({"alert_muted": true})),
        ),
        Endpoint::new(
            "POST",
            "/api/v1/me/password",
            Payload::Json(
                json!({"current_password": PASSWORD, "new_password": "another-password"}),
            ),
        ),
        Endpoint::new("GET", "/api/v1/extensions", Payload::Empty),
        Endpoint::new("GET", "/api/v1/me/numbers", Payload::Empty),
        Endpoint::new(
            "PUT",
            "/api/v1/me/numbers/default",
            Payload::Json(json!({"number_id": 1})),
        ),
        Endpoint::new("GET", "/api/v1/conversations", Payload::Empty),
        Endpoint::new(
            "POST",
            "/api/v1/conversations/direct",
            Payload::Json(json!({"extension_id": colleague})),
        ),
        Endpoint::new(
            "POST",
            "/api/v1/conversations/group",
            Payload::Json(json!({"name": "Side channel", "member_ids": [colleague]})),
        ),
        Endpoint::new(
            "POST",
            "/api/v1/conversations/sms",
            Payload::Json(json!({"to": "+14155552671"})),
        ),
        Endpoint::new(
            "POST",
            "/api/v1/sms/segments",
            Payload::Json(json!({"text": "Your order shipped"})),
        ),
        Endpoint::new("POST", "/api/v1/media", Payload::Png(TINY_PNG)),
        Endpoint::new(
            "GET",
            format!("/api/v1/media/{}", "0".repeat(64)),
            Payload::Empty,
        ),
        Endpoint::new("POST", "/api/v1/auth/sign-out", Payload::Empty),
    ]
}

/// Every endpoint that addresses conversation `c` (and, where one is
/// needed, extension `ext`).
pub fn conversation_endpoints(c: i64, ext: i64) -> Vec<Endpoint> {
    let base = format!("/api/v1/conversations/{c}");
    vec![
        Endpoint::new("GET", base.clone(), Payload::Empty),
        Endpoint::new(
            "PATCH",
            base.clone(),
            Payload::Json(json!({"name": "Taken over"})),
        ),
        Endpoint::new(
            "POST",
            format!("{base}/participants"),
            Payload::Json(json!({"extension_ids": [ext]})),
        ),
        Endpoint::new(
            "DELETE",
            format!("{base}/participants/{ext}"),
            Payload::Empty,
        ),
        Endpoint::new("POST", format!("{base}/leave"), Payload::Empty),
        Endpoint::new("GET", format!("{base}/messages"), Payload::Empty),
        Endpoint::new(
            "GET",
            format!("{base}/messages?limit=10&after=0"),
            Payload::Empty,
        ),
        Endpoint::new(
            "POST",
            format!("{base}/messages"),
            Payload::Json(json!({"text": "intruding", "idempotency_key": uuid_like()})),
        ),
        Endpoint::new(
            "POST",
            format!("{base}/read"),
            Payload::Json(json!({"message_id": 1_000_000})),
        ),
        Endpoint::new("GET", format!("{base}/receipts"), Payload::Empty),
    ]
}

/// The administrator endpoints that address extension `ext` by id.
pub fn admin_endpoints_by_id(ext: i64) -> Vec<Endpoint> {
    vec![
        Endpoint::new(
            "PATCH",
            format!("/api/v1/admin/extensions/{ext}"),
            Payload::Json(json!({"name": "Renamed By Intruder", "disabled": true})),
        ),
        Endpoint::new(
            "POST",
            format!("/api/v1/admin/extensions/{ext}/password"),
            Payload::Json(json!({"password": "taken-over-password"})),
        ),
    ]
}

/// Every administrator endpoint.
pub fn admin_endpoints(ext: i64) -> Vec<Endpoint> {
    let mut all = vec![
        Endpoint::new("GET", "/api/v1/admin/extensions", Payload::Empty),
        Endpoint::new(
            "POST",
            "/api/v1/admin/extensions",
            Payload::Json(
                json!({"number": "190", "name": "Intruder", "password": "intruder-password", "role": "admin"}),
            ),
        ),
        Endpoint::new(
            "POST",
            "/api/v1/admin/extensions/import",
            Payload::Csv(
                "number,name,password,role\n191,Imported Intruder,intruder-password,admin\n",
            ),
        ),
        Endpoint::new(
            "GET",
            format!("/api/v1/admin/jobs/{UNKNOWN_JOB}"),
            Payload::Empty,
        ),
        Endpoint::new("GET", "/api/v1/admin/organization", Payload::Empty),
        Endpoint::new(
            "PATCH",
            "/api/v1/admin/organization",
            Payload::Json(json!({"alert_tone": "bell", "default_country": "GB"})),
        ),
        Endpoint::new("GET", "/api/v1/admin/carriers", Payload::Empty),
        Endpoint::new(
            "POST",
            "/api/v1/admin/carriers",
            Payload::Json(json!({"kind": "simulator", "name": "Intruder's simulator"})),
        ),
        Endpoint::new("GET", "/api/v1/admin/numbers", Payload::Empty),
        Endpoint::new(
            "POST",
            "/api/v1/admin/numbers",
            Payload::Json(json!({"number": "+14155550199", "sms_enabled": true})),
        ),
    ];
    all.extend(admin_endpoints_by_id(ext));
    all.extend(admin_number_endpoints(1, ext));
    all
}

/// The administrator endpoints that address business number `number`
/// (and, to assign it, extension `ext`) by id.
pub fn admin_number_endpoints(number: i64, ext: i64) -> Vec<Endpoint> {
    let base = format!("/api/v1/admin/numbers/{number}");
    vec![
        Endpoint::new(
            "PATCH",
            base.clone(),
            Payload::Json(json!({"sms_enabled": false, "connection_id": null})),
        ),
        Endpoint::new("PUT", format!("{base}/extensions/{ext}"), Payload::Empty),
        Endpoint::new("DELETE", format!("{base}/extensions/{ext}"), Payload::Empty),
    ]
}

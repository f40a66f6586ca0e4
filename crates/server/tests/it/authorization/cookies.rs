//! Cookie sessions: the cookies are strict and HTTP-only, changes need the
//! session's CSRF token, and a cookie WebSocket must come from our origin.

use super::{cookie_attributes, set_cookies};
use crate::common::{
    Cred, Endpoint, PASSWORD, Payload, Server, assert_error, every_endpoint, uuid_like,
};
use serde_json::json;

#[tokio::test]
async fn sign_in_sets_a_strict_http_only_session_cookie() {
    let server = Server::start();
    let signed = server.sign_in_answer("demo", "102", PASSWORD).await;
    assert_eq!(signed.status, 200);
    let token = signed.body["token"].as_str().expect("token");
    let csrf = signed.body["csrf_token"].as_str().expect("csrf token");
    let cookies = set_cookies(&signed);

    let session = cookies
        .iter()
        .find(|c| c.starts_with("sb_session="))
        .unwrap_or_else(|| panic!("sb_session cookie set: {cookies:?}"));
    assert!(
        session.starts_with(&format!("sb_session={token};")),
        "{session}"
    );
    let attributes = cookie_attributes(session);
    assert!(attributes.contains("httponly"), "{session}");
    assert!(attributes.contains("samesite=strict"), "{session}");
    assert!(attributes.contains("path=/"), "{session}");

    let csrf_cookie = cookies
        .iter()
        .find(|c| c.starts_with("sb_csrf="))
        .unwrap_or_else(|| panic!("sb_csrf cookie set: {cookies:?}"));
    assert!(
        csrf_cookie.starts_with(&format!("sb_csrf={csrf};")),
        "{csrf_cookie}"
    );
    let attributes = cookie_attributes(csrf_cookie);
    assert!(
        !attributes.contains("httponly"),
        "scripts must read it: {csrf_cookie}"
    );
    assert!(attributes.contains("samesite=strict"), "{csrf_cookie}");

    // A failed sign-in sets no cookie.
    let failed = server.sign_in_answer("demo", "102", "wrong password").await;
    assert_error(&failed, 401, "invalid_credentials", "wrong password");
    assert!(set_cookies(&failed).is_empty());
}

#[tokio::test]
async fn cookie_changes_need_the_csrf_token() {
    let server = Server::start();
    let signed = server.sign_in_answer("demo", "102", PASSWORD).await;
    let token = signed.body["token"].as_str().expect("token").to_owned();
    let csrf = signed.body["csrf_token"].as_str().expect("csrf").to_owned();
    let bob = server.sign_in("102").await;
    let conversation = bob.direct_with(1).await;
    let path = format!("/api/v1/conversations/{conversation}/messages");

    let reads = Endpoint::new("GET", "/api/v1/me", Payload::Empty);
    let a = server
        .request(
            Cred::Cookie {
                token: &token,
                csrf: None,
            },
            &reads,
        )
        .await;
    assert_eq!(a.status, 200, "reading needs no CSRF token: {}", a.body);

    // Every state-changing endpoint refuses a cookie without the token.
    let mut changes: Vec<Endpoint> = every_endpoint(conversation, 3)
        .into_iter()
        .filter(|e| e.method != "GET")
        .collect();
    changes.push(Endpoint::new(
        "POST",
        path.clone(),
        Payload::Json(json!({"text": "forged", "idempotency_key": uuid_like()})),
    ));
    for ep in &changes {
        for (given, label) in [
            (None, "without a token"),
            (Some("forged-token"), "with a wrong token"),
            (Some(""), "with an empty token"),
        ] {
            let a = server
                .request(
                    Cred::Cookie {
                        token: &token,
                        csrf: given,
                    },
                    ep,
                )
                .await;
            assert_error(
                &a,
                403,
                "csrf_failed",
                &format!("cookie {} {label}", ep.name()),
            );
        }
    }
    let history = bob.get(&path).await;
    assert_eq!(history.body["messages"], json!([]), "nothing was sent");
    assert_eq!(
        bob.get("/api/v1/me").await.body["settings"]["alert_muted"],
        false
    );

    // The token of another session does not fit this one.
    let other = server.sign_in_answer("demo", "102", PASSWORD).await;
    let other_csrf = other.body["csrf_token"].as_str().expect("csrf");
    assert_ne!(other_csrf, csrf);
    let send = Endpoint::new(
        "POST",
        path.clone(),
        Payload::Json(json!({"text": "with the right token", "idempotency_key": uuid_like()})),
    );
    let a = server
        .request(
            Cred::Cookie {
                token: &token,
                csrf: Some(other_csrf),
            },
            &send,
        )
        .await;
    assert_error(&a, 403, "csrf_failed", "another session's CSRF token");

    let a = server
        .request(
            Cred::Cookie {
                token: &token,
                csrf: Some(&csrf),
            },
            &send,
        )
        .await;
    assert_eq!(a.status, 201, "with the right token: {}", a.body);
    let settings = Endpoint::new(
        "PATCH",
        "/api/v1/me/settings",
        Payload::Json(json!({"alert_muted": true})),
    );
    let a = server
        .request(
            Cred::Cookie {
                token: &token,
                csrf: Some(&csrf),
            },
            &settings,
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let history = bob.get(&path).await;
    assert_eq!(history.body["messages"].as_array().map(Vec::len), Some(1));

    // A bearer token needs no CSRF token.
    let a = bob
        .post(
            &path,
            json!({"text": "bearer", "idempotency_key": uuid_like()}),
        )
        .await;
    assert_eq!(a.status, 201);
}

#[tokio::test]
async fn a_cookie_websocket_from_a_foreign_origin_is_refused() {
    let server = Server::start();
    let signed = server.sign_in_answer("demo", "102", PASSWORD).await;
    let token = signed.body["token"].as_str().expect("token");
    let cookie = ("cookie", format!("sb_session={token}"));

    for origin in [
        "http://evil.example".to_owned(),
        format!("https://{}.evil.example", server.addr()),
        "null".to_owned(),
    ] {
        let refused = server
            .ws_attempt(&[cookie.clone(), ("origin", origin.clone())])
            .await
            .err()
            .unwrap_or_else(|| panic!("origin {origin} is refused"));
        assert_eq!(refused.0, 403, "origin {origin}");
        if !refused.1.is_null() {
            assert_eq!(refused.1["error"]["code"], "forbidden");
        }
    }

    // Our own pages may use the cookie.
    let own = format!("http://{}", server.addr());
    let mut ws = server
        .ws_attempt(&[cookie.clone(), ("origin", own)])
        .await
        .unwrap_or_else(|e| panic!("same-origin websocket refused: {e:?}"));
    ws.send(json!({"type": "ping"})).await;
    assert_eq!(ws.next_of("pong").await["type"], "pong");

    // A bearer token is not a browser's ambient credential.
    let bearer_with_origin = [
        ("authorization", format!("Bearer {token}")),
        ("origin", "http://evil.example".to_owned()),
    ];
    assert!(server.ws_attempt(&bearer_with_origin).await.is_ok());
}

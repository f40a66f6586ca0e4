//! Sessions end when they should: at sign-out, at a password change or
//! reset, and when the extension is disabled.

use super::{cookie_attributes, set_cookies};
use crate::common::{
    Cred, Endpoint, PASSWORD, Payload, Server, assert_error, bearer, own_endpoints, uuid_like,
};
use serde_json::json;

#[tokio::test]
async fn sign_out_revokes_that_session_only() {
    let server = Server::start();
    let first = server.sign_in("102").await;
    let second = server.sign_in("102").await;

    let out = first.post("/api/v1/auth/sign-out", json!({})).await;
    assert_eq!(out.status, 204, "{}", out.body);
    let cleared = set_cookies(&out);
    for name in ["sb_session=", "sb_csrf="] {
        let c = cleared
            .iter()
            .find(|c| c.starts_with(name))
            .unwrap_or_else(|| panic!("{name} cleared: {cleared:?}"));
        assert!(cookie_attributes(c).contains("max-age=0"), "{c}");
    }

    for ep in own_endpoints(3) {
        let a = server.request(Cred::Bearer(&first.token), &ep).await;
        assert_error(
            &a,
            401,
            "unauthenticated",
            &format!("signed-out {}", ep.name()),
        );
    }
    let refused = server
        .ws_attempt(&bearer(&first.token))
        .await
        .err()
        .expect("refused");
    assert_eq!(refused.0, 401);
    assert_eq!(
        second.get("/api/v1/me").await.status,
        200,
        "the other session lives on"
    );

    // Signing out by cookie works the same way.
    let signed = server.sign_in_answer("demo", "103", PASSWORD).await;
    let token = signed.body["token"].as_str().expect("token");
    let csrf = signed.body["csrf_token"].as_str().expect("csrf");
    let out = Endpoint::new("POST", "/api/v1/auth/sign-out", Payload::Empty);
    let a = server
        .request(
            Cred::Cookie {
                token,
                csrf: Some(csrf),
            },
            &out,
        )
        .await;
    assert_eq!(a.status, 204, "{}", a.body);
    let me = Endpoint::new("GET", "/api/v1/me", Payload::Empty);
    let a = server
        .request(Cred::Cookie { token, csrf: None }, &me)
        .await;
    assert_error(&a, 401, "unauthenticated", "cookie after sign-out");
    let a = server.request(Cred::Bearer(token), &me).await;
    assert_error(
        &a,
        401,
        "unauthenticated",
        "the same token as bearer after sign-out",
    );
}

#[tokio::test]
async fn an_administrators_password_reset_revokes_the_targets_sessions() {
    let server = Server::start();
    let alice = server.sign_in("101").await;
    let bob = server.sign_in("102").await;
    let bob_again = server.sign_in("102").await;
    let carol = server.sign_in("103").await;

    let reset = alice
        .post(
            &format!("/api/v1/admin/extensions/{}/password", bob.id),
            json!({"password": "a brand new password"}),
        )
        .await;
    assert_eq!(reset.status, 204, "{}", reset.body);

    for session in [&bob, &bob_again] {
        let a = session.get("/api/v1/me").await;
        assert_error(&a, 401, "unauthenticated", "bob after the reset");
        assert_eq!(
            server
                .ws_attempt(&bearer(&session.token))
                .await
                .err()
                .map(|e| e.0),
            Some(401)
        );
    }
    assert_eq!(
        alice.get("/api/v1/me").await.status,
        200,
        "the administrator stays signed in"
    );
    assert_eq!(
        carol.get("/api/v1/me").await.status,
        200,
        "others stay signed in"
    );
    let old = server.sign_in_answer("demo", "102", PASSWORD).await;
    assert_error(&old, 401, "invalid_credentials", "the old password");
    let new = server
        .sign_in_answer("demo", "102", "a brand new password")
        .await;
    assert_eq!(new.status, 200, "{}", new.body);
}

#[tokio::test]
async fn changing_my_password_signs_out_my_other_sessions() {
    let server = Server::start();
    let here = server.sign_in("102").await;
    let elsewhere = server.sign_in("102").await;

    let wrong = here
        .post(
            "/api/v1/me/password",
            json!({"current_password": "not my password", "new_password": "my new password"}),
        )
        .await;
    assert_error(&wrong, 403, "forbidden", "wrong current password");
    assert_eq!(
        elsewhere.get("/api/v1/me").await.status,
        200,
        "a refused change revokes nothing"
    );

    let changed = here
        .post(
            "/api/v1/me/password",
            json!({"current_password": PASSWORD, "new_password": "my new password"}),
        )
        .await;
    assert_eq!(changed.status, 204, "{}", changed.body);
    assert_eq!(
        here.get("/api/v1/me").await.status,
        200,
        "this session stays"
    );
    assert_error(
        &elsewhere.get("/api/v1/me").await,
        401,
        "unauthenticated",
        "the other session",
    );
    assert_eq!(
        server
            .sign_in_answer("demo", "102", "my new password")
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn a_disabled_extension_cannot_sign_in_and_its_sessions_stop() {
    let server = Server::start();
    let alice = server.sign_in("101").await;
    let bob = server.sign_in("102").await;
    let conversation = alice.direct_with(bob.id).await;

    let disabled = alice
        .call(
            "PATCH",
            &format!("/api/v1/admin/extensions/{}", bob.id),
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!(disabled.status, 200, "{}", disabled.body);
    assert_eq!(disabled.body["extension"]["disabled"], true);

    assert_error(
        &bob.get("/api/v1/me").await,
        401,
        "unauthenticated",
        "disabled session",
    );
    let send = bob
        .post(
            &format!("/api/v1/conversations/{conversation}/messages"),
            json!({"text": "still here?", "idempotency_key": uuid_like()}),
        )
        .await;
    assert_error(&send, 401, "unauthenticated", "disabled session sending");
    assert_eq!(
        server
            .ws_attempt(&bearer(&bob.token))
            .await
            .err()
            .map(|e| e.0),
        Some(401)
    );
    let again = server.sign_in_answer("demo", "102", PASSWORD).await;
    assert_error(&again, 403, "forbidden", "disabled sign-in");
    assert!(set_cookies(&again).is_empty());
    let wrong = server.sign_in_answer("demo", "102", "wrong password").await;
    assert_error(
        &wrong,
        401,
        "invalid_credentials",
        "disabled extension, wrong password",
    );

    let directory = alice.get("/api/v1/extensions").await.body;
    assert!(
        !directory["extensions"]
            .as_array()
            .expect("list")
            .iter()
            .any(|e| e["id"] == bob.id),
        "the directory hides disabled extensions"
    );
    let direct = alice
        .post("/api/v1/conversations/direct", json!({"extension_id": 3}))
        .await;
    assert_eq!(direct.status, 201);
    let with_disabled = alice
        .post(
            "/api/v1/conversations/group",
            json!({"name": "G", "member_ids": [bob.id]}),
        )
        .await;
    assert_error(
        &with_disabled,
        404,
        "not_found",
        "a group with a disabled extension",
    );

    let enabled = alice
        .call(
            "PATCH",
            &format!("/api/v1/admin/extensions/{}", bob.id),
            Some(json!({"disabled": false})),
        )
        .await;
    assert_eq!(enabled.status, 200);
    assert_error(
        &bob.get("/api/v1/me").await,
        401,
        "unauthenticated",
        "old session after re-enabling",
    );
    assert_eq!(
        server.sign_in_answer("demo", "102", PASSWORD).await.status,
        200
    );
}

//! Every endpoint by credential: the signed out get 401 everywhere, members
//! 403 on every administrator endpoint; and the catalogue that these tests
//! walk holds exactly the routes the server documents.

use crate::common::{
    Cred, PASSWORD, PUBLIC_ROUTES, Server, admin_endpoints, assert_error, bearer, every_endpoint,
};
use serde_json::Value;
use std::collections::BTreeSet;

#[tokio::test]
async fn signed_out_requests_get_401_on_every_endpoint_and_the_websocket() {
    let server = Server::start();
    let alice = server.sign_in("101").await;
    let conversation = alice.direct_with(2).await;
    alice.send(conversation, "private").await;

    let all = every_endpoint(conversation, 2);
    let made_up = "bm90LWEtcmVhbC10b2tlbi1ub3QtYS1yZWFsLXRva2Vu";
    for ep in &all {
        for (cred, label) in [
            (Cred::None, "no credential"),
            (Cred::Bearer(made_up), "made-up bearer token"),
            (Cred::Bearer(""), "empty bearer token"),
        ] {
            let a = server.request(cred, ep).await;
            assert_error(
                &a,
                401,
                "unauthenticated",
                &format!("{} with {label}", ep.name()),
            );
        }
        if ep.method == "GET" {
            let a = server
                .request(
                    Cred::Cookie {
                        token: made_up,
                        csrf: None,
                    },
                    ep,
                )
                .await;
            assert_error(
                &a,
                401,
                "unauthenticated",
                &format!("{} with a made-up cookie", ep.name()),
            );
        }
    }

    for headers in [
        vec![],
        bearer(made_up),
        vec![("cookie", format!("sb_session={made_up}"))],
    ] {
        let refused = server.ws_attempt(&headers).await.err().expect("refused");
        assert_eq!(refused.0, 401, "websocket with {headers:?}");
        if !refused.1.is_null() {
            assert_eq!(refused.1["error"]["code"], "unauthenticated");
        }
    }

    // Nothing was changed by all of that.
    let history = alice
        .get(&format!("/api/v1/conversations/{conversation}/messages"))
        .await;
    assert_eq!(history.body["messages"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        alice.get("/api/v1/admin/extensions").await.body["extensions"]
            .as_array()
            .map(Vec::len),
        Some(5)
    );
}

#[tokio::test]
async fn members_get_403_on_every_admin_endpoint() {
    let server = Server::start();
    let alice = server.sign_in("101").await;
    let bob = server.sign_in("102").await;
    let extensions_before = alice.get("/api/v1/admin/extensions").await.body;
    let org_before = alice.get("/api/v1/admin/organization").await.body;

    for ext in [bob.id, alice.id, 3, 999_999] {
        for ep in admin_endpoints(ext) {
            let a = server.request(Cred::Bearer(&bob.token), &ep).await;
            assert_error(&a, 403, "forbidden", &format!("member {}", ep.name()));
        }
    }

    assert_eq!(
        alice.get("/api/v1/admin/extensions").await.body,
        extensions_before
    );
    assert_eq!(
        alice.get("/api/v1/admin/organization").await.body,
        org_before
    );
    assert_eq!(
        bob.get("/api/v1/me").await.body["extension"]["role"],
        "member"
    );
    assert_eq!(
        server.sign_in_answer("demo", "101", PASSWORD).await.status,
        200,
        "alice's password is unchanged"
    );
}

/// A route as "METHOD /path/{}/…": upper-case method, no query, and every
/// parameter (a `{name}` template, a concrete number or a job id of 32
/// hexadecimal digits) written `{}`.
fn route(method: &str, path: &str) -> String {
    let path = path.split('?').next().unwrap_or_default();
    let segments: Vec<&str> = path
        .split('/')
        .map(|segment| {
            let template = segment.starts_with('{') && segment.ends_with('}');
            let number = !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit());
            let job = segment.len() == 32 && segment.bytes().all(|b| b.is_ascii_hexdigit());
            if template || number || job {
                "{}"
            } else {
                segment
            }
        })
        .collect();
    format!("{} {}", method.to_ascii_uppercase(), segments.join("/"))
}

#[tokio::test]
async fn the_catalogue_holds_exactly_the_routes_of_the_openapi_document() {
    let server = Server::start();
    let res = crate::common::http()
        .get(format!("{}/api/v1/openapi.json", server.base))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 200);
    let doc: Value = res.json().await.expect("the document is JSON");
    const METHODS: [&str; 8] = [
        "get", "put", "post", "delete", "options", "head", "patch", "trace",
    ];
    let documented: BTreeSet<String> = doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .expect("path item")
                .keys()
                .filter(|key| METHODS.contains(&key.as_str()))
                .map(move |method| route(method, path))
        })
        .collect();
    assert!(!documented.is_empty(), "the document lists routes");

    let catalogued: BTreeSet<String> = every_endpoint(1, 2)
        .iter()
        .map(|ep| route(ep.method, &ep.path))
        .chain(PUBLIC_ROUTES.iter().map(|(m, p)| route(m, p)))
        .collect();

    let not_catalogued: Vec<&String> = documented.difference(&catalogued).collect();
    let not_documented: Vec<&String> = catalogued.difference(&documented).collect();
    assert!(
        not_catalogued.is_empty() && not_documented.is_empty(),
        "the endpoint catalogue (tests/it/common/catalogue.rs) and the OpenAPI document differ:\n\
         documented but missing from the catalogue: {not_catalogued:#?}\n\
         in the catalogue but not documented: {not_documented:#?}"
    );
}

#[tokio::test]
async fn no_spelling_of_a_role_lets_an_administrator_demote_themself() {
    let server = Server::start();
    let alice = server.sign_in("101").await;
    let path = format!("/api/v1/admin/extensions/{}", alice.id);
    for spelling in ["member", " Member", "MEMBER", "Member\t", ""] {
        let a = alice
            .call("PATCH", &path, Some(serde_json::json!({"role": spelling})))
            .await;
        assert_error(&a, 422, "validation_failed", &format!("role {spelling:?}"));
    }
    let a = alice
        .call("PATCH", &path, Some(serde_json::json!({"disabled": true})))
        .await;
    assert_error(&a, 422, "validation_failed", "disabling oneself");
    let extensions = alice.get("/api/v1/admin/extensions").await;
    assert_eq!(extensions.status, 200, "alice is still an administrator");
    let admins: Vec<&Value> = extensions.body["extensions"]
        .as_array()
        .expect("extensions")
        .iter()
        .filter(|e| e["role"] == "admin" && e["disabled"] == false)
        .collect();
    assert_eq!(admins.len(), 1, "the organization keeps its administrator");
    assert_eq!(admins[0]["id"], alice.id);
}

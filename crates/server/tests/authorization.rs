//! Who may do what: every REST endpoint and the WebSocket refuse the signed
//! out, other organizations, non-participants and non-administrators; cookie
//! sessions need the CSRF token; sessions end when they should; guessing
//! passwords is braked.

mod common;

use common::{Answer, Client, PASSWORD, Server, Ws, answer, assert_error, uuid_like};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest, http::HeaderValue};

// ---------------------------------------------------------------------------
// Requests with any credential.

#[derive(Clone, Copy)]
enum Cred<'a> {
    None,
    Bearer(&'a str),
    Cookie {
        token: &'a str,
        csrf: Option<&'a str>,
    },
}

enum Payload {
    Empty,
    Json(Value),
    Csv(&'static str),
}

struct Endpoint {
    method: &'static str,
    path: String,
    payload: Payload,
}

impl Endpoint {
    fn new(method: &'static str, path: impl Into<String>, payload: Payload) -> Self {
        Self {
            method,
            path: path.into(),
            payload,
        }
    }

    fn name(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

async fn request(base: &str, cred: Cred<'_>, ep: &Endpoint) -> Answer {
    let http = reqwest::Client::new();
    let method = reqwest::Method::from_bytes(ep.method.as_bytes()).expect("method");
    let mut req = http.request(method, format!("{base}{}", ep.path));
    match cred {
        Cred::None => {}
        Cred::Bearer(token) => req = req.bearer_auth(token),
        Cred::Cookie { token, csrf } => {
            req = req.header("cookie", format!("sb_session={token}"));
            if let Some(csrf) = csrf {
                req = req.header("x-csrf-token", csrf);
            }
        }
    }
    req = match &ep.payload {
        Payload::Empty => req,
        Payload::Json(v) => req.json(v),
        Payload::Csv(text) => req.header("content-type", "text/csv").body(*text),
    };
    answer(req.send().await.expect("request")).await
}

/// Signs in and returns the whole answer (token, csrf token, headers).
async fn sign_in_answer(server: &Server, org: &str, extension: &str, password: &str) -> Answer {
    let res = reqwest::Client::new()
        .post(format!("{}/api/v1/auth/sign-in", server.base))
        .json(&json!({"organization": org, "extension": extension, "password": password}))
        .send()
        .await
        .expect("sign-in request");
    answer(res).await
}

/// Tries to open the WebSocket with the given headers: the stream after
/// `ready`, or the HTTP status and body of the refusal.
async fn ws_attempt(server: &Server, headers: &[(&str, String)]) -> Result<Ws, (u16, Value)> {
    let mut request = format!("ws://{}/api/v1/ws", server.addr())
        .into_client_request()
        .expect("ws request");
    for (name, value) in headers {
        request.headers_mut().insert(
            tungstenite::http::HeaderName::from_bytes(name.as_bytes()).expect("header name"),
            HeaderValue::from_str(value).expect("header value"),
        );
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((stream, _)) => {
            let mut ws = Ws::from_stream(stream);
            ws.next_of("ready").await;
            Ok(ws)
        }
        Err(tungstenite::Error::Http(response)) => {
            let body = response
                .body()
                .as_ref()
                .and_then(|b| serde_json::from_slice(b).ok())
                .unwrap_or(Value::Null);
            Err((response.status().as_u16(), body))
        }
        Err(e) => panic!("websocket connect failed unexpectedly: {e}"),
    }
}

fn bearer(token: &str) -> Vec<(&'static str, String)> {
    vec![("authorization", format!("Bearer {token}"))]
}

// ---------------------------------------------------------------------------
// The endpoints.

/// Endpoints about me and my organization, addressing nothing by id except
/// `colleague`.
fn own_endpoints(colleague: i64) -> Vec<Endpoint> {
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
        Endpoint::new("POST", "/api/v1/auth/sign-out", Payload::Empty),
    ]
}

/// Every endpoint that addresses conversation `c` (and, where one is
/// needed, extension `ext`).
fn conversation_endpoints(c: i64, ext: i64) -> Vec<Endpoint> {
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
fn admin_endpoints_by_id(ext: i64) -> Vec<Endpoint> {
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
fn admin_endpoints(ext: i64) -> Vec<Endpoint> {
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
        Endpoint::new("GET", "/api/v1/admin/organization", Payload::Empty),
        Endpoint::new(
            "PATCH",
            "/api/v1/admin/organization",
            Payload::Json(json!({"alert_tone": "bell"})),
        ),
    ];
    all.extend(admin_endpoints_by_id(ext));
    all
}

// ---------------------------------------------------------------------------
// Fixtures.

const DEMO_NAMES: [&str; 5] = [
    "Alice Archer",
    "Bob Baker",
    "Carol Chen",
    "Dan Diaz",
    "Erin Evans",
];
const OTHER_NAMES: [&str; 2] = ["Xavier Other", "Yolanda Other"];

/// Creates organization "other" with 101 (administrator) and 102.
fn create_other_org(server: &Server) {
    server.admin(&["create-org", "--slug", "other", "--name", "Other"]);
    for (number, name, admin) in [
        ("101", OTHER_NAMES[0], true),
        ("102", OTHER_NAMES[1], false),
    ] {
        let mut args = vec![
            "create-extension",
            "--org",
            "other",
            "--number",
            number,
            "--name",
            name,
            "--password",
            PASSWORD,
        ];
        if admin {
            args.push("--admin");
        }
        server.admin(&args);
    }
}

fn conversation_id(a: &Answer) -> i64 {
    assert!(
        a.status == 200 || a.status == 201,
        "conversation: {}",
        a.body
    );
    a.body["conversation"]["id"]
        .as_i64()
        .expect("conversation id")
}

async fn group(client: &Client, name: &str, members: &[i64]) -> i64 {
    conversation_id(
        &client
            .post(
                "/api/v1/conversations/group",
                json!({"name": name, "member_ids": members}),
            )
            .await,
    )
}

/// Ids mentioned in a list answer: list entries, participants, senders.
fn ids_in(body: &Value) -> BTreeSet<i64> {
    let mut ids = BTreeSet::new();
    for key in ["extensions", "conversations"] {
        for item in body[key].as_array().into_iter().flatten() {
            if let Some(id) = item["id"].as_i64() {
                ids.insert(id);
            }
            for p in item["participants"].as_array().into_iter().flatten() {
                ids.insert(p["id"].as_i64().expect("participant id"));
            }
        }
    }
    ids
}

fn assert_mentions_none(body: &Value, needles: &[&str], what: &str) {
    let text = body.to_string();
    for needle in needles {
        assert!(!text.contains(needle), "{what} leaks {needle:?}: {text}");
    }
}

/// Reads frames until the `message.created` with `marker_text`, asserting
/// that none of them concerns any of `hidden` conversations, and that the
/// marker is the first message the socket sees.
async fn assert_hears_nothing_of(ws: &mut Ws, hidden: &[i64], marker_text: &str, who: &str) {
    loop {
        let frame = ws.next_frame().await.expect("socket closed");
        let data = &frame["data"];
        let concerned = [
            &data["message"]["conversation_id"],
            &data["conversation"]["id"],
            &data["conversation_id"],
        ];
        for c in concerned {
            if let Some(c) = c.as_i64() {
                assert!(
                    !hidden.contains(&c),
                    "{who} received an event of conversation {c}: {frame}"
                );
            }
        }
        if frame["type"] == "message.created" {
            assert_eq!(
                data["message"]["text"], marker_text,
                "the first message {who} hears is the marker: {frame}"
            );
            return;
        }
    }
}

// ---------------------------------------------------------------------------
// (a) Signed out.

#[tokio::test]
async fn signed_out_requests_get_401_on_every_endpoint_and_the_websocket() {
    let server = Server::start();
    let alice = server.sign_in("101").await;
    let conversation = alice.direct_with(2).await;
    alice.send(conversation, "private").await;

    let mut all = own_endpoints(2);
    all.extend(conversation_endpoints(conversation, 2));
    all.extend(admin_endpoints(2));
    let made_up = "bm90LWEtcmVhbC10b2tlbi1ub3QtYS1yZWFsLXRva2Vu";
    for ep in &all {
        for (cred, label) in [
            (Cred::None, "no credential"),
            (Cred::Bearer(made_up), "made-up bearer token"),
            (Cred::Bearer(""), "empty bearer token"),
        ] {
            let a = request(&server.base, cred, ep).await;
            assert_error(
                &a,
                401,
                "unauthenticated",
                &format!("{} with {label}", ep.name()),
            );
        }
        if ep.method == "GET" {
            let a = request(
                &server.base,
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
        let refused = ws_attempt(&server, &headers).await.err().expect("refused");
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

// ---------------------------------------------------------------------------
// (b) Other organizations.

#[tokio::test]
async fn another_organization_can_neither_see_nor_touch_demo() {
    let server = Server::start();
    create_other_org(&server);
    let alice = server.sign_in("101").await;
    let bob = server.sign_in("102").await;
    let xavier = server.sign_in_to("other", "101", PASSWORD).await;
    let yolanda = server.sign_in_to("other", "102", PASSWORD).await;
    let demo_ids: BTreeSet<i64> = (1..=5).collect();
    let other_ids: BTreeSet<i64> = [xavier.id, yolanda.id].into();
    assert!(demo_ids.is_disjoint(&other_ids));

    let demo_direct = alice.direct_with(bob.id).await;
    alice.send(demo_direct, "demo secret one").await;
    let demo_group = group(&alice, "Demo planning", &[2, 3]).await;
    bob.send(demo_group, "demo secret two").await;

    let other_direct = xavier.direct_with(yolanda.id).await;
    xavier.send(other_direct, "other secret one").await;
    let other_group = group(&xavier, "Other planning", &[yolanda.id]).await;
    yolanda.send(other_group, "other secret two").await;

    let mut xavier_ws = xavier.ws(None).await;
    let mut alice_ws = alice.ws(None).await;

    let demo_before = (
        alice.get("/api/v1/conversations").await.body,
        alice.get("/api/v1/admin/extensions").await.body,
        alice.get("/api/v1/admin/organization").await.body,
    );
    let other_before = (
        xavier.get("/api/v1/conversations").await.body,
        xavier.get("/api/v1/admin/extensions").await.body,
        xavier.get("/api/v1/admin/organization").await.body,
    );

    // Addressing the other organization's conversations and extensions, in
    // both directions, by an administrator and by a member.
    for (client, conversations, colleague, foreign_ext, label) in [
        (
            &xavier,
            [demo_direct, demo_group],
            yolanda.id,
            2,
            "other's admin",
        ),
        (
            &yolanda,
            [demo_direct, demo_group],
            xavier.id,
            1,
            "other's member",
        ),
        (
            &alice,
            [other_direct, other_group],
            bob.id,
            xavier.id,
            "demo's admin",
        ),
        (
            &bob,
            [other_direct, other_group],
            alice.id,
            yolanda.id,
            "demo's member",
        ),
    ] {
        for c in conversations {
            for ep in conversation_endpoints(c, foreign_ext) {
                let a = request(&server.base, Cred::Bearer(&client.token), &ep).await;
                assert_error(&a, 404, "not_found", &format!("{label}: {}", ep.name()));
            }
            // Adding oneself to a foreign conversation is no way in either.
            let me_in = Endpoint::new(
                "POST",
                format!("/api/v1/conversations/{c}/participants"),
                Payload::Json(json!({"extension_ids": [client.id]})),
            );
            let a = request(&server.base, Cred::Bearer(&client.token), &me_in).await;
            assert_error(&a, 404, "not_found", &format!("{label}: {}", me_in.name()));
        }

        let direct = client
            .post(
                "/api/v1/conversations/direct",
                json!({"extension_id": foreign_ext}),
            )
            .await;
        assert_error(
            &direct,
            404,
            "not_found",
            &format!("{label}: direct with a foreign extension"),
        );
        let mixed = client
            .post(
                "/api/v1/conversations/group",
                json!({"name": "Mixed", "member_ids": [colleague, foreign_ext]}),
            )
            .await;
        assert_error(
            &mixed,
            404,
            "not_found",
            &format!("{label}: group with a foreign extension"),
        );
        let own_group = group(client, "Own group", &[colleague]).await;
        let add = client
            .post(
                &format!("/api/v1/conversations/{own_group}/participants"),
                json!({"extension_ids": [foreign_ext]}),
            )
            .await;
        assert_error(
            &add,
            404,
            "not_found",
            &format!("{label}: adding a foreign extension"),
        );
        let remove = client
            .call(
                "DELETE",
                &format!("/api/v1/conversations/{own_group}/participants/{foreign_ext}"),
                None,
            )
            .await;
        assert!(
            remove.status == 404 || remove.status == 422,
            "{label}: removing a foreign extension: {} {}",
            remove.status,
            remove.body
        );
        assert_eq!(
            client
                .call(
                    "POST",
                    &format!("/api/v1/conversations/{own_group}/leave"),
                    None
                )
                .await
                .status,
            204
        );
    }

    // Administrators address the other organization's extensions by id.
    for (admin, foreign) in [(&xavier, [1, 2]), (&alice, [xavier.id, yolanda.id])] {
        for ext in foreign {
            for ep in admin_endpoints_by_id(ext) {
                let a = request(&server.base, Cred::Bearer(&admin.token), &ep).await;
                assert_error(
                    &a,
                    404,
                    "not_found",
                    &format!("cross-organization {}", ep.name()),
                );
            }
        }
    }

    // No list of one organization mentions the other.
    let demo_secrets = [
        DEMO_NAMES.as_slice(),
        &["Demo planning", "demo secret", "Demo Company"],
    ]
    .concat();
    let other_secrets = [
        OTHER_NAMES.as_slice(),
        &["Other planning", "other secret", "\"Other\""],
    ]
    .concat();
    for (client, own_ids, foreign_secrets, label) in [
        (&xavier, &other_ids, &demo_secrets, "other's admin"),
        (&yolanda, &other_ids, &demo_secrets, "other's member"),
        (&alice, &demo_ids, &other_secrets, "demo's admin"),
        (&bob, &demo_ids, &other_secrets, "demo's member"),
    ] {
        let mut lists = vec![
            ("/api/v1/extensions", client.get("/api/v1/extensions").await),
            (
                "/api/v1/conversations",
                client.get("/api/v1/conversations").await,
            ),
            ("/api/v1/me", client.get("/api/v1/me").await),
        ];
        if client.id == xavier.id || client.id == alice.id {
            lists.push((
                "/api/v1/admin/extensions",
                client.get("/api/v1/admin/extensions").await,
            ));
            lists.push((
                "/api/v1/admin/organization",
                client.get("/api/v1/admin/organization").await,
            ));
        }
        for (path, a) in lists {
            assert_eq!(a.status, 200, "{label} {path}: {}", a.body);
            assert_mentions_none(&a.body, foreign_secrets, &format!("{label} {path}"));
            if path != "/api/v1/me" && path != "/api/v1/admin/organization" {
                let ids = ids_in(&a.body);
                assert!(!ids.is_empty(), "{label} {path} lists something");
                let conversation_ids: BTreeSet<i64> = a.body["conversations"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|c| c["id"].as_i64())
                    .collect();
                let extension_ids: BTreeSet<i64> =
                    ids.difference(&conversation_ids).copied().collect();
                assert!(
                    extension_ids.is_subset(own_ids),
                    "{label} {path} lists foreign extensions: {extension_ids:?}"
                );
            }
        }
        let foreign_conversations = if own_ids == &demo_ids {
            [other_direct, other_group]
        } else {
            [demo_direct, demo_group]
        };
        let listed = ids_in(
            &json!({"conversations": client.get("/api/v1/conversations").await.body["conversations"]}),
        );
        for c in foreign_conversations {
            assert!(
                !client.get("/api/v1/conversations").await.body["conversations"]
                    .as_array()
                    .expect("list")
                    .iter()
                    .any(|x| x["id"] == c),
                "{label} lists foreign conversation {c} ({listed:?})"
            );
        }
    }

    // Nothing of either organization changed.
    let demo_after = (
        alice.get("/api/v1/conversations").await.body,
        alice.get("/api/v1/admin/extensions").await.body,
        alice.get("/api/v1/admin/organization").await.body,
    );
    // Only the "Own group" each created and left changed the lists; compare
    // the conversations that existed before.
    assert_eq!(
        demo_after.1, demo_before.1,
        "demo's extensions are unchanged"
    );
    assert_eq!(demo_after.2, demo_before.2, "demo's settings are unchanged");
    for c in demo_before.0["conversations"].as_array().expect("list") {
        assert!(
            demo_after.0["conversations"]
                .as_array()
                .expect("list")
                .contains(c),
            "demo conversation unchanged: {c}"
        );
    }
    let other_after = (
        xavier.get("/api/v1/admin/extensions").await.body,
        xavier.get("/api/v1/admin/organization").await.body,
    );
    assert_eq!(
        other_after.0, other_before.1,
        "other's extensions are unchanged"
    );
    assert_eq!(
        other_after.1, other_before.2,
        "other's settings are unchanged"
    );
    for c in other_before.0["conversations"].as_array().expect("list") {
        assert!(
            xavier.get("/api/v1/conversations").await.body["conversations"]
                .as_array()
                .expect("list")
                .contains(c),
            "other conversation unchanged: {c}"
        );
    }
    for (org, number) in [("demo", "102"), ("other", "102")] {
        let a = sign_in_answer(&server, org, number, PASSWORD).await;
        assert_eq!(
            a.status, 200,
            "{org}/{number} still signs in with the old password"
        );
    }

    // Live events never cross organizations.
    alice.send(demo_direct, "demo live").await;
    bob.send(demo_group, "demo live two").await;
    yolanda.send(other_direct, "other marker").await;
    xavier.send(other_group, "other live").await;
    bob.send(demo_direct, "demo marker").await;
    // Both sockets heard their own organization's changes made above; skip
    // to the markers, checking that nothing of the other organization came.
    skip_to_marker(
        &mut xavier_ws,
        &[demo_direct, demo_group],
        &demo_secrets,
        "other marker",
    )
    .await;
    skip_to_marker(
        &mut alice_ws,
        &[other_direct, other_group],
        &other_secrets,
        "demo marker",
    )
    .await;
}

/// Reads frames up to the message `marker`, asserting that none concerns the
/// `hidden` conversations or mentions any of `secrets`.
async fn skip_to_marker(ws: &mut Ws, hidden: &[i64], secrets: &[&str], marker: &str) {
    loop {
        let frame = ws.next_frame().await.expect("socket closed");
        assert_mentions_none(&frame, secrets, "socket");
        let data = &frame["data"];
        for c in [
            &data["message"]["conversation_id"],
            &data["conversation"]["id"],
            &data["conversation_id"],
        ] {
            if let Some(c) = c.as_i64() {
                assert!(
                    !hidden.contains(&c),
                    "an event of conversation {c}: {frame}"
                );
            }
        }
        if data["message"]["text"] == marker {
            return;
        }
    }
}

// ---------------------------------------------------------------------------
// (c) Non-participants of the same organization.

#[tokio::test]
async fn non_participants_are_refused_everywhere_and_hear_nothing() {
    let server = Server::start();
    let alice = server.sign_in("101").await;
    let bob = server.sign_in("102").await;
    let carol = server.sign_in("103").await;
    let mut alice_ws = alice.ws(None).await;
    let mut bob_ws = bob.ws(None).await;
    let mut carol_ws = carol.ws(None).await;

    let direct = alice.direct_with(bob.id).await;
    let first = alice.send(direct, "between alice and bob").await;
    let group_id = group(&alice, "Alice and Bob", &[bob.id]).await;
    bob.send(group_id, "in the group").await;
    let carols = carol.direct_with(alice.id).await;

    let direct_before = alice
        .get(&format!("/api/v1/conversations/{direct}/messages"))
        .await
        .body;
    let group_before = alice
        .get(&format!("/api/v1/conversations/{group_id}"))
        .await
        .body;

    for c in [direct, group_id] {
        for ext in [bob.id, carol.id, 4] {
            for ep in conversation_endpoints(c, ext) {
                let a = request(&server.base, Cred::Bearer(&carol.token), &ep).await;
                assert_error(
                    &a,
                    404,
                    "not_found",
                    &format!("non-participant {}", ep.name()),
                );
            }
        }
    }
    // Not found looks the same as not existing.
    let missing = carol.get("/api/v1/conversations/999999").await;
    let hidden = carol.get(&format!("/api/v1/conversations/{direct}")).await;
    assert_eq!(missing.status, hidden.status);
    assert_eq!(missing.body["error"]["code"], hidden.body["error"]["code"]);

    assert_eq!(
        alice
            .get(&format!("/api/v1/conversations/{direct}/messages"))
            .await
            .body,
        direct_before,
        "the direct chat is unchanged"
    );
    assert_eq!(
        alice
            .get(&format!("/api/v1/conversations/{group_id}"))
            .await
            .body,
        group_before,
        "the group is unchanged"
    );
    let carol_list = carol.get("/api/v1/conversations").await.body;
    let listed: Vec<i64> = carol_list["conversations"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|c| c["id"].as_i64())
        .collect();
    assert_eq!(
        listed,
        vec![carols],
        "carol lists only her own conversation"
    );

    // Typing in someone else's conversation is refused on the socket too.
    carol_ws
        .send(json!({"type": "typing", "conversation_id": direct}))
        .await;
    let refused = carol_ws.next_of("error").await;
    assert_eq!(refused["data"]["code"], "not_found");
    carol_ws
        .send(json!({"type": "read", "conversation_id": direct, "message_id": first["id"]}))
        .await;
    let refused = carol_ws.next_of("error").await;
    assert_eq!(refused["data"]["code"], "not_found");

    // Everything that happens in the two conversations passes carol by.
    alice.send(direct, "still private").await;
    let read = bob
        .post(
            &format!("/api/v1/conversations/{direct}/read"),
            json!({"message_id": first["id"]}),
        )
        .await;
    assert_eq!(read.status, 200, "{}", read.body);
    let renamed = alice
        .call(
            "PATCH",
            &format!("/api/v1/conversations/{group_id}"),
            Some(json!({"name": "Renamed privately"})),
        )
        .await;
    assert_eq!(renamed.status, 200, "{}", renamed.body);
    bob_ws
        .send(json!({"type": "typing", "conversation_id": group_id}))
        .await;
    // Once alice has the typing frame, every recipient's queue has it.
    let typing = alice_ws.next_of("typing").await;
    assert_eq!(typing["data"]["conversation_id"], group_id);
    alice.send(carols, "marker for carol").await;
    assert_hears_nothing_of(
        &mut carol_ws,
        &[direct, group_id],
        "marker for carol",
        "carol",
    )
    .await;
}

#[tokio::test]
async fn a_removed_participant_is_refused_and_hears_nothing_after_the_removal() {
    let server = Server::start();
    let alice = server.sign_in("101").await;
    let dan = server.sign_in("104").await;
    let group_id = group(&alice, "Temporary", &[2]).await;
    let dans = dan.direct_with(alice.id).await;
    let mut dan_ws = dan.ws(None).await;

    let added = alice
        .post(
            &format!("/api/v1/conversations/{group_id}/participants"),
            json!({"extension_ids": [dan.id]}),
        )
        .await;
    assert_eq!(added.status, 200, "{}", added.body);
    let welcome = dan_ws.next_of("message.created").await;
    assert_eq!(welcome["data"]["message"]["system"]["action"], "added");
    assert_eq!(
        dan.get(&format!("/api/v1/conversations/{group_id}"))
            .await
            .status,
        200
    );

    let removed = alice
        .call(
            "DELETE",
            &format!("/api/v1/conversations/{group_id}/participants/{}", dan.id),
            None,
        )
        .await;
    assert_eq!(removed.status, 200, "{}", removed.body);
    let removal = dan_ws.next_of("message.created").await;
    assert_eq!(removal["data"]["message"]["system"]["action"], "removed");
    let update = dan_ws.next_of("conversation.updated").await;
    assert!(
        !update["data"]["conversation"]["participants"]
            .as_array()
            .expect("participants")
            .iter()
            .any(|p| p["id"] == dan.id),
        "dan learns he is no longer a participant: {update}"
    );

    for ep in conversation_endpoints(group_id, 2) {
        let a = request(&server.base, Cred::Bearer(&dan.token), &ep).await;
        assert_error(
            &a,
            404,
            "not_found",
            &format!("removed participant {}", ep.name()),
        );
    }
    alice.send(group_id, "after dan left").await;
    alice
        .call(
            "PATCH",
            &format!("/api/v1/conversations/{group_id}"),
            Some(json!({"name": "Without Dan"})),
        )
        .await;
    alice.send(dans, "marker for dan").await;
    assert_hears_nothing_of(&mut dan_ws, &[group_id], "marker for dan", "dan").await;

    // Resuming from before the removal replays the removal but nothing after.
    let cursor = welcome["cursor"].as_str().expect("cursor");
    let replayed = dan.ws(Some(cursor)).await.take_replayed();
    let last_of_group = replayed
        .iter()
        .rposition(|f| {
            f["data"]["message"]["conversation_id"] == group_id
                || f["data"]["conversation"]["id"] == group_id
        })
        .expect("the removal is replayed");
    assert_eq!(
        replayed[last_of_group]["type"], "conversation.updated",
        "{replayed:?}"
    );
    assert!(
        replayed
            .iter()
            .any(|f| f["data"]["message"]["system"]["action"] == "removed"),
        "{replayed:?}"
    );
    assert!(
        !replayed
            .iter()
            .any(|f| f["data"]["message"]["text"] == "after dan left"
                || f["data"]["conversation"]["name"] == "Without Dan"),
        "nothing after the removal is replayed: {replayed:?}"
    );
    assert_eq!(
        replayed
            .last()
            .map(|f| f["data"]["message"]["text"].clone()),
        Some(json!("marker for dan"))
    );
    let history = dan
        .get(&format!("/api/v1/conversations/{group_id}/messages"))
        .await;
    assert_error(&history, 404, "not_found", "history after removal");
}

// ---------------------------------------------------------------------------
// (d) Administrators only.

#[tokio::test]
async fn members_get_403_on_every_admin_endpoint() {
    let server = Server::start();
    let alice = server.sign_in("101").await;
    let bob = server.sign_in("102").await;
    let extensions_before = alice.get("/api/v1/admin/extensions").await.body;
    let org_before = alice.get("/api/v1/admin/organization").await.body;

    for ext in [bob.id, alice.id, 3, 999_999] {
        for ep in admin_endpoints(ext) {
            let a = request(&server.base, Cred::Bearer(&bob.token), &ep).await;
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
        sign_in_answer(&server, "demo", "101", PASSWORD)
            .await
            .status,
        200,
        "alice's password is unchanged"
    );
}

// ---------------------------------------------------------------------------
// (e) Cookies.

fn set_cookies(a: &Answer) -> Vec<String> {
    a.headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().expect("ascii").to_owned())
        .collect()
}

fn cookie_attributes(cookie: &str) -> BTreeSet<String> {
    cookie
        .split(';')
        .skip(1)
        .map(|a| a.trim().to_ascii_lowercase())
        .collect()
}

#[tokio::test]
async fn sign_in_sets_a_strict_http_only_session_cookie() {
    let server = Server::start();
    let signed = sign_in_answer(&server, "demo", "102", PASSWORD).await;
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
    let failed = sign_in_answer(&server, "demo", "102", "wrong password").await;
    assert_error(&failed, 401, "invalid_credentials", "wrong password");
    assert!(set_cookies(&failed).is_empty());
}

#[tokio::test]
async fn cookie_changes_need_the_csrf_token() {
    let server = Server::start();
    let signed = sign_in_answer(&server, "demo", "102", PASSWORD).await;
    let token = signed.body["token"].as_str().expect("token").to_owned();
    let csrf = signed.body["csrf_token"].as_str().expect("csrf").to_owned();
    let bob = server.sign_in("102").await;
    let conversation = bob.direct_with(1).await;
    let path = format!("/api/v1/conversations/{conversation}/messages");

    let reads = Endpoint::new("GET", "/api/v1/me", Payload::Empty);
    let a = request(
        &server.base,
        Cred::Cookie {
            token: &token,
            csrf: None,
        },
        &reads,
    )
    .await;
    assert_eq!(a.status, 200, "reading needs no CSRF token: {}", a.body);

    // Every state-changing endpoint refuses a cookie without the token.
    let mut changes: Vec<Endpoint> = own_endpoints(3)
        .into_iter()
        .chain(conversation_endpoints(conversation, 3))
        .chain(admin_endpoints(3))
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
            let a = request(
                &server.base,
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
    let other = sign_in_answer(&server, "demo", "102", PASSWORD).await;
    let other_csrf = other.body["csrf_token"].as_str().expect("csrf");
    assert_ne!(other_csrf, csrf);
    let send = Endpoint::new(
        "POST",
        path.clone(),
        Payload::Json(json!({"text": "with the right token", "idempotency_key": uuid_like()})),
    );
    let a = request(
        &server.base,
        Cred::Cookie {
            token: &token,
            csrf: Some(other_csrf),
        },
        &send,
    )
    .await;
    assert_error(&a, 403, "csrf_failed", "another session's CSRF token");

    let a = request(
        &server.base,
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
    let a = request(
        &server.base,
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
    let signed = sign_in_answer(&server, "demo", "102", PASSWORD).await;
    let token = signed.body["token"].as_str().expect("token");
    let cookie = ("cookie", format!("sb_session={token}"));

    for origin in [
        "http://evil.example".to_owned(),
        format!("https://{}.evil.example", server.addr()),
        "null".to_owned(),
    ] {
        let refused = ws_attempt(&server, &[cookie.clone(), ("origin", origin.clone())])
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
    let mut ws = ws_attempt(&server, &[cookie.clone(), ("origin", own)])
        .await
        .unwrap_or_else(|e| panic!("same-origin websocket refused: {e:?}"));
    ws.send(json!({"type": "ping"})).await;
    assert_eq!(ws.next_of("pong").await["type"], "pong");

    // A bearer token is not a browser's ambient credential.
    let bearer_with_origin = [
        ("authorization", format!("Bearer {token}")),
        ("origin", "http://evil.example".to_owned()),
    ];
    assert!(ws_attempt(&server, &bearer_with_origin).await.is_ok());
}

// ---------------------------------------------------------------------------
// (f) Revocation.

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
        let a = request(&server.base, Cred::Bearer(&first.token), &ep).await;
        assert_error(
            &a,
            401,
            "unauthenticated",
            &format!("signed-out {}", ep.name()),
        );
    }
    let refused = ws_attempt(&server, &bearer(&first.token))
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
    let signed = sign_in_answer(&server, "demo", "103", PASSWORD).await;
    let token = signed.body["token"].as_str().expect("token");
    let csrf = signed.body["csrf_token"].as_str().expect("csrf");
    let out = Endpoint::new("POST", "/api/v1/auth/sign-out", Payload::Empty);
    let a = request(
        &server.base,
        Cred::Cookie {
            token,
            csrf: Some(csrf),
        },
        &out,
    )
    .await;
    assert_eq!(a.status, 204, "{}", a.body);
    let me = Endpoint::new("GET", "/api/v1/me", Payload::Empty);
    let a = request(&server.base, Cred::Cookie { token, csrf: None }, &me).await;
    assert_error(&a, 401, "unauthenticated", "cookie after sign-out");
    let a = request(&server.base, Cred::Bearer(token), &me).await;
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
            ws_attempt(&server, &bearer(&session.token))
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
    let old = sign_in_answer(&server, "demo", "102", PASSWORD).await;
    assert_error(&old, 401, "invalid_credentials", "the old password");
    let new = sign_in_answer(&server, "demo", "102", "a brand new password").await;
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
        sign_in_answer(&server, "demo", "102", "my new password")
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
        ws_attempt(&server, &bearer(&bob.token))
            .await
            .err()
            .map(|e| e.0),
        Some(401)
    );
    let again = sign_in_answer(&server, "demo", "102", PASSWORD).await;
    assert_error(&again, 403, "forbidden", "disabled sign-in");
    assert!(set_cookies(&again).is_empty());
    let wrong = sign_in_answer(&server, "demo", "102", "wrong password").await;
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
        sign_in_answer(&server, "demo", "102", PASSWORD)
            .await
            .status,
        200
    );
}

// ---------------------------------------------------------------------------
// (g) Rate limiting.

#[tokio::test]
async fn five_wrong_passwords_block_the_account() {
    let server = Server::start();
    for attempt in 1..=5 {
        let a = sign_in_answer(&server, "demo", "102", &format!("wrong password {attempt}")).await;
        assert_error(
            &a,
            401,
            "invalid_credentials",
            &format!("wrong attempt {attempt}"),
        );
    }
    let blocked = sign_in_answer(&server, "demo", "102", PASSWORD).await;
    assert_error(
        &blocked,
        429,
        "rate_limited",
        "sixth attempt with the right password",
    );
    let retry_after: u64 = blocked
        .headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("Retry-After in seconds: {:?}", blocked.headers));
    assert!(retry_after >= 1, "{retry_after}");
    assert!(set_cookies(&blocked).is_empty());

    // The brake is per account: colleagues sign in as usual.
    assert_eq!(
        sign_in_answer(&server, "demo", "103", PASSWORD)
            .await
            .status,
        200
    );
    // A wrong organization or unknown extension counts as a failure too, and
    // answers like a wrong password.
    let unknown = sign_in_answer(&server, "demo", "199", PASSWORD).await;
    assert_error(&unknown, 401, "invalid_credentials", "unknown extension");
    let unknown = sign_in_answer(&server, "nowhere", "101", PASSWORD).await;
    assert_error(&unknown, 401, "invalid_credentials", "unknown organization");
}

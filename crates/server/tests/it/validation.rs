//! Limits and malformed input: every refusal has the API's error shape and
//! changes nothing; the service endpoints (OpenAPI document, health, metrics)
//! answer as operators and clients expect.

use crate::common::{Answer, Client, PUBLIC_ROUTES, Server, answer, assert_error, uuid_like};
use serde_json::{Value, json};

/// A request with a raw body and content type, authenticated by bearer token.
async fn raw(
    client: &Client,
    method: &str,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> Answer {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let res = client
        .http
        .request(method, format!("{}{path}", client.base))
        .bearer_auth(&client.token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("request");
    answer(res).await
}

async fn send_text(client: &Client, conversation: i64, text: &str) -> Answer {
    client
        .post(
            &format!("/api/v1/conversations/{conversation}/messages"),
            json!({"text": text, "idempotency_key": uuid_like()}),
        )
        .await
}

#[tokio::test]
async fn message_text_is_limited_to_ten_thousand_characters() {
    let server = Server::start();
    let alice = server.sign_in("101").await;
    let conversation = alice.direct_with(2).await;

    let longest = "a".repeat(10_000);
    let ok = send_text(&alice, conversation, &longest).await;
    assert_eq!(
        ok.status, 201,
        "10,000 characters are accepted: {}",
        ok.body
    );
    assert_eq!(
        ok.body["message"]["text"].as_str().map(str::len),
        Some(10_000)
    );

    // Characters, not bytes: 10,000 two-byte characters are fine too.
    let accented = "é".repeat(10_000);
    assert_eq!(send_text(&alice, conversation, &accented).await.status, 201);

    let before = alice.whole_history(conversation).await;
    let too_long = send_text(&alice, conversation, &"a".repeat(10_001)).await;
    assert_error(&too_long, 422, "validation_failed", "10,001 characters");
    let message = too_long.body["error"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message.contains("text"),
        "the message names the field: {message}"
    );

    let empty = send_text(&alice, conversation, "   ").await;
    assert_error(&empty, 422, "validation_failed", "blank text");

    assert_eq!(
        alice.whole_history(conversation).await,
        before,
        "refused sends change nothing"
    );
}

#[tokio::test]
async fn group_names_are_limited_to_one_hundred_characters() {
    let server = Server::start();
    let alice = server.sign_in("101").await;

    let ok = alice
        .post(
            "/api/v1/conversations/group",
            json!({"name": "n".repeat(100), "member_ids": [2]}),
        )
        .await;
    assert_eq!(ok.status, 201, "100 characters are accepted: {}", ok.body);
    let group = ok.body["conversation"]["id"].as_i64().expect("id");

    let listed = alice.get("/api/v1/conversations").await.body;
    let too_long = alice
        .post(
            "/api/v1/conversations/group",
            json!({"name": "n".repeat(101), "member_ids": [2]}),
        )
        .await;
    assert_error(
        &too_long,
        422,
        "validation_failed",
        "101-character group name",
    );
    let message = too_long.body["error"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message.contains("name"),
        "the message names the field: {message}"
    );

    let rename = alice.rename(group, &"r".repeat(101)).await;
    assert_error(&rename, 422, "validation_failed", "101-character rename");

    assert_eq!(
        alice.get("/api/v1/conversations").await.body,
        listed,
        "no group was created or renamed"
    );
    let renamed = alice.rename(group, &"r".repeat(100)).await;
    assert_eq!(renamed.status, 200, "{}", renamed.body);
}

/// JSON as the most cautious encoders write it: every character of every
/// string a `\u` escape, and those outside the Basic Multilingual Plane an
/// escaped surrogate pair.
fn escaped_json(fields: &[(&str, &str)]) -> String {
    fn escaped(s: &str) -> String {
        let mut out = String::from("\"");
        for c in s.chars() {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
        out.push('"');
        out
    }
    let fields: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}: {}", escaped(k), escaped(v)))
        .collect();
    format!("{{ {} }}", fields.join(", "))
}

#[tokio::test]
async fn the_longest_message_fits_whatever_its_json_escapes() {
    let server = Server::start();
    let alice = server.sign_in("101").await;
    let conversation = alice.direct_with(2).await;
    let path = format!("/api/v1/conversations/{conversation}/messages");

    // Each character outside the BMP is 12 bytes escaped: 120,000 in all.
    let longest = "\u{1F600}".repeat(10_000);
    let key = "k".repeat(128);
    let body = escaped_json(&[("text", &longest), ("idempotency_key", &key)]);
    assert!(body.len() > 120_000, "{}", body.len());
    let sent = raw(&alice, "POST", &path, "application/json", body.into_bytes()).await;
    assert_eq!(sent.status, 201, "{}", sent.body);
    assert_eq!(sent.body["message"]["text"], longest.as_str());

    // One character more is refused for its length, not for its bytes.
    let longer = format!("{longest}a");
    let body = escaped_json(&[("text", &longer), ("idempotency_key", &uuid_like())]);
    let refused = raw(&alice, "POST", &path, "application/json", body.into_bytes()).await;
    assert_error(
        &refused,
        422,
        "validation_failed",
        "10,001 escaped characters",
    );
}

#[tokio::test]
async fn text_that_shows_nothing_is_refused_like_empty_text() {
    let server = Server::start();
    let alice = server.sign_in("101").await;
    let conversation = alice.direct_with(2).await;
    let before = alice.whole_history(conversation).await;
    for blank in [
        "\u{200B}",
        "\u{FEFF}\u{200D}\u{2060}",
        " \u{00AD}\n\u{FE0F} ",
    ] {
        let sent = send_text(&alice, conversation, blank).await;
        assert_error(&sent, 422, "validation_failed", &format!("text {blank:?}"));
        let group = alice
            .post(
                "/api/v1/conversations/group",
                json!({"name": blank, "member_ids": [2]}),
            )
            .await;
        assert_error(&group, 422, "validation_failed", &format!("name {blank:?}"));
    }
    assert_eq!(alice.whole_history(conversation).await, before);
    assert_eq!(
        alice.get("/api/v1/conversations").await.body["conversations"]
            .as_array()
            .map(Vec::len),
        Some(1),
        "no group was created"
    );
}

#[tokio::test]
async fn bodies_over_the_limit_are_refused_and_change_nothing() {
    let server = Server::start();
    let alice = server.sign_in("101").await;
    let conversation = alice.direct_with(2).await;
    alice.send(conversation, "before").await;
    let before = alice.whole_history(conversation).await;

    let body = json!({"text": "x".repeat(200 * 1024), "idempotency_key": uuid_like()});
    let big = raw(
        &alice,
        "POST",
        &format!("/api/v1/conversations/{conversation}/messages"),
        "application/json",
        body.to_string().into_bytes(),
    )
    .await;
    assert_error(&big, 413, "payload_too_large", "200 KiB send");

    let group = raw(
        &alice,
        "POST",
        "/api/v1/conversations/group",
        "application/json",
        json!({"name": "big", "member_ids": vec![2; 40_000]})
            .to_string()
            .into_bytes(),
    )
    .await;
    assert_error(&group, 413, "payload_too_large", "large group body");

    assert_eq!(alice.whole_history(conversation).await, before);
    assert_eq!(
        alice.get("/api/v1/conversations").await.body["conversations"]
            .as_array()
            .map(Vec::len),
        Some(1),
        "no group was created"
    );
}

#[tokio::test]
async fn malformed_json_unknown_fields_and_wrong_content_types_are_refused() {
    let server = Server::start();
    let alice = server.sign_in("101").await;
    let conversation = alice.direct_with(2).await;
    let path = format!("/api/v1/conversations/{conversation}/messages");
    let before = alice.whole_history(conversation).await;

    for bad in [r#"{"text": "hi""#, "not json", "", r#"{"text": "hi",}"#] {
        let a = raw(
            &alice,
            "POST",
            &path,
            "application/json",
            bad.as_bytes().to_vec(),
        )
        .await;
        assert_error(&a, 400, "bad_request", &format!("malformed JSON {bad:?}"));
    }

    let unknown = raw(
        &alice,
        "POST",
        &path,
        "application/json",
        br#"{"text": "hi", "colour": "red"}"#.to_vec(),
    )
    .await;
    assert_error(&unknown, 422, "validation_failed", "unknown field");
    let message = unknown.body["error"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message.contains("colour"),
        "the message names the field: {message}"
    );

    let wrong_type = raw(
        &alice,
        "POST",
        &path,
        "application/json",
        br#"{"text": 5}"#.to_vec(),
    )
    .await;
    assert_error(
        &wrong_type,
        422,
        "validation_failed",
        "text of the wrong type",
    );

    // A body in the wrong content type is refused in the error shape.
    for (method, path, content_type, body, what) in [
        (
            "POST",
            path.as_str(),
            "text/plain",
            br#"{"text": "hi"}"#.as_slice(),
            "a message as text/plain",
        ),
        (
            "PATCH",
            "/api/v1/me/settings",
            "text/plain",
            b"{}".as_slice(),
            "settings as text/plain",
        ),
        // CSV import wants text/csv.
        (
            "POST",
            "/api/v1/admin/extensions/import",
            "application/json",
            b"number,name,password\n150,Zed Zero,long enough pw\n".as_slice(),
            "a CSV import as application/json",
        ),
    ] {
        let a = raw(&alice, method, path, content_type, body.to_vec()).await;
        assert_error(&a, 415, "unsupported_media_type", what);
    }
    // No content type at all is the same refusal.
    let untyped = alice
        .http
        .post(format!("{}{path}", alice.base))
        .bearer_auth(&alice.token)
        .body(r#"{"text": "hi"}"#)
        .send()
        .await
        .expect("request");
    assert_error(
        &answer(untyped).await,
        415,
        "unsupported_media_type",
        "a message without a content type",
    );

    let bad_path = alice.get("/api/v1/conversations/seven/messages").await;
    assert_error(&bad_path, 400, "bad_request", "non-numeric conversation id");

    assert_eq!(alice.whole_history(conversation).await, before);
    let directory = alice.get("/api/v1/admin/extensions").await;
    assert_eq!(
        directory.body["extensions"].as_array().map(Vec::len),
        Some(5)
    );
}

#[tokio::test]
async fn unknown_endpoints_answer_404_in_the_error_shape() {
    let server = Server::start();
    let alice = server.sign_in("101").await;
    for path in [
        "/api/v1/no-such-thing",
        "/api/v2/conversations",
        "/api/v1/conversations/1/everything",
        "/no-such-page.html",
    ] {
        let a = alice.get(path).await;
        assert_error(&a, 404, "not_found", &format!("GET {path}"));
    }
}

#[tokio::test]
async fn unknown_endpoints_answer_404_whatever_the_method() {
    let server = Server::start();
    let alice = server.sign_in("101").await;
    for (method, path) in [
        ("POST", "/api/v1/no-such-thing"),
        ("PATCH", "/api/v1/me/everything"),
        ("DELETE", "/api/v1/conversations/1/everything"),
    ] {
        let a = alice.call(method, path, Some(json!({}))).await;
        assert_error(&a, 404, "not_found", &format!("{method} {path}"));
    }
    // A known path with a method it does not take is a different answer.
    let a = alice.call("DELETE", "/api/v1/me", None).await;
    assert_error(&a, 405, "method_not_allowed", "DELETE /api/v1/me");
}

#[tokio::test]
async fn history_parameters_are_checked() {
    let server = Server::start();
    let alice = server.sign_in("101").await;
    let conversation = alice.direct_with(2).await;
    let first = alice.send(conversation, "one").await;
    let base = format!("/api/v1/conversations/{conversation}/messages");

    for query in [
        "limit=0",
        "limit=201",
        "before=1&after=1",
        "before=5&after=1&limit=10",
    ] {
        let a = alice.get(&format!("{base}?{query}")).await;
        assert_error(&a, 422, "validation_failed", query);
    }
    for query in ["limit=abc", "before=x", "limit=-1", "colour=red"] {
        let a = alice.get(&format!("{base}?{query}")).await;
        assert_error(&a, 400, "bad_request", query);
    }
    for query in [
        "limit=1",
        "limit=200",
        &format!("after={}", first["id"]),
        "before=1",
    ] {
        let a = alice.get(&format!("{base}?{query}")).await;
        assert_eq!(a.status, 200, "{query}: {}", a.body);
    }
}

fn served_paths() -> Vec<(&'static str, &'static str)> {
    vec![
        ("post", "/api/v1/auth/sign-in"),
        ("post", "/api/v1/auth/sign-out"),
        ("get", "/api/v1/me"),
        ("patch", "/api/v1/me/settings"),
        ("get", "/api/v1/me/numbers"),
        ("put", "/api/v1/me/numbers/default"),
        ("post", "/api/v1/me/password"),
        ("get", "/api/v1/extensions"),
        ("get", "/api/v1/conversations"),
        ("post", "/api/v1/conversations/direct"),
        ("post", "/api/v1/conversations/group"),
        ("get", "/api/v1/conversations/{id}"),
        ("patch", "/api/v1/conversations/{id}"),
        ("post", "/api/v1/conversations/{id}/participants"),
        (
            "delete",
            "/api/v1/conversations/{id}/participants/{extension_id}",
        ),
        ("post", "/api/v1/conversations/{id}/leave"),
        ("get", "/api/v1/conversations/{id}/messages"),
        ("post", "/api/v1/conversations/{id}/messages"),
        ("post", "/api/v1/conversations/{id}/read"),
        ("get", "/api/v1/conversations/{id}/receipts"),
        ("get", "/api/v1/admin/extensions"),
        ("post", "/api/v1/admin/extensions"),
        ("patch", "/api/v1/admin/extensions/{id}"),
        ("post", "/api/v1/admin/extensions/{id}/password"),
        ("post", "/api/v1/admin/extensions/import"),
        ("get", "/api/v1/admin/jobs/{id}"),
        ("get", "/api/v1/admin/organization"),
        ("patch", "/api/v1/admin/organization"),
        ("post", "/api/v1/conversations/sms"),
        ("post", "/api/v1/sms/segments"),
        ("post", "/api/v1/media"),
        ("get", "/api/v1/media/{id}"),
        ("get", "/api/v1/admin/carriers"),
        ("post", "/api/v1/admin/carriers"),
        ("get", "/api/v1/admin/numbers"),
        ("post", "/api/v1/admin/numbers"),
        ("patch", "/api/v1/admin/numbers/{id}"),
        (
            "put",
            "/api/v1/admin/numbers/{id}/extensions/{extension_id}",
        ),
        (
            "delete",
            "/api/v1/admin/numbers/{id}/extensions/{extension_id}",
        ),
    ]
}

#[tokio::test]
async fn the_openapi_document_lists_every_served_path() {
    let server = Server::start();
    let http = crate::common::http();
    let res = http
        .get(format!("{}/api/v1/openapi.json", server.base))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 200);
    let content_type = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let doc: Value = serde_json::from_str(&res.text().await.expect("body")).expect("valid JSON");
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "openapi 3.x: {}",
        doc["openapi"]
    );
    assert!(doc["info"]["title"].is_string());
    let paths = doc["paths"].as_object().expect("paths");

    for (method, path) in served_paths() {
        assert!(
            paths.get(path).is_some_and(|p| p.get(method).is_some()),
            "the document lists {} {path}",
            method.to_uppercase()
        );
    }

    // And the other way round: everything the document lists is served.
    // Unauthenticated, each answers 401 (or, for sign-in, a refusal of the
    // empty body), never 404 or 405.
    let listed: usize = paths
        .values()
        .filter_map(Value::as_object)
        .map(|o| o.len())
        .sum();
    assert_eq!(
        listed,
        served_paths().len(),
        "no undocumented extras: {:?}",
        paths.keys()
    );
    for (path, operations) in paths {
        assert!(path.starts_with("/api/v1/"), "{path}");
        let concrete = path.replace("{id}", "1").replace("{extension_id}", "2");
        for method in operations.as_object().expect("operations").keys() {
            let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            let a = answer(
                http.request(m, format!("{}{concrete}", server.base))
                    .json(&json!({}))
                    .send()
                    .await
                    .expect("request"),
            )
            .await;
            assert!(
                a.status != 404 && a.status != 405,
                "{method} {path} is documented but answers {}",
                a.status
            );
            assert!(
                a.body["error"]["code"].is_string(),
                "{method} {path}: {}",
                a.body
            );
        }
    }
}

/// The served OpenAPI document, parsed.
async fn openapi_document(server: &Server) -> Value {
    let res = crate::common::http()
        .get(format!("{}/api/v1/openapi.json", server.base))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 200);
    res.json().await.expect("the document is JSON")
}

/// Every `{name}` of a path template.
fn template_names(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .collect()
}

/// Where a `$ref` inside `value` does not resolve, or an object schema says
/// nothing of its properties (a value described as just "an object").
fn schema_faults(doc: &Value, value: &Value, at: &str, faults: &mut Vec<String>) {
    match value {
        Value::Object(o) => {
            if let Some(target) = o.get("$ref").and_then(Value::as_str) {
                let resolved = target
                    .strip_prefix('#')
                    .and_then(|pointer| doc.pointer(pointer));
                if resolved.is_none() {
                    faults.push(format!("{at}: {target} does not resolve"));
                }
            }
            let is_object = o.get("type").and_then(Value::as_str) == Some("object");
            let says_what = [
                "properties",
                "additionalProperties",
                "allOf",
                "oneOf",
                "anyOf",
            ]
            .iter()
            .any(|k| o.contains_key(*k));
            if is_object && !says_what {
                faults.push(format!("{at}: an object with no properties described"));
            }
            for (k, v) in o {
                schema_faults(doc, v, &format!("{at}/{k}"), faults);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                schema_faults(doc, v, &format!("{at}/{i}"), faults);
            }
        }
        _ => {}
    }
}

/// The rules that keep the document true to the API without a validator:
/// who must sign in, which refusals every kind of operation can meet, where
/// parameters go, and that every answer is described with its real shape.
#[tokio::test]
async fn the_openapi_document_describes_security_refusals_and_parameters() {
    let server = Server::start();
    let doc = openapi_document(&server).await;
    assert_eq!(doc["openapi"], "3.1.0");
    let schemes = doc["components"]["securitySchemes"]
        .as_object()
        .expect("security schemes");
    assert!(schemes.contains_key("bearer") && schemes.contains_key("cookie"));

    let mut faults = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        let in_template = template_names(path);
        for (method, op) in item.as_object().expect("path item") {
            let name = format!("{} {path}", method.to_uppercase());
            let mut fault = |what: String| faults.push(format!("{name}: {what}"));
            let responses = op["responses"].as_object().expect("responses");
            let documents = |status: &str| responses.contains_key(status);

            let public = PUBLIC_ROUTES
                .iter()
                .any(|(m, p)| m.eq_ignore_ascii_case(method) && p == path);
            let security = op["security"].as_array().cloned().unwrap_or_default();
            if public {
                if !security.is_empty() {
                    fault("is public but asks for a credential".into());
                }
            } else {
                if security.is_empty() {
                    fault("needs a credential but has no security requirement".into());
                }
                for requirement in &security {
                    for scheme in requirement.as_object().expect("requirement").keys() {
                        if !schemes.contains_key(scheme) {
                            fault(format!("names the unknown security scheme {scheme}"));
                        }
                    }
                }
                if !documents("401") {
                    fault("does not document 401".into());
                }
                if method != "get" && !documents("403") {
                    fault("is a change but does not document the CSRF 403".into());
                }
                if path.starts_with("/api/v1/admin/") && !documents("403") {
                    fault("is for administrators but does not document 403".into());
                }
            }

            if let Some(body) = op.get("requestBody") {
                if body["content"].get("application/json").is_some() {
                    for status in ["400", "413", "415", "422"] {
                        if !documents(status) {
                            fault(format!("takes JSON but does not document {status}"));
                        }
                    }
                } else if !documents("413") {
                    fault("takes a body but does not document 413".into());
                }
            }

            let parameters = op["parameters"].as_array().cloned().unwrap_or_default();
            for p in &parameters {
                let pname = p["name"].as_str().unwrap_or_default();
                match p["in"].as_str() {
                    Some("path") => {
                        if !in_template.contains(&pname) {
                            fault(format!("path parameter {pname} is not in the template"));
                        }
                        if p["required"] != true {
                            fault(format!("path parameter {pname} is not required"));
                        }
                    }
                    Some("query") => {}
                    other => fault(format!("parameter {pname} is in {other:?}")),
                }
            }
            for t in &in_template {
                let declared = parameters
                    .iter()
                    .any(|p| p["in"] == "path" && p["name"] == *t);
                if !declared {
                    fault(format!("{{{t}}} of the template is not a path parameter"));
                }
            }
            if !parameters.is_empty() && !documents("400") {
                fault("has parameters but does not document 400".into());
            }
            if !in_template.is_empty() && !documents("404") {
                fault("addresses something by id but does not document 404".into());
            }

            for (status, response) in responses {
                let described = response["description"]
                    .as_str()
                    .is_some_and(|d| !d.trim().is_empty());
                if !described {
                    fault(format!("{status} has no description"));
                }
                let is_error = status.starts_with('4') || status.starts_with('5');
                let error_shape = response["content"]["application/json"]["schema"]["$ref"]
                    == "#/components/schemas/ErrorBody";
                if is_error && !error_shape {
                    fault(format!("{status} does not have the error shape"));
                }
                if status.starts_with('2') && status != "204" && response.get("content").is_none() {
                    fault(format!("{status} does not describe its body"));
                }
            }
            for status in ["500", "503"] {
                if !documents(status) {
                    fault(format!("does not document {status}"));
                }
            }
            schema_faults(&doc, op, &name, &mut faults);
        }
    }
    schema_faults(&doc, &doc["components"], "components", &mut faults);
    assert!(
        faults.is_empty(),
        "the OpenAPI document is not true to the API:\n{}",
        faults.join("\n")
    );
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let server = Server::start();
    let http = crate::common::http();
    for path in ["/healthz", "/readyz"] {
        let res = http
            .get(format!("{}{path}", server.base))
            .send()
            .await
            .expect("request");
        assert_eq!(res.status(), 200, "{path}");
    }

    // Give the counters something to count.
    let alice = server.sign_in("101").await;
    let _ws = alice.ws(None).await;
    let conversation = alice.direct_with(2).await;
    alice.send(conversation, "counted").await;

    let res = http
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 200);
    let content_type = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.starts_with("text/plain")
            || content_type.starts_with("application/openmetrics-text"),
        "Prometheus text: {content_type}"
    );
    let text = res.text().await.expect("body");
    for name in [
        "switchboard_websocket_connections",
        "switchboard_messages_stored",
        "switchboard_http_request_duration_seconds",
    ] {
        assert!(
            text.contains(&format!("# TYPE {name}")),
            "{name} is declared:\n{text}"
        );
    }
    let sample = |prefix: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no sample {prefix}:\n{text}"))
    };
    assert_eq!(sample("switchboard_websocket_connections "), 1.0);
    assert!(sample("switchboard_messages_stored") >= 1.0);
    assert!(
        text.lines().any(
            |l| l.starts_with("switchboard_http_request_duration_seconds_count{")
                && l.contains("/api/v1/conversations/{id}/messages")
        ),
        "latency is recorded by route:\n{text}"
    );
}

#[tokio::test]
async fn a_csv_import_over_the_limit_gets_the_json_error_shape() {
    let server = Server::start();
    let alice = server.sign_in("101").await;
    let before = alice.get("/api/v1/admin/extensions").await.body;
    let mut csv = String::from("number,name,password\n");
    let mut n = 1000u32;
    while csv.len() <= 2 * 1024 * 1024 {
        csv.push_str(&format!("{n},Person {n},a long enough password\n"));
        n += 1;
    }
    let a = raw(
        &alice,
        "POST",
        "/api/v1/admin/extensions/import",
        "text/csv",
        csv.into_bytes(),
    )
    .await;
    assert_error(&a, 413, "payload_too_large", "a CSV import over 2 MiB");
    assert!(
        a.headers
            .get("content-type")
            .is_some_and(|v| v.as_bytes().starts_with(b"application/json")),
        "{:?}",
        a.headers
    );
    assert_eq!(alice.get("/api/v1/admin/extensions").await.body, before);
}

/// Reads one HTTP/1.1 answer from `stream`: its head (lower-cased) and body.
async fn read_answer(stream: &mut tokio::net::TcpStream) -> (String, Vec<u8>) {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .expect("a content-length");
            if got.len() >= end + 4 + length {
                return (head, got[end + 4..end + 4 + length].to_vec());
            }
        }
        let n = tokio::time::timeout(crate::common::PATIENCE, stream.read(&mut chunk))
            .await
            .expect("an answer in time")
            .expect("read");
        assert!(n > 0, "closed before a whole answer: {got:?}");
        got.extend_from_slice(&chunk[..n]);
    }
}

#[tokio::test]
async fn an_answer_given_before_the_body_leaves_the_connection_usable_or_closes_it() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = Server::start();
    let mut stream = tokio::net::TcpStream::connect(server.addr())
        .await
        .expect("connect");
    let body = vec![b' '; 60 * 1024];
    let head = format!(
        "POST /api/v1/conversations/1/messages HTTP/1.1\r\nHost: {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        server.addr(),
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("write head");
    stream.write_all(&body[..1024]).await.expect("write part");
    let (answer_head, answer_body) = read_answer(&mut stream).await;
    assert!(answer_head.starts_with("http/1.1 401"), "{answer_head}");
    let error: Value = serde_json::from_slice(&answer_body).expect("JSON");
    assert_eq!(error["error"]["code"], "unauthenticated");

    if answer_head.lines().any(|l| l == "connection: close") {
        // Said so: the server closes, and the client knows to reconnect.
        let mut rest = [0u8; 64];
        let closed = tokio::time::timeout(crate::common::PATIENCE, stream.read(&mut rest))
            .await
            .expect("closed in time");
        assert!(matches!(closed, Ok(0) | Err(_)), "{closed:?}");
    } else {
        // Kept alive: the rest of the body and a next request are served.
        stream.write_all(&body[1024..]).await.expect("write rest");
        let next = format!("GET /healthz HTTP/1.1\r\nHost: {}\r\n\r\n", server.addr());
        stream.write_all(next.as_bytes()).await.expect("write next");
        let (next_head, _) = read_answer(&mut stream).await;
        assert!(next_head.starts_with("http/1.1 200"), "{next_head}");
    }
}

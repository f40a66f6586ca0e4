//! Business numbers and carrier connections through the API: administrators
//! add connections (secrets kept sealed, webhook URLs shown) and numbers
//! (typed in local form, normalized with the organization's country),
//! assign them to extensions, and each extension picks its default.

use crate::common::{Client, Cred, PASSWORD, Server, admin_number_endpoints, assert_error};
use serde_json::{Value, json};

/// A valid Ed25519 public key (the curve's base point), as Telnyx's portal
/// shows one: base64.
const TELNYX_PUBLIC_KEY: &str = "WGZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmY=";
const AUTH_TOKEN: &str = "f3a9c1d2e4b5a6978877665544332211";
const API_KEY_SECRET: &str = "Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0Fe";

fn numbers(a: &Value) -> Vec<Value> {
    a["numbers"].as_array().cloned().unwrap_or_default()
}

async fn add_number(admin: &Client, body: Value) -> Value {
    let a = admin.post("/api/v1/admin/numbers", body.clone()).await;
    assert_eq!(a.status, 201, "add {body}: {}", a.body);
    a.body["number"].clone()
}

async fn twilio(admin: &Client, name: &str) -> Value {
    let a = admin
        .post(
            "/api/v1/admin/carriers",
            json!({
                "kind": "twilio",
                "name": name,
                "account_sid": "AC0123456789abcdef0123456789abcdef",
                "secret": AUTH_TOKEN,
            }),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    a.body["connection"].clone()
}

/// Creates organization "other" with administrator 101 and signs it in.
/// An organization like the demo's, without its simulated numbers: the
/// tests below count connections and numbers from none. Extensions 101
/// (administrator), 102 and 103.
fn acme(server: &Server) {
    server.admin(&["create-org", "--slug", "acme", "--name", "Acme"]);
    for (number, name) in [
        ("101", "Alice Archer"),
        ("102", "Bob Baker"),
        ("103", "Carol Chen"),
    ] {
        let mut args = vec![
            "create-extension",
            "--org",
            "acme",
            "--number",
            number,
            "--name",
            name,
            "--password",
            PASSWORD,
        ];
        if number == "101" {
            args.push("--admin");
        }
        server.admin(&args);
    }
}

async fn other_org(server: &Server) -> Client {
    server.admin(&["create-org", "--slug", "other", "--name", "Other"]);
    server.admin(&[
        "create-extension",
        "--org",
        "other",
        "--number",
        "101",
        "--name",
        "Xavier Other",
        "--password",
        PASSWORD,
        "--admin",
    ]);
    server.sign_in_to("other", "101", PASSWORD).await
}

#[tokio::test]
async fn a_local_number_is_normalized_with_the_organizations_default_country() {
    let server = Server::start();
    let alice = server.sign_in("101").await;
    let me = alice.get("/api/v1/me").await;
    assert_eq!(me.body["organization"]["default_country"], "US");
    let org = alice.get("/api/v1/admin/organization").await;
    assert_eq!(org.body["default_country"], "US");
    let countries = org.body["countries"].as_array().expect("countries");
    assert!(countries.contains(&json!("GB")) && countries.len() > 200);

    let us = add_number(&alice, json!({"number": "(415) 555-2671"})).await;
    assert_eq!(us["number"], "+14155552671");
    assert_eq!(us["display"], "(415) 555-2671");
    assert_eq!(us["sms_enabled"], true, "texting is on unless asked");
    assert_eq!(us["connection_id"], Value::Null);
    assert_eq!(us["extension_ids"], json!([]));

    // The same digits mean another number once the country changes.
    let changed = alice
        .call(
            "PATCH",
            "/api/v1/admin/organization",
            Some(json!({"default_country": "gb"})),
        )
        .await;
    assert_eq!(changed.status, 200, "{}", changed.body);
    assert_eq!(changed.body["default_country"], "GB");
    assert_eq!(changed.body["organization"]["default_country"], "GB");
    assert_eq!(
        changed.body["alert_tone"], "chime",
        "the tone is left alone"
    );
    assert_eq!(
        alice.get("/api/v1/me").await.body["organization"]["default_country"],
        "GB"
    );
    let london = add_number(&alice, json!({"number": "020 7946 0958"})).await;
    assert_eq!(london["number"], "+442079460958");
    assert_eq!(london["display"], "020 7946 0958");
    let listed = alice.get("/api/v1/admin/numbers").await;
    let us_now = numbers(&listed.body)
        .into_iter()
        .find(|n| n["number"] == "+14155552671")
        .expect("listed");
    assert_eq!(
        us_now["display"], "+1 415-555-2671",
        "a number abroad is shown in international form"
    );

    // Bad numbers and countries are refused, naming the field.
    for bad in ["555", "hello", "+1 000 000 0000", ""] {
        let a = alice
            .post("/api/v1/admin/numbers", json!({"number": bad}))
            .await;
        assert_error(&a, 422, "validation_failed", &format!("number {bad:?}"));
        let message = a.body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.starts_with("number:") && message.contains("+14155550100"),
            "{message}"
        );
    }
    for body in [
        json!({"default_country": "XX"}),
        json!({"default_country": "GBR"}),
        json!({"alert_tone": "bell", "default_country": "ZZ"}),
        json!({}),
    ] {
        let a = alice
            .call("PATCH", "/api/v1/admin/organization", Some(body.clone()))
            .await;
        assert_error(
            &a,
            422,
            "validation_failed",
            &format!("organization {body}"),
        );
    }
    let org = alice.get("/api/v1/admin/organization").await;
    assert_eq!(org.body["default_country"], "GB");
    assert_eq!(
        org.body["alert_tone"], "chime",
        "a refused change saves nothing"
    );
}

#[tokio::test]
async fn a_number_is_held_by_one_organization_only() {
    let server = Server::start();
    let alice = server.sign_in("101").await;
    add_number(&alice, json!({"number": "+14155552671"})).await;
    let again = alice
        .post("/api/v1/admin/numbers", json!({"number": "415-555-2671"}))
        .await;
    assert_error(&again, 409, "conflict", "the same number twice");

    let xavier = other_org(&server).await;
    let theirs = xavier
        .post(
            "/api/v1/admin/numbers",
            json!({"number": "+1 415 555 2671"}),
        )
        .await;
    assert_error(&theirs, 409, "conflict", "another organization's number");
    assert!(
        !theirs.body.to_string().contains("Demo"),
        "the conflict does not say whose number it is: {}",
        theirs.body
    );
    assert_eq!(
        numbers(&xavier.get("/api/v1/admin/numbers").await.body),
        Vec::<Value>::new()
    );
}

#[tokio::test]
async fn carrier_connections_show_their_webhook_urls_and_never_their_secrets() {
    let server = Server::start();
    acme(&server);
    let alice = server.sign_in_to("acme", "101", PASSWORD).await;
    let empty = alice.get("/api/v1/admin/carriers").await;
    assert_eq!(empty.status, 200);
    assert_eq!(empty.body["connections"], json!([]));

    let created = alice
        .post(
            "/api/v1/admin/carriers",
            json!({
                "kind": "twilio",
                "name": "Main Twilio",
                "account_sid": "AC0123456789abcdef0123456789abcdef",
                "api_key_sid": "SK0123456789abcdef0123456789abcdef",
                "secret": AUTH_TOKEN,
                "api_key_secret": API_KEY_SECRET,
                "base_url": "http://127.0.0.1:9/",
            }),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let twilio = &created.body["connection"];
    let id = twilio["id"].as_i64().expect("id");
    assert_eq!(twilio["kind"], "twilio");
    assert_eq!(twilio["name"], "Main Twilio");
    assert_eq!(twilio["account_sid"], "AC0123456789abcdef0123456789abcdef");
    assert_eq!(twilio["api_key_sid"], "SK0123456789abcdef0123456789abcdef");
    assert_eq!(twilio["base_url"], "http://127.0.0.1:9");
    assert_eq!(twilio["secret_hint"], "…2211");
    assert_eq!(twilio["api_key_secret_hint"], "…g0Fe");
    assert_eq!(
        twilio["webhook_urls"],
        json!([
            format!("{}/webhooks/twilio/{id}/messages", server.base),
            format!("{}/webhooks/twilio/{id}/status", server.base),
        ]),
        "built from the public URL, by default the listen address"
    );

    let telnyx_without_key = alice
        .post(
            "/api/v1/admin/carriers",
            json!({"kind": "telnyx", "name": "Telnyx", "secret": "KEY0123456789"}),
        )
        .await;
    assert_error(
        &telnyx_without_key,
        422,
        "validation_failed",
        "telnyx without public key",
    );
    assert!(
        telnyx_without_key.body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("public_key:")),
        "{}",
        telnyx_without_key.body
    );
    let telnyx = alice
        .post(
            "/api/v1/admin/carriers",
            json!({
                "kind": "telnyx",
                "name": "Telnyx",
                "secret": "KEY0123456789ABCDEF_telnyx",
                "public_key": TELNYX_PUBLIC_KEY,
            }),
        )
        .await;
    assert_eq!(telnyx.status, 201, "{}", telnyx.body);
    let telnyx_id = telnyx.body["connection"]["id"].as_i64().expect("id");
    assert_eq!(
        telnyx.body["connection"]["webhook_urls"],
        json!([format!("{}/webhooks/telnyx/{telnyx_id}", server.base)])
    );
    let simulator = alice
        .post(
            "/api/v1/admin/carriers",
            json!({"kind": "simulator", "name": "Simulator"}),
        )
        .await;
    assert_eq!(simulator.status, 201, "{}", simulator.body);
    assert_eq!(simulator.body["connection"]["webhook_urls"], json!([]));

    for (body, field) in [
        (json!({"kind": "bandwidth", "name": "B"}), "kind"),
        (
            json!({"kind": "twilio", "name": "T", "secret": "x"}),
            "account_sid",
        ),
        (
            json!({"kind": "twilio", "name": "T", "account_sid": "AC1"}),
            "secret",
        ),
        (
            json!({"kind": "twilio", "name": "T", "account_sid": "AC1", "secret": "x",
                   "api_key_sid": "SK1"}),
            "api_key_secret",
        ),
        (
            json!({"kind": "twilio", "name": "T", "account_sid": "AC1", "secret": "x",
                   "api_key_sid": "AK1", "api_key_secret": "y"}),
            "api_key_sid",
        ),
        (
            json!({"kind": "telnyx", "name": "T", "secret": "x", "public_key": "not a key"}),
            "public_key",
        ),
        (
            json!({"kind": "simulator", "name": "S", "base_url": "ftp://x"}),
            "base_url",
        ),
        (json!({"kind": "simulator", "name": " "}), "name"),
    ] {
        let a = alice.post("/api/v1/admin/carriers", body.clone()).await;
        assert_error(&a, 422, "validation_failed", &format!("{body}"));
        let message = a.body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.starts_with(&format!("{field}:")),
            "{body}: {message}"
        );
    }
    let twice = alice
        .post(
            "/api/v1/admin/carriers",
            json!({"kind": "simulator", "name": "Simulator"}),
        )
        .await;
    assert_error(&twice, 409, "conflict", "a name used twice");

    // No answer ever holds a secret in full.
    add_number(
        &alice,
        json!({"number": "+14155550123", "connection_id": id}),
    )
    .await;
    let listed = alice.get("/api/v1/admin/carriers").await;
    assert_eq!(listed.status, 200);
    let names: Vec<&str> = listed.body["connections"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, ["Main Twilio", "Simulator", "Telnyx"], "by name");
    for a in [
        &created,
        &telnyx,
        &listed,
        &alice.get("/api/v1/admin/numbers").await,
        &alice.get("/api/v1/admin/organization").await,
    ] {
        let text = a.body.to_string();
        for secret in [AUTH_TOKEN, API_KEY_SECRET, "KEY0123456789ABCDEF_telnyx"] {
            assert!(!text.contains(secret), "{secret} shown in {text}");
        }
    }

    // The command line lists the same URLs under the public URL it is given.
    let out = server.admin(&[
        "--public-url",
        "https://pbx.example.com/",
        "list-carriers",
        "--org",
        "acme",
    ]);
    assert!(
        out.contains(&format!(
            "https://pbx.example.com/webhooks/twilio/{id}/messages https://pbx.example.com/webhooks/twilio/{id}/status"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "https://pbx.example.com/webhooks/telnyx/{telnyx_id}"
        )),
        "{out}"
    );
    assert!(
        !out.contains(AUTH_TOKEN) && !out.contains(API_KEY_SECRET),
        "{out}"
    );
}

#[tokio::test]
async fn assigned_numbers_show_in_my_numbers_and_i_pick_my_default() {
    let server = Server::start();
    acme(&server);
    let alice = server.sign_in_to("acme", "101", PASSWORD).await;
    let bob = server.sign_in_to("acme", "102", PASSWORD).await;
    let main = twilio(&alice, "Main").await;
    let main_id = main["id"].as_i64().expect("id");
    let first = add_number(
        &alice,
        json!({"number": "4155550131", "connection_id": main_id}),
    )
    .await;
    let second = add_number(&alice, json!({"number": "4155550132"})).await;
    let quiet = add_number(
        &alice,
        json!({"number": "4155550133", "sms_enabled": false}),
    )
    .await;
    assert_eq!(first["connection_id"], main_id);
    let id = |n: &Value| n["id"].as_i64().expect("id");

    assert_eq!(
        bob.get("/api/v1/me/numbers").await.body,
        json!({"numbers": []}),
        "nothing assigned yet"
    );
    for n in [&first, &second, &quiet] {
        let path = format!("/api/v1/admin/numbers/{}/extensions/{}", id(n), bob.id);
        let a = alice.call("PUT", &path, None).await;
        assert_eq!(a.status, 200, "{}", a.body);
        assert_eq!(a.body["number"]["extension_ids"], json!([bob.id]));
        let again = alice.call("PUT", &path, None).await;
        assert_eq!(again.body["number"]["extension_ids"], json!([bob.id]));
    }
    let path = format!(
        "/api/v1/admin/numbers/{}/extensions/{}",
        id(&first),
        alice.id
    );
    assert_eq!(alice.call("PUT", &path, None).await.status, 200);
    let listed = numbers(&alice.get("/api/v1/admin/numbers").await.body);
    let assigned: Vec<(String, Value)> = listed
        .iter()
        .map(|n| {
            (
                n["number"].as_str().unwrap_or_default().to_owned(),
                n["extension_ids"].clone(),
            )
        })
        .collect();
    assert_eq!(
        assigned,
        [
            ("+14155550131".to_owned(), json!([alice.id, bob.id])),
            ("+14155550132".to_owned(), json!([bob.id])),
            ("+14155550133".to_owned(), json!([bob.id])),
        ]
    );

    let mine = bob.get("/api/v1/me/numbers").await;
    assert_eq!(mine.status, 200);
    assert_eq!(
        mine.body,
        json!({"numbers": [
            {"id": id(&first), "number": "+14155550131", "display": "(415) 555-0131", "sms_enabled": true, "default": true},
            {"id": id(&second), "number": "+14155550132", "display": "(415) 555-0132", "sms_enabled": true, "default": false},
            {"id": id(&quiet), "number": "+14155550133", "display": "(415) 555-0133", "sms_enabled": false, "default": false},
        ]}),
        "the first texting number is the default"
    );

    let switched = bob
        .call(
            "PUT",
            "/api/v1/me/numbers/default",
            Some(json!({"number_id": id(&second)})),
        )
        .await;
    assert_eq!(switched.status, 200, "{}", switched.body);
    let defaults: Vec<bool> = numbers(&switched.body)
        .iter()
        .map(|n| n["default"] == true)
        .collect();
    assert_eq!(defaults, [false, true, false]);
    assert_eq!(
        bob.get("/api/v1/me/numbers").await.body,
        switched.body,
        "the choice is kept"
    );
    for (number_id, what) in [
        (id(&quiet), "a number that does not text"),
        (999_999, "a number that does not exist"),
    ] {
        let a = bob
            .call(
                "PUT",
                "/api/v1/me/numbers/default",
                Some(json!({"number_id": number_id})),
            )
            .await;
        assert_error(&a, 404, "not_found", what);
    }
    let carol = server.sign_in_to("acme", "103", PASSWORD).await;
    let a = carol
        .call(
            "PUT",
            "/api/v1/me/numbers/default",
            Some(json!({"number_id": id(&first)})),
        )
        .await;
    assert_error(&a, 404, "not_found", "a number that is not mine");

    // Texting off: the number is nobody's default; bob's passes on.
    let off = alice
        .call(
            "PATCH",
            &format!("/api/v1/admin/numbers/{}", id(&second)),
            Some(json!({"sms_enabled": false})),
        )
        .await;
    assert_eq!(off.status, 200, "{}", off.body);
    assert_eq!(off.body["number"]["sms_enabled"], false);
    assert_eq!(off.body["number"]["connection_id"], Value::Null);
    let defaults: Vec<bool> = numbers(&bob.get("/api/v1/me/numbers").await.body)
        .iter()
        .map(|n| n["default"] == true)
        .collect();
    assert_eq!(defaults, [true, false, false]);

    // The connection is changed or taken off; an unknown one is refused.
    let path = format!("/api/v1/admin/numbers/{}", id(&first));
    let kept = alice
        .call("PATCH", &path, Some(json!({"sms_enabled": true})))
        .await;
    assert_eq!(
        kept.body["number"]["connection_id"], main_id,
        "absent keeps it"
    );
    let unknown = alice
        .call("PATCH", &path, Some(json!({"connection_id": 999_999})))
        .await;
    assert_error(&unknown, 404, "not_found", "an unknown connection");
    let unknown = alice
        .post(
            "/api/v1/admin/numbers",
            json!({"number": "4155550104", "connection_id": 999_999}),
        )
        .await;
    assert_error(
        &unknown,
        404,
        "not_found",
        "a new number on an unknown connection",
    );
    let cleared = alice
        .call("PATCH", &path, Some(json!({"connection_id": null})))
        .await;
    assert_eq!(cleared.status, 200, "{}", cleared.body);
    assert_eq!(cleared.body["number"]["connection_id"], Value::Null);
    assert_eq!(cleared.body["number"]["sms_enabled"], true);
    let missing = alice
        .call(
            "PATCH",
            "/api/v1/admin/numbers/999999",
            Some(json!({"sms_enabled": true})),
        )
        .await;
    assert_error(&missing, 404, "not_found", "an unknown number");

    // Taking the number away removes it from bob's list.
    let path = format!("/api/v1/admin/numbers/{}/extensions/{}", id(&first), bob.id);
    let removed = alice.call("DELETE", &path, None).await;
    assert_eq!(removed.status, 200, "{}", removed.body);
    assert_eq!(removed.body["number"]["extension_ids"], json!([alice.id]));
    let left: Vec<Value> = numbers(&bob.get("/api/v1/me/numbers").await.body)
        .iter()
        .map(|n| n["number"].clone())
        .collect();
    assert_eq!(left, [json!("+14155550132"), json!("+14155550133")]);
    assert_eq!(
        alice.call("DELETE", &path, None).await.status,
        200,
        "taking away twice changes nothing"
    );
    let unknown_extension = alice
        .call(
            "PUT",
            &format!("/api/v1/admin/numbers/{}/extensions/999999", id(&first)),
            None,
        )
        .await;
    assert_error(&unknown_extension, 404, "not_found", "an unknown extension");
}

#[tokio::test]
async fn another_organizations_numbers_connections_and_extensions_are_out_of_reach() {
    let server = Server::start();
    acme(&server);
    let alice = server.sign_in_to("acme", "101", PASSWORD).await;
    let xavier = other_org(&server).await;
    let demo_connection = twilio(&alice, "Demo carrier").await;
    let demo_number = add_number(&alice, json!({"number": "+14155550111"})).await;
    let demo_number_id = demo_number["id"].as_i64().expect("id");
    let other_number = add_number(&xavier, json!({"number": "+14155550112"})).await;
    let other_number_id = other_number["id"].as_i64().expect("id");

    // Neither administrator reaches the other's numbers, nor assigns its
    // own number to the other's extensions.
    for (admin, number, extension, own_number, label) in [
        (
            &xavier,
            demo_number_id,
            2,
            false,
            "other's admin on demo's number",
        ),
        (
            &xavier,
            other_number_id,
            2,
            true,
            "other's admin to demo's extension",
        ),
        (
            &alice,
            other_number_id,
            xavier.id,
            false,
            "demo's admin on other's number",
        ),
        (
            &alice,
            demo_number_id,
            xavier.id,
            true,
            "demo's admin to other's extension",
        ),
    ] {
        for ep in admin_number_endpoints(number, extension)
            .into_iter()
            .filter(|ep| !own_number || ep.path.contains("/extensions/"))
        {
            let a = server.request(Cred::Bearer(&admin.token), &ep).await;
            assert_error(&a, 404, "not_found", &format!("{label}: {}", ep.name()));
        }
    }
    let foreign_connection = xavier
        .post(
            "/api/v1/admin/numbers",
            json!({"number": "+14155550113", "connection_id": demo_connection["id"]}),
        )
        .await;
    assert_error(
        &foreign_connection,
        404,
        "not_found",
        "another organization's connection",
    );

    // Lists keep to their organization; a member cannot pick another's number.
    assert_eq!(
        numbers(&xavier.get("/api/v1/admin/numbers").await.body)
            .iter()
            .map(|n| n["number"].clone())
            .collect::<Vec<_>>(),
        [json!("+14155550112")]
    );
    assert_eq!(
        xavier.get("/api/v1/admin/carriers").await.body,
        json!({"connections": []})
    );
    let a = xavier
        .call(
            "PUT",
            "/api/v1/me/numbers/default",
            Some(json!({"number_id": demo_number_id})),
        )
        .await;
    assert_error(
        &a,
        404,
        "not_found",
        "another organization's number as default",
    );
    let demo_numbers = numbers(&alice.get("/api/v1/admin/numbers").await.body);
    assert_eq!(demo_numbers.len(), 1);
    assert_eq!(demo_numbers[0], demo_number, "demo's number is unchanged");
}

//! Live behaviour over HTTP and WebSocket against the real server: chat,
//! groups, receipts, typing, resume, and back-pressure on slow clients.

use crate::common::{Client, PATIENCE, Server, Ws};
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn two_extensions_chat_live_both_ways() {
    let server = Server::start();
    let alice = server.sign_in("101").await;
    let bob = server.sign_in("102").await;
    let mut alice_ws = alice.ws(None).await;
    let mut bob_ws = bob.ws(None).await;

    let conversation = alice.direct_with(bob.id).await;
    let created = bob_ws.next_of("conversation.created").await;
    assert_eq!(created["data"]["conversation"]["id"], conversation);
    assert_eq!(
        bob.direct_with(alice.id).await,
        conversation,
        "a direct chat is unique per pair"
    );

    let sent = alice.send(conversation, "Lunch at noon?").await;
    let got = bob_ws.next_of("message.created").await;
    assert_eq!(got["data"]["message"]["text"], "Lunch at noon?");
    let own = alice_ws.next_of("message.created").await;
    assert_eq!(
        own["data"]["message"]["id"], sent["id"],
        "the sender's other devices see it too"
    );
    assert_eq!(got["data"]["message"]["id"], sent["id"]);
    assert_eq!(got["data"]["message"]["sender"]["name"], "Alice Archer");
    assert!(
        got["cursor"].as_str().is_some(),
        "durable events carry a cursor"
    );

    bob.send(conversation, "Sounds good").await;
    let got = alice_ws.next_message("Sounds good").await;
    assert_eq!(got["data"]["message"]["sender"]["id"], bob.id);

    // Bob's list shows the conversation with the last message and his
    // unread count (Alice's message).
    let list = bob.get("/api/v1/conversations").await;
    let c = &list.body["conversations"][0];
    assert_eq!(c["id"], conversation);
    assert_eq!(c["last_message"]["text"], "Sounds good");
    assert_eq!(c["unread_count"], 1);
}

#[tokio::test]
async fn retried_send_returns_the_original_message() {
    let server = Server::start();
    let alice = server.sign_in("101").await;
    let conversation = alice.direct_with(2).await;
    let path = format!("/api/v1/conversations/{conversation}/messages");
    let body = json!({"text": "once", "idempotency_key": "retry-me"});
    let first = alice.post(&path, body.clone()).await;
    assert_eq!(first.status, 201);
    let again = alice.post(&path, body).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body["message"]["id"], first.body["message"]["id"]);
    let history = alice.get(&path).await;
    assert_eq!(history.body["messages"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn group_lifecycle_posts_system_messages() {
    let server = Server::start();
    let alice = server.sign_in("101").await;
    let bob = server.sign_in("102").await;
    let carol = server.sign_in("103").await;
    let dan = server.sign_in("104").await;
    let mut bob_ws = bob.ws(None).await;
    let mut carol_ws = carol.ws(None).await;
    let mut dan_ws = dan.ws(None).await;

    let created = alice
        .post(
            "/api/v1/conversations/group",
            json!({"name": "Sales", "member_ids": [bob.id, carol.id]}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let group = created.body["conversation"]["id"].as_i64().expect("id");
    assert_eq!(
        bob_ws.next_of("conversation.created").await["data"]["conversation"]["name"],
        "Sales"
    );
    for ws in [&mut bob_ws, &mut carol_ws] {
        let system = ws.next_of("message.created").await;
        assert_eq!(system["data"]["message"]["kind"], "system");
        assert_eq!(
            system["data"]["message"]["text"],
            "Alice Archer created the group “Sales”"
        );
    }

    // Rename: a system message for everyone.
    let renamed = alice.rename(group, "Sales team").await;
    assert_eq!(renamed.status, 200);
    for ws in [&mut bob_ws, &mut carol_ws] {
        let m = ws.next_of("message.created").await;
        assert_eq!(
            m["data"]["message"]["text"],
            "Alice Archer renamed the group to “Sales team”"
        );
        assert_eq!(m["data"]["message"]["system"]["action"], "renamed");
        let u = ws.next_of("conversation.updated").await;
        assert_eq!(u["data"]["conversation"]["name"], "Sales team");
    }

    // Add Dan: he is told, and can now read the history.
    let added = alice.add_participants(group, &[dan.id]).await;
    assert_eq!(added.status, 200);
    let m = dan_ws.next_of("message.created").await;
    assert_eq!(m["data"]["message"]["text"], "Alice Archer added Dan Diaz");
    let u = dan_ws.next_of("conversation.updated").await;
    assert_eq!(
        u["data"]["conversation"]["participants"]
            .as_array()
            .map(Vec::len),
        Some(4)
    );
    assert_eq!(
        dan.get(&format!("/api/v1/conversations/{group}/messages"))
            .await
            .status,
        200
    );

    // Remove Carol: she learns of it, then is no longer a participant.
    let removed = alice.remove_participant(group, carol.id).await;
    assert_eq!(removed.status, 200);
    let m = carol_ws
        .next_message("Alice Archer removed Carol Chen")
        .await;
    assert_eq!(m["data"]["message"]["system"]["action"], "removed");
    let u = carol_ws.next_of("conversation.updated").await;
    let still_there = u["data"]["conversation"]["participants"]
        .as_array()
        .expect("participants")
        .iter()
        .any(|p| p["id"] == carol.id);
    assert!(!still_there);
    assert_eq!(
        carol
            .get(&format!("/api/v1/conversations/{group}/messages"))
            .await
            .status,
        404
    );
    assert_eq!(send_status(&carol, group, "let me in").await, 404);

    // Bob leaves.
    let left = bob.leave(group).await;
    assert_eq!(left.status, 204);
    dan_ws.next_message("Bob Baker left the group").await;

    // Direct chats cannot be renamed.
    let direct = alice.direct_with(bob.id).await;
    let refused = alice.rename(direct, "nope").await;
    assert_eq!(refused.status, 422);
}

#[tokio::test]
async fn read_receipts_reach_the_sender_and_my_other_devices() {
    let server = Server::start();
    let alice = server.sign_in("101").await;
    let bob = server.sign_in("102").await;
    let bob_phone = server.sign_in("102").await;
    let conversation = alice.direct_with(bob.id).await;
    let mut alice_ws = alice.ws(None).await;
    let mut phone_ws = bob_phone.ws(None).await;

    let first = alice.send(conversation, "one").await;
    let second = alice.send(conversation, "two").await;
    let list = bob.get("/api/v1/conversations").await;
    assert_eq!(list.body["conversations"][0]["unread_count"], 2);

    let read = bob
        .post(
            &format!("/api/v1/conversations/{conversation}/read"),
            json!({"message_id": first["id"]}),
        )
        .await;
    assert_eq!(read.status, 200);
    assert_eq!(read.body["unread_count"], 1);

    let receipt = alice_ws.next_of("receipt.updated").await;
    assert_eq!(receipt["data"]["extension_id"], bob.id);
    assert_eq!(receipt["data"]["last_read_message_id"], first["id"]);
    let unread = phone_ws.next_of("unread.updated").await;
    assert_eq!(unread["data"]["unread_count"], 1);

    // Reading over the WebSocket works the same way.
    phone_ws
        .send(json!({"type": "read", "conversation_id": conversation, "message_id": second["id"]}))
        .await;
    let receipt = alice_ws.next_of("receipt.updated").await;
    assert_eq!(receipt["data"]["last_read_message_id"], second["id"]);

    let receipts = alice
        .get(&format!("/api/v1/conversations/{conversation}/receipts"))
        .await;
    let bobs = receipts.body["receipts"]
        .as_array()
        .expect("receipts")
        .iter()
        .find(|r| r["extension_id"] == bob.id)
        .cloned()
        .expect("bob's receipt");
    assert_eq!(bobs["name"], "Bob Baker");
    assert_eq!(bobs["last_read_message_id"], second["id"]);

    // Read positions never move back.
    let back = bob
        .post(
            &format!("/api/v1/conversations/{conversation}/read"),
            json!({"message_id": first["id"]}),
        )
        .await;
    assert_eq!(back.body["unread_count"], 0);
    let receipts = alice
        .get(&format!("/api/v1/conversations/{conversation}/receipts"))
        .await;
    assert!(
        receipts.body["receipts"]
            .as_array()
            .expect("receipts")
            .iter()
            .any(|r| r["extension_id"] == bob.id && r["last_read_message_id"] == second["id"])
    );
}

#[tokio::test]
async fn typing_shows_to_others_expires_and_clears_on_send() {
    let server = Server::in_process().await;
    let alice = server.sign_in("101").await;
    let bob = server.sign_in("102").await;
    let conversation = alice.direct_with(bob.id).await;
    let mut alice_ws = alice.ws(None).await;
    let mut bob_ws = bob.ws(None).await;

    alice_ws
        .send(json!({"type": "typing", "conversation_id": conversation}))
        .await;
    let on = bob_ws.next_of("typing").await;
    assert_eq!(on["data"]["active"], true);
    assert_eq!(on["data"]["extension_id"], alice.id);
    assert!(on.get("cursor").is_none(), "typing is ephemeral");

    // The indicator outlives four seconds without a new typing frame ...
    server.clock().advance(Duration::from_secs(4));
    alice.send(conversation, "probe").await;
    let next = bob_ws.next_frame().await.expect("frame");
    assert_eq!(
        next["type"], "message.created",
        "no expiry before five seconds"
    );
    assert_eq!(
        bob_ws.next_of("typing").await["data"]["active"],
        false,
        "the send itself clears the indicator"
    );
    // ... and ends five seconds after the last one.
    alice_ws
        .send(json!({"type": "typing", "conversation_id": conversation}))
        .await;
    assert_eq!(bob_ws.next_of("typing").await["data"]["active"], true);
    server.clock().advance(Duration::from_secs(5));
    let off = bob_ws.next_of("typing").await;
    assert_eq!(off["data"]["active"], false, "expired after five seconds");

    // The typist never sees their own indicator: the next frame Alice gets
    // is Bob's message, not a typing frame.
    alice_ws
        .send(json!({"type": "typing", "conversation_id": conversation}))
        .await;
    assert_eq!(bob_ws.next_of("typing").await["data"]["active"], true);
    alice.send(conversation, "done typing").await;
    // The message and the end of the indicator come in either order.
    let mut saw_message = false;
    let mut saw_stop = false;
    while !(saw_message && saw_stop) {
        let f = bob_ws.next_frame().await.expect("frame");
        match f["type"].as_str() {
            Some("message.created") => saw_message = true,
            Some("typing") => {
                assert_eq!(f["data"]["active"], false);
                saw_stop = true;
            }
            _ => {}
        }
    }
    // Had the indicator only expired later, typing again at once would not
    // announce a new start; it does, so sending cleared it.
    alice_ws
        .send(json!({"type": "typing", "conversation_id": conversation}))
        .await;
    assert_eq!(bob_ws.next_of("typing").await["data"]["active"], true);
    // The typist never sees their own indicator.
    bob.send(conversation, "ok").await;
    loop {
        let f = alice_ws.next_frame().await.expect("frame");
        assert_ne!(f["type"], "typing", "no typing frame for the typist");
        if f["data"]["message"]["text"] == "ok" {
            break;
        }
    }

    // Typing in a conversation one is not part of is refused.
    let carol = server.sign_in("103").await;
    let mut carol_ws = carol.ws(None).await;
    carol_ws
        .send(json!({"type": "typing", "conversation_id": conversation}))
        .await;
    let err = carol_ws.next_of("error").await;
    assert_eq!(err["data"]["code"], "not_found");
}

#[tokio::test]
async fn reconnecting_with_a_cursor_resumes_without_gap_or_duplicate() {
    let server = Server::start();
    let alice = server.sign_in("101").await;
    let bob = server.sign_in("102").await;
    let conversation = alice.direct_with(bob.id).await;

    let mut bob_ws = bob.ws(None).await;
    for i in 0..5 {
        alice.send(conversation, &format!("before {i}")).await;
    }
    let seen = bob_ws.texts_until("before 4").await;
    assert_eq!(seen.len(), 5);
    let cursor = bob_ws.cursor.clone().expect("cursor");
    drop(bob_ws);

    // Missed while away.
    for i in 0..30 {
        alice.send(conversation, &format!("away {i}")).await;
    }
    let mut bob_ws = bob.ws(Some(&cursor)).await;
    // Live sends racing the replay.
    let sender = alice.clone();
    let live = tokio::spawn(async move {
        for i in 0..30 {
            sender.send(conversation, &format!("live {i}")).await;
        }
    });
    let texts = bob_ws.texts_until("live 29").await;
    live.await.expect("sender");
    let want: Vec<String> = (0..30)
        .map(|i| format!("away {i}"))
        .chain((0..30).map(|i| format!("live {i}")))
        .collect();
    assert_eq!(texts, want, "every missed event once, in order");
}

#[tokio::test]
async fn a_client_that_stops_reading_is_cut_off_while_others_keep_receiving() {
    let server = Server::start();
    let alice = server.sign_in("101").await;
    let bob = server.sign_in("102").await;
    let carol = server.sign_in("103").await;
    let group = alice.create_group("Busy", &[bob.id, carol.id]).await;

    // Bob's socket never reads; Carol's reads everything.
    let stalled = bob.ws(None).await;
    let mut carol_ws = carol.ws(None).await;
    let big = "x".repeat(9_000);
    let reader = tokio::spawn(async move {
        let mut count = 0;
        while count < 1000 {
            let f = carol_ws.next_of("message.created").await;
            if f["data"]["message"]["kind"] == "text" {
                count += 1;
            }
        }
        count
    });
    for _ in 0..1000 {
        alice.send(group, &big).await;
    }
    assert_eq!(
        reader.await.expect("reader"),
        1000,
        "Carol got every message"
    );

    // Bob's connection was dropped: draining it now finds the end after
    // whatever the socket buffers held.
    let mut stalled = stalled;
    let ended = loop {
        match tokio::time::timeout(PATIENCE, futures_util::StreamExt::next(&mut stalled.stream))
            .await
        {
            Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Close(_))))
            | Ok(None)
            | Ok(Some(Err(_))) => break true,
            Ok(Some(Ok(_))) => continue,
            Err(_) => break false,
        }
    };
    assert!(ended, "the stalled client was disconnected");
    let metrics = crate::common::http()
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(metrics.contains("switchboard_slow_clients_disconnected_total 1"));

    // Bob resumes from the cursor he had when he stopped reading and gets
    // every message, once, in order.
    let cursor = stalled.cursor.clone().expect("cursor from ready");
    let mut resumed = bob.ws(Some(&cursor)).await;
    let mut texts = 0;
    while texts < 1000 {
        let f = resumed.next_of("message.created").await;
        assert_eq!(f["data"]["message"]["conversation_id"], group);
        if f["data"]["message"]["kind"] == "text" {
            texts += 1;
        }
    }
    alice.send(group, "after the resume").await;
    let next = resumed.next_of("message.created").await;
    assert_eq!(
        next["data"]["message"]["text"], "after the resume",
        "nothing was replayed twice"
    );
}

/// The status of a send (without an idempotency key) by `client`.
async fn send_status(client: &Client, conversation: i64, text: &str) -> u16 {
    client
        .post(
            &format!("/api/v1/conversations/{conversation}/messages"),
            json!({"text": text}),
        )
        .await
        .status
}

#[tokio::test]
async fn ending_a_session_closes_its_websockets_and_only_those() {
    let server = Server::start();
    let bob_laptop = server.sign_in("102").await;
    let bob_phone = server.sign_in("102").await;
    let mut laptop_ws = bob_laptop.ws(None).await;
    let mut phone_ws = bob_phone.ws(None).await;

    // Signing out on the laptop closes the laptop's socket only.
    let out = bob_laptop.post("/api/v1/auth/sign-out", json!({})).await;
    assert_eq!(out.status, 204);
    assert_eq!(
        laptop_ws.close_of().await,
        Some((4401, "session ended".to_owned()))
    );
    phone_ws.send(json!({"type": "ping"})).await;
    assert_eq!(phone_ws.next_of("pong").await["type"], "pong");

    // An administrator resetting Bob's password closes the rest.
    let alice = server.sign_in("101").await;
    let reset = alice
        .post(
            &format!("/api/v1/admin/extensions/{}/password", bob_phone.id),
            json!({"password": "a whole new password"}),
        )
        .await;
    assert_eq!(reset.status, 204);
    assert_eq!(
        phone_ws.close_of().await,
        Some((4401, "session ended".to_owned()))
    );
    assert_eq!(bob_phone.get("/api/v1/me").await.status, 401);
}

#[tokio::test]
async fn messages_can_be_sent_over_the_websocket() {
    let server = Server::start();
    let alice = server.sign_in("101").await;
    let bob = server.sign_in("102").await;
    let carol = server.sign_in("103").await;
    let conversation = alice.direct_with(bob.id).await;
    let mut alice_ws = alice.ws(None).await;
    let mut bob_ws = bob.ws(None).await;

    alice_ws
        .send(json!({"type": "send", "conversation_id": conversation, "text": "over the socket", "idempotency_key": "ws-1"}))
        .await;
    let sent = alice_ws.next_of("sent").await;
    assert_eq!(sent["data"]["idempotency_key"], "ws-1");
    assert_eq!(sent["data"]["message"]["text"], "over the socket");
    let got = bob_ws.next_of("message.created").await;
    assert_eq!(got["data"]["message"]["id"], sent["data"]["message"]["id"]);

    // A retry with the same key answers with the original, and nobody is
    // told twice: Bob's next message is the one after it.
    alice_ws
        .send(json!({"type": "send", "conversation_id": conversation, "text": "over the socket", "idempotency_key": "ws-1"}))
        .await;
    let again = alice_ws.next_of("sent").await;
    assert_eq!(
        again["data"]["message"]["id"],
        sent["data"]["message"]["id"]
    );
    alice.send(conversation, "next").await;
    assert_eq!(
        bob_ws.next_of("message.created").await["data"]["message"]["text"],
        "next"
    );

    // Refusals name the key.
    alice_ws
        .send(json!({"type": "send", "conversation_id": conversation, "text": "  ", "idempotency_key": "ws-2"}))
        .await;
    let err = alice_ws.next_of("error").await;
    assert_eq!(err["data"]["code"], "validation_failed");
    assert_eq!(err["data"]["idempotency_key"], "ws-2");
    let mut carol_ws = carol.ws(None).await;
    carol_ws
        .send(json!({"type": "send", "conversation_id": conversation, "text": "let me in", "idempotency_key": "ws-3"}))
        .await;
    let err = carol_ws.next_of("error").await;
    assert_eq!(err["data"]["code"], "not_found");
    assert_eq!(err["data"]["idempotency_key"], "ws-3");
    let history = alice
        .get(&format!("/api/v1/conversations/{conversation}/messages"))
        .await;
    assert_eq!(history.body["messages"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn frames_that_arrive_together_are_all_read_between_deliveries() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;

    let server = Server::start();
    let alice = server.sign_in("101").await;
    let bob = server.sign_in("102").await;
    let conversation = alice.direct_with(bob.id).await;
    let mut alice_ws = alice.ws(None).await;

    // Five sends written at once reach the server in one read: every one
    // of them is stored and answered, not only the first.
    for n in 1..=5 {
        let frame = json!({"type": "send", "conversation_id": conversation, "text": format!("burst {n}"), "idempotency_key": format!("burst-{n}")});
        alice_ws
            .stream
            .feed(Message::Text(frame.to_string().into()))
            .await
            .expect("ws feed");
    }
    alice_ws.stream.flush().await.expect("ws flush");
    let mut answered = Vec::new();
    for _ in 1..=5 {
        answered.push(
            alice_ws.next_of("sent").await["data"]["idempotency_key"]
                .as_str()
                .expect("key")
                .to_owned(),
        );
    }
    answered.sort();
    assert_eq!(
        answered,
        ["burst-1", "burst-2", "burst-3", "burst-4", "burst-5"]
    );

    // The connection is then woken only to deliver; what Alice sends
    // after that is still read.
    for n in 1..=3 {
        bob.send(conversation, &format!("from bob {n}")).await;
    }
    alice_ws.next_message("from bob 3").await;
    alice_ws
        .send(json!({"type": "send", "conversation_id": conversation, "text": "after the deliveries", "idempotency_key": "after-1"}))
        .await;
    let sent = alice_ws.next_of("sent").await;
    assert_eq!(sent["data"]["message"]["text"], "after the deliveries");
}

/// A send frame written straight to the socket, whatever state it is in.
async fn try_send_frame(ws: &mut Ws, conversation: i64, text: &str) {
    use futures_util::SinkExt;
    let frame = json!({"type": "send", "conversation_id": conversation, "text": text, "idempotency_key": crate::common::uuid_like()});
    let _ = ws
        .stream
        .send(tokio_tungstenite::tungstenite::Message::Text(
            frame.to_string().into(),
        ))
        .await;
}

#[tokio::test]
async fn the_command_line_disabling_or_resetting_an_extension_closes_its_websockets() {
    use switchboard::workers::sessions::CHECK_INTERVAL;
    let server = Server::in_process().await;
    let alice = server.sign_in("101").await;
    let bob = server.sign_in("102").await;
    let carol = server.sign_in("103").await;
    let with_bob = alice.direct_with(bob.id).await;
    let with_carol = alice.direct_with(carol.id).await;
    let mut alice_ws = alice.ws(None).await;
    let mut bob_ws = bob.ws(None).await;
    let mut carol_ws = carol.ws(None).await;

    // Another process commits these: no event reaches this server.
    server.admin(&["disable-extension", "--org", "demo", "--number", "102"]);
    server.admin(&["reset-password", "--org", "demo", "--number", "103"]);
    // The next check of open sockets, at most one interval away, ends both.
    server.clock().advance(CHECK_INTERVAL);
    assert_eq!(
        bob_ws.close_of().await,
        Some((4401, "session ended".to_owned()))
    );
    assert_eq!(
        carol_ws.close_of().await,
        Some((4401, "session ended".to_owned()))
    );
    try_send_frame(&mut bob_ws, with_bob, "still listening?").await;
    try_send_frame(&mut carol_ws, with_carol, "still talking?").await;
    assert_eq!(bob.get("/api/v1/me").await.status, 401);
    assert_eq!(carol.get("/api/v1/me").await.status, 401);

    // Alice's socket is untouched, and nothing the others sent was stored.
    alice_ws.send(json!({"type": "ping"})).await;
    assert_eq!(alice_ws.next_of("pong").await["type"], "pong");
    for conversation in [with_bob, with_carol] {
        alice.send(conversation, "anyone there?").await;
        let texts: Vec<_> = alice
            .whole_history(conversation)
            .await
            .iter()
            .map(|m| m["text"].clone())
            .collect();
        assert_eq!(texts, [json!("anyone there?")]);
    }
}

#[tokio::test]
async fn a_websocket_closes_when_its_session_expires() {
    use switchboard::config::Config;
    let server = Server::in_process().await;
    let ttl = Config::default().session_ttl;
    let bob = server.sign_in("102").await;
    let mut bob_ws = bob.ws(None).await;
    server.clock().advance(ttl - Duration::from_secs(60));
    let alice = server.sign_in("101").await;
    let mut alice_ws = alice.ws(None).await;

    // Bob's session expires; Alice's, signed in later, lives on.
    server.clock().advance(Duration::from_secs(60));
    assert_eq!(
        bob_ws.close_of().await,
        Some((4401, "session ended".to_owned()))
    );
    assert_eq!(bob.get("/api/v1/me").await.status, 401);
    alice_ws.send(json!({"type": "ping"})).await;
    assert_eq!(alice_ws.next_of("pong").await["type"], "pong");
}

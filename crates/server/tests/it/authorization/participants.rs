//! Within an organization, a conversation is its participants' only: others
//! are refused on every conversation endpoint and on the socket, and hear
//! nothing of it; a removed participant is refused from the removal on.

use crate::common::{Cred, Server, Ws, assert_error, conversation_endpoints};
use serde_json::json;

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
    let group_id = alice.create_group("Alice and Bob", &[bob.id]).await;
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
                let a = server.request(Cred::Bearer(&carol.token), &ep).await;
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
    let renamed = alice.rename(group_id, "Renamed privately").await;
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
    let group_id = alice.create_group("Temporary", &[2]).await;
    let dans = dan.direct_with(alice.id).await;
    let mut dan_ws = dan.ws(None).await;

    let added = alice.add_participants(group_id, &[dan.id]).await;
    assert_eq!(added.status, 200, "{}", added.body);
    let welcome = dan_ws.next_of("message.created").await;
    assert_eq!(welcome["data"]["message"]["system"]["action"], "added");
    assert_eq!(
        dan.get(&format!("/api/v1/conversations/{group_id}"))
            .await
            .status,
        200
    );

    let removed = alice.remove_participant(group_id, dan.id).await;
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
        let a = server.request(Cred::Bearer(&dan.token), &ep).await;
        assert_error(
            &a,
            404,
            "not_found",
            &format!("removed participant {}", ep.name()),
        );
    }
    alice.send(group_id, "after dan left").await;
    alice.rename(group_id, "Without Dan").await;
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

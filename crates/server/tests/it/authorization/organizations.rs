//! Organizations are walled off from each other, in both directions and for
//! administrators and members alike: another organization's conversations
//! cannot be read, changed or joined, its extensions cannot be added to a
//! conversation or administered, no list mentions it, and none of its live
//! events arrive.

use crate::common::{
    Client, Cred, Endpoint, PASSWORD, Payload, Server, Ws, admin_endpoints_by_id, assert_error,
    conversation_endpoints,
};
use serde_json::{Value, json};
use std::collections::BTreeSet;

const DEMO_NAMES: [&str; 5] = [
    "Alice Archer",
    "Bob Baker",
    "Carol Chen",
    "Dan Diaz",
    "Erin Evans",
];
const OTHER_NAMES: [&str; 2] = ["Xavier Other", "Yolanda Other"];

/// What no answer or frame seen by the other organization may contain.
fn demo_secrets() -> Vec<&'static str> {
    [
        DEMO_NAMES.as_slice(),
        &["Demo planning", "demo secret", "Demo Company"],
    ]
    .concat()
}

fn other_secrets() -> Vec<&'static str> {
    [
        OTHER_NAMES.as_slice(),
        &["Other planning", "other secret", "\"Other\""],
    ]
    .concat()
}

/// The demo organization and organization "other", each with a direct chat
/// and a group holding a message: alice (administrator) and bob in demo,
/// xavier (administrator) and yolanda in other.
struct TwoOrganizations {
    server: Server,
    alice: Client,
    bob: Client,
    xavier: Client,
    yolanda: Client,
    demo_direct: i64,
    demo_group: i64,
    other_direct: i64,
    other_group: i64,
}

/// Someone addressing the other organization's things.
struct Intruder<'a> {
    client: &'a Client,
    foreign_conversations: [i64; 2],
    colleague: i64,
    foreign_extension: i64,
    label: &'static str,
}

/// The state of one organization as its administrator sees it.
struct Snapshot {
    conversations: Value,
    extensions: Value,
    organization: Value,
}

impl Snapshot {
    async fn of(admin: &Client) -> Self {
        Self {
            conversations: admin.get("/api/v1/conversations").await.body,
            extensions: admin.get("/api/v1/admin/extensions").await.body,
            organization: admin.get("/api/v1/admin/organization").await.body,
        }
    }

    /// The extensions and settings are as before, and so is every
    /// conversation that existed before (an intruder may have made and left
    /// groups of its own).
    fn assert_unchanged_since(&self, before: &Self, org: &str) {
        assert_eq!(
            self.extensions, before.extensions,
            "{org}'s extensions are unchanged"
        );
        assert_eq!(
            self.organization, before.organization,
            "{org}'s settings are unchanged"
        );
        for c in before.conversations["conversations"]
            .as_array()
            .expect("list")
        {
            assert!(
                self.conversations["conversations"]
                    .as_array()
                    .expect("list")
                    .contains(c),
                "{org} conversation unchanged: {c}"
            );
        }
    }
}

impl TwoOrganizations {
    async fn start() -> Self {
        let server = Server::start();
        create_other_org(&server);
        let alice = server.sign_in("101").await;
        let bob = server.sign_in("102").await;
        let xavier = server.sign_in_to("other", "101", PASSWORD).await;
        let yolanda = server.sign_in_to("other", "102", PASSWORD).await;
        assert!(
            demo_ids().is_disjoint(&[xavier.id, yolanda.id].into()),
            "the organizations' extension ids differ"
        );

        let demo_direct = alice.direct_with(bob.id).await;
        alice.send(demo_direct, "demo secret one").await;
        let demo_group = alice.create_group("Demo planning", &[2, 3]).await;
        bob.send(demo_group, "demo secret two").await;

        let other_direct = xavier.direct_with(yolanda.id).await;
        xavier.send(other_direct, "other secret one").await;
        let other_group = xavier.create_group("Other planning", &[yolanda.id]).await;
        yolanda.send(other_group, "other secret two").await;

        Self {
            server,
            alice,
            bob,
            xavier,
            yolanda,
            demo_direct,
            demo_group,
            other_direct,
            other_group,
        }
    }

    fn other_ids(&self) -> BTreeSet<i64> {
        [self.xavier.id, self.yolanda.id].into()
    }

    /// Both directions, by an administrator and by a member.
    fn intruders(&self) -> [Intruder<'_>; 4] {
        let demo = [self.demo_direct, self.demo_group];
        let other = [self.other_direct, self.other_group];
        [
            Intruder {
                client: &self.xavier,
                foreign_conversations: demo,
                colleague: self.yolanda.id,
                foreign_extension: 2,
                label: "other's admin",
            },
            Intruder {
                client: &self.yolanda,
                foreign_conversations: demo,
                colleague: self.xavier.id,
                foreign_extension: 1,
                label: "other's member",
            },
            Intruder {
                client: &self.alice,
                foreign_conversations: other,
                colleague: self.bob.id,
                foreign_extension: self.xavier.id,
                label: "demo's admin",
            },
            Intruder {
                client: &self.bob,
                foreign_conversations: other,
                colleague: self.alice.id,
                foreign_extension: self.yolanda.id,
                label: "demo's member",
            },
        ]
    }

    async fn snapshots(&self) -> (Snapshot, Snapshot) {
        (
            Snapshot::of(&self.alice).await,
            Snapshot::of(&self.xavier).await,
        )
    }

    /// Nothing of either organization changed since `before`, passwords
    /// included, and no list mentions the other organization.
    async fn assert_unchanged_since(&self, before: &(Snapshot, Snapshot)) {
        let (demo, other) = self.snapshots().await;
        demo.assert_unchanged_since(&before.0, "demo");
        other.assert_unchanged_since(&before.1, "other");
        for (org, number) in [("demo", "102"), ("other", "102")] {
            let a = self.server.sign_in_answer(org, number, PASSWORD).await;
            assert_eq!(
                a.status, 200,
                "{org}/{number} still signs in with the old password"
            );
        }
        self.assert_lists_keep_to_their_organization().await;
    }

    /// No list of one organization mentions the other.
    async fn assert_lists_keep_to_their_organization(&self) {
        let demo_ids = demo_ids();
        let other_ids = self.other_ids();
        let demo_secrets = demo_secrets();
        let other_secrets = other_secrets();
        for (client, own_ids, foreign_secrets, label) in [
            (&self.xavier, &other_ids, &demo_secrets, "other's admin"),
            (&self.yolanda, &other_ids, &demo_secrets, "other's member"),
            (&self.alice, &demo_ids, &other_secrets, "demo's admin"),
            (&self.bob, &demo_ids, &other_secrets, "demo's member"),
        ] {
            let mut lists = vec![
                ("/api/v1/extensions", client.get("/api/v1/extensions").await),
                (
                    "/api/v1/conversations",
                    client.get("/api/v1/conversations").await,
                ),
                ("/api/v1/me", client.get("/api/v1/me").await),
            ];
            if client.id == self.xavier.id || client.id == self.alice.id {
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
                [self.other_direct, self.other_group]
            } else {
                [self.demo_direct, self.demo_group]
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
    }
}

fn demo_ids() -> BTreeSet<i64> {
    (1..=5).collect()
}

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

#[tokio::test]
async fn another_organizations_conversations_cannot_be_read() {
    let orgs = TwoOrganizations::start().await;
    for intruder in orgs.intruders() {
        for c in intruder.foreign_conversations {
            for ep in conversation_endpoints(c, intruder.foreign_extension)
                .iter()
                .filter(|ep| ep.method == "GET")
            {
                let a = orgs
                    .server
                    .request(Cred::Bearer(&intruder.client.token), ep)
                    .await;
                let what = format!("{}: {}", intruder.label, ep.name());
                assert_error(&a, 404, "not_found", &what);
            }
        }
    }
}

#[tokio::test]
async fn no_list_mentions_another_organization() {
    let orgs = TwoOrganizations::start().await;
    orgs.assert_lists_keep_to_their_organization().await;
}

#[tokio::test]
async fn another_organizations_conversations_cannot_be_changed_or_joined() {
    let orgs = TwoOrganizations::start().await;
    let before = orgs.snapshots().await;
    for intruder in orgs.intruders() {
        let (client, label) = (intruder.client, intruder.label);
        for c in intruder.foreign_conversations {
            for ep in conversation_endpoints(c, intruder.foreign_extension)
                .iter()
                .filter(|ep| ep.method != "GET")
            {
                let a = orgs.server.request(Cred::Bearer(&client.token), ep).await;
                assert_error(&a, 404, "not_found", &format!("{label}: {}", ep.name()));
            }
            // Adding oneself to a foreign conversation is no way in either.
            let me_in = Endpoint::new(
                "POST",
                format!("/api/v1/conversations/{c}/participants"),
                Payload::Json(json!({"extension_ids": [client.id]})),
            );
            let a = orgs
                .server
                .request(Cred::Bearer(&client.token), &me_in)
                .await;
            assert_error(&a, 404, "not_found", &format!("{label}: {}", me_in.name()));
        }
    }
    orgs.assert_unchanged_since(&before).await;
}

#[tokio::test]
async fn another_organizations_extensions_cannot_be_added_to_a_conversation() {
    let orgs = TwoOrganizations::start().await;
    let before = orgs.snapshots().await;
    for intruder in orgs.intruders() {
        let (client, colleague, foreign_ext, label) = (
            intruder.client,
            intruder.colleague,
            intruder.foreign_extension,
            intruder.label,
        );
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
        let own_group = client.create_group("Own group", &[colleague]).await;
        let add = client.add_participants(own_group, &[foreign_ext]).await;
        assert_error(
            &add,
            404,
            "not_found",
            &format!("{label}: adding a foreign extension"),
        );
        let remove = client.remove_participant(own_group, foreign_ext).await;
        assert!(
            remove.status == 404 || remove.status == 422,
            "{label}: removing a foreign extension: {} {}",
            remove.status,
            remove.body
        );
        assert_eq!(client.leave(own_group).await.status, 204);
    }
    orgs.assert_unchanged_since(&before).await;
}

#[tokio::test]
async fn administrators_cannot_change_another_organizations_extensions() {
    let orgs = TwoOrganizations::start().await;
    let before = orgs.snapshots().await;
    for (admin, foreign) in [
        (&orgs.xavier, [1, 2]),
        (&orgs.alice, [orgs.xavier.id, orgs.yolanda.id]),
    ] {
        for ext in foreign {
            for ep in admin_endpoints_by_id(ext) {
                let a = orgs.server.request(Cred::Bearer(&admin.token), &ep).await;
                assert_error(
                    &a,
                    404,
                    "not_found",
                    &format!("cross-organization {}", ep.name()),
                );
            }
        }
    }
    orgs.assert_unchanged_since(&before).await;
}

#[tokio::test]
async fn live_events_never_cross_organizations() {
    let orgs = TwoOrganizations::start().await;
    let mut xavier_ws = orgs.xavier.ws(None).await;
    let mut alice_ws = orgs.alice.ws(None).await;

    // Changes of each organization's own groups, then messages in both.
    for (admin, colleague) in [(&orgs.alice, orgs.bob.id), (&orgs.xavier, orgs.yolanda.id)] {
        let own_group = admin.create_group("Own group", &[colleague]).await;
        assert_eq!(admin.leave(own_group).await.status, 204);
    }
    orgs.alice.send(orgs.demo_direct, "demo live").await;
    orgs.bob.send(orgs.demo_group, "demo live two").await;
    orgs.yolanda.send(orgs.other_direct, "other marker").await;
    orgs.xavier.send(orgs.other_group, "other live").await;
    orgs.bob.send(orgs.demo_direct, "demo marker").await;
    // Both sockets hear their own organization's changes; skip to the
    // markers, checking that nothing of the other organization came.
    skip_to_marker(
        &mut xavier_ws,
        &[orgs.demo_direct, orgs.demo_group],
        &demo_secrets(),
        "other marker",
    )
    .await;
    skip_to_marker(
        &mut alice_ws,
        &[orgs.other_direct, orgs.other_group],
        &other_secrets(),
        "demo marker",
    )
    .await;
}

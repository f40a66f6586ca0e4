//! Rules of the [`Sms`](crate::Sms) and [`Outbox`](crate::Outbox)
//! capabilities: SMS conversations, texts to and from outside numbers,
//! delivery statuses and opt-outs.

use super::numbers::unique_number;
use super::{Team, at, message, team};
use crate::{
    BusinessNumber, InboundOutcome, InboundText, NewConnection, NewNumber, NumberUpdate, OpenSms,
    Refusal, StatusOutcome, StatusReport, Store, StoreError,
};
use switchboard_domain::phone::E164;
use switchboard_domain::{
    Attachment, AttachmentState, CarrierKind, ConnectionId, ConversationId, ConversationKind,
    DeliveryStatus, EventKind, HistoryPage, MessageKind,
};

pub(super) async fn run_all(store: &dyn Store) {
    an_sms_conversation_is_one_per_pair_and_shared_by_the_holders_of_the_number(store).await;
    only_a_holder_of_a_number_that_can_text_opens_an_sms_conversation(store).await;
    a_text_to_an_outside_number_is_queued_with_its_message(store).await;
    a_claim_that_runs_out_is_handed_out_again_with_the_same_key(store).await;
    a_text_the_carrier_took_waits_for_its_statuses(store).await;
    statuses_never_move_backwards_and_early_ones_wait_for_the_send(store).await;
    a_text_that_cannot_be_sent_fails_its_delivery_with_the_reason(store).await;
    an_inbound_text_is_stored_once_per_webhook(store).await;
    an_inbound_text_to_an_unknown_number_writes_nothing(store).await;
    stop_refuses_texts_until_start(store).await;
    taking_a_number_away_takes_its_conversations_out_of_the_list(store).await;
    images_are_seen_only_by_participants(store).await;
    a_carrier_s_opt_out_refusal_opts_the_customer_out_here_too(store).await;
}

fn ext(s: &str) -> E164 {
    E164::parse_strict(s).expect("a valid number")
}

/// A team whose first two extensions hold an SMS number served by a
/// connection; the third holds none.
struct Texting {
    team: Team,
    number: BusinessNumber,
    connection: ConnectionId,
}

async fn texting(store: &dyn Store) -> Texting {
    drain(store).await;
    let team = team(store, "sms", 3).await;
    let connection = store
        .add_connection(NewConnection {
            org: team.org.id,
            kind: CarrierKind::Telnyx,
            name: "Telnyx".into(),
            settings: "{}".into(),
            sealed_secret: vec![1],
        })
        .await
        .expect("add a connection")
        .id;
    let number = store
        .add_number(NewNumber {
            org: team.org.id,
            number: unique_number(),
            sms_enabled: true,
            connection: Some(connection),
        })
        .await
        .expect("add a number");
    for i in 0..2 {
        store
            .assign_number(team.org.id, number.id, team.id(i))
            .await
            .expect("assign");
    }
    Texting {
        team,
        number,
        connection,
    }
}

/// Settles every text other rules left in the outbox (the outbox is one
/// queue for the whole store), so that a rule sees only its own.
async fn drain(store: &dyn Store) {
    let far = at(1_000_000_000);
    loop {
        let left = store
            .claim_texts(far, at(1_000_000_001), 1_000)
            .await
            .expect("claim");
        if left.is_empty() {
            return;
        }
        for text in left {
            store
                .text_failed(text.id, "settled by the contract".into(), far)
                .await
                .expect("settle");
        }
    }
}

async fn open(store: &dyn Store, t: &Texting, to: &E164) -> ConversationId {
    store
        .open_sms(OpenSms {
            org: t.team.org.id,
            me: t.team.id(0),
            from: t.number.id,
            to: to.clone(),
            now: at(0),
        })
        .await
        .expect("open an SMS conversation")
        .value
        .conversation
        .id
}

fn inbound(t: &Texting, key: &str, from: &E164, text: &str) -> InboundText {
    InboundText {
        connection: t.connection,
        event_key: key.into(),
        from: from.clone(),
        to: t.number.number.clone(),
        text: text.into(),
        attachments: Vec::new(),
        now: at(10),
    }
}

async fn send(store: &dyn Store, t: &Texting, conversation: ConversationId, body: &str) {
    store
        .post_message(message(conversation, &t.team.people[0], body, None, at(1)))
        .await
        .expect("send");
}

pub async fn an_sms_conversation_is_one_per_pair_and_shared_by_the_holders_of_the_number(
    store: &dyn Store,
) {
    let t = texting(store).await;
    let customer = ext("+14155552671");
    let opened = store
        .open_sms(OpenSms {
            org: t.team.org.id,
            me: t.team.id(0),
            from: t.number.id,
            to: customer.clone(),
            now: at(0),
        })
        .await
        .expect("open");
    assert!(opened.value.created);
    let c = &opened.value.conversation;
    assert_eq!(c.kind, ConversationKind::Sms);
    let holders: Vec<_> = c.participants.iter().map(|p| p.id).collect();
    assert_eq!(
        holders,
        vec![t.team.id(0), t.team.id(1)],
        "the number's holders"
    );
    assert_eq!(c.externals.len(), 1);
    assert_eq!(c.externals[0].number, customer);
    assert!(!c.externals[0].opted_out);
    assert_eq!(c.business_number.as_ref().map(|b| b.id), Some(t.number.id));
    assert_eq!(opened.events.len(), 1);
    assert_eq!(opened.events[0].kind(), EventKind::ConversationCreated);
    assert_eq!(&*opened.events[0].recipients, holders.as_slice());

    // The other holder opening it, and a text from the customer, land in
    // the same conversation.
    let again = store
        .open_sms(OpenSms {
            org: t.team.org.id,
            me: t.team.id(1),
            from: t.number.id,
            to: customer.clone(),
            now: at(1),
        })
        .await
        .expect("open again");
    assert!(!again.value.created);
    assert_eq!(again.value.conversation.id, c.id);
    let stored = store
        .accept_inbound(inbound(&t, "in-1", &customer, "hello"))
        .await
        .expect("inbound");
    let InboundOutcome::Stored(m) = stored.value else {
        panic!("stored");
    };
    assert_eq!(m.conversation_id, c.id);
    assert_eq!(m.sender, None);
    assert_eq!(
        m.external_sender.as_ref().map(|e| &e.number),
        Some(&customer)
    );
}

pub async fn only_a_holder_of_a_number_that_can_text_opens_an_sms_conversation(store: &dyn Store) {
    let t = texting(store).await;
    let refused = store
        .open_sms(OpenSms {
            org: t.team.org.id,
            me: t.team.id(2),
            from: t.number.id,
            to: ext("+14155552671"),
            now: at(0),
        })
        .await;
    assert!(
        matches!(refused, Err(StoreError::NotFound(_))),
        "not a holder: {refused:?}"
    );
    store
        .update_number(
            t.team.org.id,
            t.number.id,
            NumberUpdate {
                sms_enabled: Some(false),
                ..NumberUpdate::default()
            },
        )
        .await
        .expect("turn SMS off");
    let refused = store
        .open_sms(OpenSms {
            org: t.team.org.id,
            me: t.team.id(0),
            from: t.number.id,
            to: ext("+14155552671"),
            now: at(0),
        })
        .await;
    assert!(
        matches!(refused, Err(StoreError::Refused(Refusal::NumberCannotText))),
        "{refused:?}"
    );
}

pub async fn a_text_to_an_outside_number_is_queued_with_its_message(store: &dyn Store) {
    let t = texting(store).await;
    let customer = ext("+14155552671");
    let c = open(store, &t, &customer).await;
    let posted = store
        .post_message(message(
            c,
            &t.team.people[0],
            "Your order shipped",
            None,
            at(1),
        ))
        .await
        .expect("send");
    let m = &posted.value.message;
    assert_eq!(m.deliveries.len(), 1);
    assert_eq!(m.deliveries[0].to, customer);
    assert_eq!(m.deliveries[0].status, DeliveryStatus::Queued);
    assert_eq!(store.next_text_due().await.expect("due"), Some(at(1)));
    assert!(
        store
            .claim_texts(at(0), at(60_000), 10)
            .await
            .expect("claim")
            .is_empty(),
        "not due before it was sent"
    );
    let texts = store
        .claim_texts(at(1), at(60_000), 10)
        .await
        .expect("claim");
    assert_eq!(texts.len(), 1);
    let text = &texts[0];
    assert_eq!(text.message_id, m.id);
    assert_eq!(text.from, t.number.number);
    assert_eq!(text.to, customer);
    assert_eq!(text.body, "Your order shipped");
    assert_eq!(text.attempts, 1);
    assert_eq!(text.connection, t.connection);
    // The history shows the delivery too.
    let (history, _) = store
        .history(
            t.team.id(1),
            c,
            HistoryPage::parse(None, None, None).expect("page"),
        )
        .await
        .expect("history");
    let last = history.last().expect("a message");
    assert_eq!(last.deliveries, m.deliveries);
}

pub async fn a_claim_that_runs_out_is_handed_out_again_with_the_same_key(store: &dyn Store) {
    let t = texting(store).await;
    let c = open(store, &t, &ext("+14155552671")).await;
    send(store, &t, c, "one").await;
    let first = store.claim_texts(at(1), at(100), 10).await.expect("claim");
    assert_eq!(first.len(), 1);
    assert!(
        store
            .claim_texts(at(50), at(150), 10)
            .await
            .expect("claim")
            .is_empty(),
        "claimed texts are not handed out twice"
    );
    let again = store
        .claim_texts(at(100), at(200), 10)
        .await
        .expect("claim");
    assert_eq!(again.len(), 1, "the claim ran out");
    assert_eq!(again[0].idempotency_key, first[0].idempotency_key);
    assert_eq!(again[0].attempts, 2);
    // Releasing claims (a restart) makes them due at once.
    assert_eq!(store.release_claims(at(101)).await.expect("release"), 1);
    assert_eq!(store.next_text_due().await.expect("due"), Some(at(101)));
}

pub async fn a_text_the_carrier_took_waits_for_its_statuses(store: &dyn Store) {
    let t = texting(store).await;
    let c = open(store, &t, &ext("+14155552671")).await;
    send(store, &t, c, "one").await;
    let text = store
        .claim_texts(at(1), at(100), 10)
        .await
        .expect("claim")
        .remove(0);
    store
        .text_accepted(text.id, "carrier-1".into(), at(2))
        .await
        .expect("accepted");
    assert_eq!(store.next_text_due().await.expect("due"), None);
    assert!(
        store
            .claim_texts(at(1_000), at(2_000), 10)
            .await
            .expect("claim")
            .is_empty(),
        "a text the carrier took is never sent again"
    );
    let report = |key: &str, status| StatusReport {
        connection: t.connection,
        event_key: key.into(),
        carrier_message_id: "carrier-1".into(),
        status,
        reason: None,
        now: at(3),
    };
    let moved = store
        .record_status(report("s-1", DeliveryStatus::Delivered))
        .await
        .expect("status");
    assert_eq!(moved.value, StatusOutcome::Moved);
    assert_eq!(moved.events.len(), 1);
    assert_eq!(moved.events[0].kind(), EventKind::DeliveryUpdated);
    assert_eq!(&*moved.events[0].recipients, &[t.team.id(0), t.team.id(1)]);
    let repeated = store
        .record_status(report("s-1", DeliveryStatus::Delivered))
        .await
        .expect("status");
    assert_eq!(repeated.value, StatusOutcome::Duplicate);
    assert!(repeated.events.is_empty());
}

pub async fn statuses_never_move_backwards_and_early_ones_wait_for_the_send(store: &dyn Store) {
    let t = texting(store).await;
    let c = open(store, &t, &ext("+14155552671")).await;
    send(store, &t, c, "one").await;
    let text = store
        .claim_texts(at(1), at(100), 10)
        .await
        .expect("claim")
        .remove(0);
    let report = |key: &str, status| StatusReport {
        connection: t.connection,
        event_key: key.into(),
        carrier_message_id: "carrier-early".into(),
        status,
        reason: None,
        now: at(3),
    };
    // The carrier reports before its answer to the send is recorded.
    let early = store
        .record_status(report("e-1", DeliveryStatus::Sent))
        .await
        .expect("status");
    assert_eq!(early.value, StatusOutcome::Early);
    let accepted = store
        .text_accepted(text.id, "carrier-early".into(), at(4))
        .await
        .expect("accepted");
    assert_eq!(accepted.events.len(), 1, "the early status applies now");
    for (key, status) in [
        ("e-2", DeliveryStatus::Delivered),
        ("e-3", DeliveryStatus::Sent),
        ("e-4", DeliveryStatus::Queued),
        ("e-5", DeliveryStatus::Failed),
    ] {
        store
            .record_status(report(key, status))
            .await
            .expect("status");
    }
    let (history, _) = store
        .history(
            t.team.id(0),
            c,
            HistoryPage::parse(None, None, None).expect("page"),
        )
        .await
        .expect("history");
    let last = history.last().expect("a message");
    assert_eq!(last.deliveries[0].status, DeliveryStatus::Delivered);
}

pub async fn a_text_that_cannot_be_sent_fails_its_delivery_with_the_reason(store: &dyn Store) {
    let t = texting(store).await;
    let c = open(store, &t, &ext("+14155552671")).await;
    send(store, &t, c, "one").await;
    let text = store
        .claim_texts(at(1), at(100), 10)
        .await
        .expect("claim")
        .remove(0);
    store
        .text_retry(text.id, at(500), "the carrier answered 503".into())
        .await
        .expect("retry");
    assert_eq!(store.next_text_due().await.expect("due"), Some(at(500)));
    let text = store
        .claim_texts(at(500), at(600), 10)
        .await
        .expect("claim")
        .remove(0);
    assert_eq!(text.attempts, 2);
    let failed = store
        .text_failed(text.id, "not a mobile number".into(), at(501))
        .await
        .expect("fail");
    assert_eq!(failed.events.len(), 1);
    assert_eq!(failed.events[0].kind(), EventKind::DeliveryUpdated);
    assert_eq!(store.next_text_due().await.expect("due"), None);
    let (history, _) = store
        .history(
            t.team.id(0),
            c,
            HistoryPage::parse(None, None, None).expect("page"),
        )
        .await
        .expect("history");
    let d = &history.last().expect("a message").deliveries[0];
    assert_eq!(d.status, DeliveryStatus::Failed);
    assert_eq!(d.reason.as_deref(), Some("not a mobile number"));
}

pub async fn an_inbound_text_is_stored_once_per_webhook(store: &dyn Store) {
    let t = texting(store).await;
    let customer = ext("+14155552671");
    let first = store
        .accept_inbound(inbound(&t, "SM1", &customer, "Is it ready?"))
        .await
        .expect("inbound");
    let InboundOutcome::Stored(m) = first.value else {
        panic!("stored");
    };
    let kinds: Vec<_> = first.events.iter().map(|e| e.kind()).collect();
    assert_eq!(
        kinds,
        [EventKind::ConversationCreated, EventKind::MessageCreated],
        "the first text opens the conversation"
    );
    assert_eq!(
        &*first.events[1].recipients,
        &[t.team.id(0), t.team.id(1)],
        "every holder of the number hears it"
    );
    let again = store
        .accept_inbound(inbound(&t, "SM1", &customer, "Is it ready?"))
        .await
        .expect("inbound");
    assert!(matches!(again.value, InboundOutcome::Duplicate));
    assert!(again.events.is_empty());
    let (history, _) = store
        .history(
            t.team.id(0),
            m.conversation_id,
            HistoryPage::parse(None, None, None).expect("page"),
        )
        .await
        .expect("history");
    assert_eq!(history.len(), 1, "one message for two webhooks");
}

pub async fn an_inbound_text_to_an_unknown_number_writes_nothing(store: &dyn Store) {
    let t = texting(store).await;
    let customer = ext("+14155552671");
    let mut text = inbound(&t, "SM-unknown", &customer, "hi");
    text.to = unique_number();
    let refused = store.accept_inbound(text).await;
    assert!(
        matches!(refused, Err(StoreError::NotFound(_))),
        "{refused:?}"
    );
    // Another connection than the number's is no better.
    let other = store
        .add_connection(NewConnection {
            org: t.team.org.id,
            kind: CarrierKind::Twilio,
            name: "Other".into(),
            settings: "{}".into(),
            sealed_secret: vec![1],
        })
        .await
        .expect("connection")
        .id;
    let mut text = inbound(&t, "SM-unknown", &customer, "hi");
    text.connection = other;
    assert!(store.accept_inbound(text).await.is_err());
    // The key was not used up by the refusals.
    let stored = store
        .accept_inbound(inbound(&t, "SM-unknown", &customer, "hi"))
        .await
        .expect("inbound");
    assert!(matches!(stored.value, InboundOutcome::Stored(_)));
    assert!(
        store
            .conversations_of(t.team.id(0))
            .await
            .expect("list")
            .len()
            == 1
    );
}

pub async fn stop_refuses_texts_until_start(store: &dyn Store) {
    let t = texting(store).await;
    let customer = ext("+14155552671");
    let c = open(store, &t, &customer).await;
    let stop = store
        .accept_inbound(inbound(&t, "k-stop", &customer, " Stop! "))
        .await
        .expect("stop");
    let kinds: Vec<_> = stop.events.iter().map(|e| e.kind()).collect();
    assert_eq!(
        kinds,
        [
            EventKind::MessageCreated,
            EventKind::MessageCreated,
            EventKind::ConversationUpdated
        ],
        "the text, a system note, and the conversation now opted out"
    );
    let conversation = store
        .conversation_for(t.team.id(0), c)
        .await
        .expect("read")
        .expect("mine");
    assert!(conversation.externals[0].opted_out);
    let refused = store
        .post_message(message(c, &t.team.people[0], "Sale today", None, at(20)))
        .await;
    assert!(
        matches!(
            refused,
            Err(StoreError::Refused(Refusal::RecipientOptedOut(_)))
        ),
        "{refused:?}"
    );
    let (history, _) = store
        .history(
            t.team.id(0),
            c,
            HistoryPage::parse(None, None, None).expect("page"),
        )
        .await
        .expect("history");
    assert_eq!(history.len(), 2, "the refused text left nothing");
    assert_eq!(history[1].kind, MessageKind::System);
    store
        .accept_inbound(inbound(&t, "k-start", &customer, "START"))
        .await
        .expect("start");
    send(store, &t, c, "Welcome back").await;
}

pub async fn taking_a_number_away_takes_its_conversations_out_of_the_list(store: &dyn Store) {
    let t = texting(store).await;
    let c = open(store, &t, &ext("+14155552671")).await;
    send(store, &t, c, "hello").await;
    let taken = store
        .unassign_number(t.team.org.id, t.number.id, t.team.id(1))
        .await
        .expect("take away");
    assert_eq!(taken.events.len(), 1);
    assert_eq!(taken.events[0].kind(), EventKind::ConversationUpdated);
    assert!(
        taken.events[0].recipients.contains(&t.team.id(1)),
        "the one losing it is told"
    );
    let list = store.conversations_of(t.team.id(1)).await.expect("list");
    assert!(
        list.iter().all(|s| s.conversation.id != c),
        "out of its list"
    );
    let (history, _) = store
        .history(
            t.team.id(0),
            c,
            HistoryPage::parse(None, None, None).expect("page"),
        )
        .await
        .expect("the others keep the history");
    assert_eq!(history.len(), 1);
    // Giving it to a third extension lets it in, history and all.
    let given = store
        .assign_number(t.team.org.id, t.number.id, t.team.id(2))
        .await
        .expect("give");
    assert_eq!(given.events.len(), 1);
    let (history, _) = store
        .history(
            t.team.id(2),
            c,
            HistoryPage::parse(None, None, None).expect("page"),
        )
        .await
        .expect("history");
    assert_eq!(history.len(), 1);
}

pub async fn images_are_seen_only_by_participants(store: &dyn Store) {
    let t = texting(store).await;
    let customer = ext("+14155552671");
    let id = "c0ffee".repeat(10) + "c0ff";
    let mut text = inbound(&t, "mms-1", &customer, "");
    text.attachments = vec![Attachment {
        id: "pending-0".into(),
        content_type: "image/jpeg".into(),
        width: None,
        height: None,
        state: AttachmentState::Pending,
        url: None,
    }];
    let InboundOutcome::Stored(m) = store.accept_inbound(text).await.expect("inbound").value else {
        panic!("stored");
    };
    assert!(
        !store
            .may_see_media(t.team.id(0), id.clone())
            .await
            .expect("may")
    );
    let updated = store
        .update_attachment(
            m.id,
            0,
            Attachment {
                id: id.clone(),
                content_type: "image/jpeg".into(),
                width: Some(4),
                height: Some(3),
                state: AttachmentState::Ready,
                url: Some(format!("/api/v1/media/{id}")),
            },
        )
        .await
        .expect("fetched");
    assert_eq!(updated.events[0].kind(), EventKind::MessageUpdated);
    assert!(
        store
            .may_see_media(t.team.id(0), id.clone())
            .await
            .expect("may")
    );
    assert!(
        !store
            .may_see_media(t.team.id(2), id.clone())
            .await
            .expect("may"),
        "an extension without the number"
    );
    let stranger = team(store, "sms", 1).await;
    assert!(!store.may_see_media(stranger.id(0), id).await.expect("may"));
}

pub async fn a_carrier_s_opt_out_refusal_opts_the_customer_out_here_too(store: &dyn Store) {
    let t = texting(store).await;
    let customer = ext("+14155552671");
    let c = open(store, &t, &customer).await;
    send(store, &t, c, "Sale today").await;
    let text = store
        .claim_texts(at(1), at(100), 10)
        .await
        .expect("claim")
        .remove(0);
    let refused = store
        .text_opted_out(text.id, "opted out at the carrier".into(), at(2))
        .await
        .expect("refused");
    let kinds: Vec<_> = refused.events.iter().map(|e| e.kind()).collect();
    assert_eq!(
        kinds,
        [
            EventKind::DeliveryUpdated,
            EventKind::MessageCreated,
            EventKind::ConversationUpdated
        ],
        "the failure, a system note, the conversation now opted out"
    );
    let conversation = store
        .conversation_for(t.team.id(0), c)
        .await
        .expect("read")
        .expect("mine");
    assert!(conversation.externals[0].opted_out);
    let again = store
        .post_message(message(c, &t.team.people[0], "Last chance", None, at(3)))
        .await;
    assert!(
        matches!(
            again,
            Err(StoreError::Refused(Refusal::RecipientOptedOut(_)))
        ),
        "{again:?}"
    );
}

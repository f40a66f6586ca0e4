//! Rules of commit listeners
//! ([`EventLog::on_commit`](crate::EventLog::on_commit)): every committed
//! event is heard once, in cursor order, before the caller that caused it is
//! answered; failed changes and replayed sends are silent.

use super::*;
use crate::{CommitListener, NewPassword, Store};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use switchboard_domain::{EventKind, GroupChange};

pub(super) async fn run_all(store: &dyn Store) {
    listeners_hear_a_change_before_its_caller_is_answered(store).await;
    listeners_hear_every_event_once_in_cursor_order(store).await;
    refused_changes_and_replayed_sends_are_not_heard(store).await;
    listeners_hear_sessions_end_and_extensions_change(store).await;
}

type Heard = Arc<parking_lot::Mutex<Vec<(Cursor, EventKind)>>>;

/// Collects every event a listener hears from now on.
fn listen(store: &dyn Store) -> Heard {
    let heard: Heard = Arc::default();
    let sink = Arc::clone(&heard);
    let listener: CommitListener =
        Arc::new(move |e: &Recorded| sink.lock().push((e.cursor, e.kind())));
    store.on_commit(listener);
    heard
}

fn assert_heard(heard: &Heard, events: &[Recorded]) {
    let log = heard.lock();
    for e in events {
        assert!(
            log.contains(&(e.cursor, e.kind())),
            "heard before the caller was answered"
        );
    }
}

/// Polls futures together on the current task (the contract needs no
/// runtime of its own).
async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(v) => *output = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outputs
        .into_iter()
        .map(|o| o.expect("every future finished"))
        .collect()
}

/// A team of four in one group "Loud", created after `listen`.
async fn loud_group(store: &dyn Store) -> (Team, Heard, Committed<Conversation>) {
    let t = team(store, "listen", 4).await;
    let heard = listen(store);
    let g = create_group(
        store,
        t.org.id,
        t.id(0),
        "Loud",
        &[t.id(1), t.id(2), t.id(3)],
        at(1),
    )
    .await
    .expect("group");
    (t, heard, g)
}

pub async fn listeners_hear_a_change_before_its_caller_is_answered(store: &dyn Store) {
    let (_, heard, g) = loud_group(store).await;
    assert_heard(&heard, &g.events);
}

pub async fn listeners_hear_every_event_once_in_cursor_order(store: &dyn Store) {
    let (t, heard, g) = loud_group(store).await;
    let gid = g.value.id;

    // Concurrent senders: every event is heard, in cursor order.
    let bursts = t.people.iter().map(|sender| {
        let heard = Arc::clone(&heard);
        async move {
            let mut recorded = Vec::new();
            for i in 0..25 {
                let posted = post_keyed(
                    store,
                    sender,
                    gid,
                    &format!("{} says {i}", sender.number),
                    Some(&format!("listen-{}-{i}", sender.number)),
                    at(10 + i),
                )
                .await;
                assert_heard(&heard, &posted.events);
                recorded.extend(posted.events);
            }
            let read = mark_read(store, sender.id, gid, MessageId(i64::MAX), at(50))
                .await
                .expect("read");
            recorded.extend(read.events);
            recorded
        }
    });
    let recorded: Vec<Recorded> = join_all(bursts.collect())
        .await
        .into_iter()
        .flatten()
        .collect();

    let log = heard.lock().clone();
    assert!(
        log.windows(2).all(|w| w[0].0 < w[1].0),
        "heard in strictly increasing cursor order"
    );
    let heard_cursors: BTreeSet<Cursor> = log.iter().map(|(c, _)| *c).collect();
    let recorded_cursors: BTreeSet<Cursor> =
        g.events.iter().chain(&recorded).map(|e| e.cursor).collect();
    assert_eq!(
        recorded_cursors.len(),
        g.events.len() + recorded.len(),
        "cursors are unique"
    );
    assert_eq!(
        heard_cursors, recorded_cursors,
        "every event heard once, nothing else"
    );
    assert_eq!(
        log.iter()
            .filter(|(_, k)| *k == EventKind::MessageCreated)
            .count(),
        1 + 4 * 25
    );
    assert_eq!(
        history_all(store, t.id(3), gid).await.len(),
        1 + 4 * 25,
        "every send stored once"
    );
}

pub async fn refused_changes_and_replayed_sends_are_not_heard(store: &dyn Store) {
    let (t, heard, g) = loud_group(store).await;
    let gid = g.value.id;
    post_keyed(
        store,
        &t.people[0],
        gid,
        "201 says 0",
        Some("listen-201-0"),
        at(10),
    )
    .await;
    let count = heard.lock().len();
    let r = edit(
        store,
        t.org.id,
        t.id(0),
        gid,
        GroupChange::Add(vec![t.id(1)]),
        at(60),
    )
    .await;
    assert!(r.is_err());
    let r = store
        .post_message(message(
            gid,
            &t.people[0],
            "replayed",
            Some("listen-201-0"),
            at(61),
        ))
        .await
        .expect("replay");
    assert!(r.value.replayed);
    assert_eq!(heard.lock().len(), count, "refusals and replays are silent");
}

pub async fn listeners_hear_sessions_end_and_extensions_change(store: &dyn Store) {
    let t = team(store, "listen-own", 2).await;
    let heard = listen(store);
    let token = sign_in(store, t.id(1), T0).await;
    let revoked = store.revoke_session(&token).await.expect("revoke");
    let disabled = disable(store, t.org.id, t.id(1)).await;
    let changed = store
        .set_password_hash(NewPassword {
            org: t.org.id,
            extension: t.id(0),
            hash: "changed".into(),
            keep: None,
        })
        .await
        .expect("password");
    let all: Vec<Recorded> = [revoked.events, disabled.events, changed.events].concat();
    assert_eq!(
        kinds(&all),
        [
            EventKind::SessionEnded,
            EventKind::ExtensionChanged,
            EventKind::ExtensionChanged
        ]
    );
    assert_heard(&heard, &all);
    assert_eq!(
        *heard.lock(),
        all.iter().map(|e| (e.cursor, e.kind())).collect::<Vec<_>>(),
        "heard in order, nothing else"
    );
}

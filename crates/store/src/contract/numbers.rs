//! Rules of the [`Numbers`](crate::Numbers) capability: business numbers,
//! who may text from them, and the carrier connections serving them.

use super::team;
use crate::{Assignment, NewConnection, NewNumber, NumberUpdate, Store, StoreError};
use switchboard_domain::phone::E164;
use switchboard_domain::{CarrierKind, NumberId, OrgId};

pub(super) async fn run_all(store: &dyn Store) {
    a_number_belongs_to_one_organization_only(store).await;
    numbers_are_listed_per_organization_by_number(store).await;
    a_number_is_found_by_its_e164_form_for_inbound_texts(store).await;
    a_connection_is_used_only_by_numbers_of_its_organization(store).await;
    a_connection_name_is_unique_in_its_organization(store).await;
    assigned_numbers_are_the_ones_an_extension_texts_from(store).await;
    the_first_sms_number_becomes_the_default_and_another_can_be_chosen(store).await;
    taking_a_number_away_passes_the_default_on(store).await;
    a_number_that_stops_texting_is_nobodys_default(store).await;
    a_number_that_starts_texting_becomes_the_default_of_those_without_one(store).await;
    assignments_list_who_texts_from_each_number_of_the_organization(store).await;
    numbers_and_extensions_of_another_organization_cannot_be_assigned(store).await;
}

/// A US number no other rule has used in this process (numbers are unique
/// in the whole store): +1 415 555 01xx, then 02xx, … within the test range.
pub(super) fn unique_number() -> E164 {
    // Random rather than counted: rules run in parallel processes against
    // one shared database that keeps the numbers of earlier runs.
    let n = super::random_u64();
    let exchange = 200 + n % 800;
    let line = (n / 800) % 10_000;
    E164::parse_strict(&format!("+1415{exchange:03}{line:04}")).expect("a valid number")
}

async fn add(store: &dyn Store, org: OrgId, sms_enabled: bool) -> crate::BusinessNumber {
    store
        .add_number(NewNumber {
            org,
            number: unique_number(),
            sms_enabled,
            connection: None,
        })
        .await
        .expect("add a number")
}

async fn connection(store: &dyn Store, org: OrgId, name: &str) -> crate::CarrierConnection {
    store
        .add_connection(NewConnection {
            org,
            kind: CarrierKind::Twilio,
            name: name.into(),
            settings: r#"{"account_sid":"AC01"}"#.into(),
            sealed_secret: vec![1, 2, 3],
        })
        .await
        .expect("add a connection")
}

pub async fn a_number_belongs_to_one_organization_only(store: &dyn Store) {
    let a = team(store, "num", 1).await;
    let b = team(store, "num", 1).await;
    let n = add(store, a.org.id, true).await;
    for org in [a.org.id, b.org.id] {
        let again = store
            .add_number(NewNumber {
                org,
                number: n.number.clone(),
                sms_enabled: true,
                connection: None,
            })
            .await;
        assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    }
    assert!(store.numbers(b.org.id).await.expect("list").is_empty());
}

pub async fn numbers_are_listed_per_organization_by_number(store: &dyn Store) {
    let a = team(store, "num", 1).await;
    let b = team(store, "num", 1).await;
    let first = add(store, a.org.id, true).await;
    let second = add(store, a.org.id, false).await;
    let other = add(store, b.org.id, true).await;
    let listed = store.numbers(a.org.id).await.expect("list");
    let mut want = vec![first, second];
    want.sort_by(|x, y| x.number.cmp(&y.number));
    assert_eq!(listed, want);
    assert_eq!(store.numbers(b.org.id).await.expect("list"), vec![other]);
}

pub async fn a_number_is_found_by_its_e164_form_for_inbound_texts(store: &dyn Store) {
    let a = team(store, "num", 1).await;
    let n = add(store, a.org.id, true).await;
    let found = store.number_by_e164(&n.number).await.expect("look up");
    assert_eq!(found, Some(n));
    let nobody = unique_number();
    assert_eq!(store.number_by_e164(&nobody).await.expect("look up"), None);
}

pub async fn a_connection_is_used_only_by_numbers_of_its_organization(store: &dyn Store) {
    let a = team(store, "num", 1).await;
    let b = team(store, "num", 1).await;
    let theirs = connection(store, b.org.id, "b's account").await;
    let refused = store
        .add_number(NewNumber {
            org: a.org.id,
            number: unique_number(),
            sms_enabled: true,
            connection: Some(theirs.id),
        })
        .await;
    assert!(
        matches!(refused, Err(StoreError::NotFound(_))),
        "{refused:?}"
    );
    let ours = connection(store, a.org.id, "a's account").await;
    let n = add(store, a.org.id, true).await;
    let moved = store
        .update_number(
            a.org.id,
            n.id,
            NumberUpdate {
                connection: Some(Some(ours.id)),
                ..NumberUpdate::default()
            },
        )
        .await
        .expect("set the connection");
    assert_eq!(moved.connection_id, Some(ours.id));
    let refused = store
        .update_number(
            a.org.id,
            n.id,
            NumberUpdate {
                connection: Some(Some(theirs.id)),
                ..NumberUpdate::default()
            },
        )
        .await;
    assert!(
        matches!(refused, Err(StoreError::NotFound(_))),
        "{refused:?}"
    );
    let found = store.connection(ours.id).await.expect("look up");
    assert_eq!(found.as_ref().map(|c| c.org_id), Some(a.org.id));
    assert_eq!(found.map(|c| c.sealed_secret), Some(vec![1, 2, 3]));
    assert_eq!(store.connections(a.org.id).await.expect("list"), vec![ours]);
}

pub async fn a_connection_name_is_unique_in_its_organization(store: &dyn Store) {
    let a = team(store, "num", 1).await;
    let b = team(store, "num", 1).await;
    connection(store, a.org.id, "main").await;
    connection(store, b.org.id, "main").await;
    let twice = store
        .add_connection(NewConnection {
            org: a.org.id,
            kind: CarrierKind::Telnyx,
            name: "main".into(),
            settings: "{}".into(),
            sealed_secret: Vec::new(),
        })
        .await;
    assert!(matches!(twice, Err(StoreError::Conflict(_))), "{twice:?}");
}

pub async fn assigned_numbers_are_the_ones_an_extension_texts_from(store: &dyn Store) {
    let t = team(store, "num", 2).await;
    let n = add(store, t.org.id, true).await;
    assert!(store.numbers_of(t.id(0)).await.expect("mine").is_empty());
    store
        .assign_number(t.org.id, n.id, t.id(0))
        .await
        .expect("assign");
    store
        .assign_number(t.org.id, n.id, t.id(0))
        .await
        .expect("assigning twice changes nothing");
    let mine = store.numbers_of(t.id(0)).await.expect("mine");
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].number, n);
    assert!(store.numbers_of(t.id(1)).await.expect("theirs").is_empty());
}

pub async fn the_first_sms_number_becomes_the_default_and_another_can_be_chosen(store: &dyn Store) {
    let t = team(store, "num", 1).await;
    let voice_only = add(store, t.org.id, false).await;
    let first = add(store, t.org.id, true).await;
    let second = add(store, t.org.id, true).await;
    for n in [&voice_only, &first, &second] {
        store
            .assign_number(t.org.id, n.id, t.id(0))
            .await
            .expect("assign");
    }
    let default = |mine: &[crate::OwnNumber]| -> Vec<NumberId> {
        mine.iter()
            .filter(|o| o.default)
            .map(|o| o.number.id)
            .collect()
    };
    let mine = store.numbers_of(t.id(0)).await.expect("mine");
    assert_eq!(default(&mine), vec![first.id], "the first SMS number");
    store
        .set_default_number(t.id(0), second.id)
        .await
        .expect("choose another");
    let mine = store.numbers_of(t.id(0)).await.expect("mine");
    assert_eq!(default(&mine), vec![second.id]);
    let refused = store.set_default_number(t.id(0), voice_only.id).await;
    assert!(
        matches!(refused, Err(StoreError::NotFound(_))),
        "a number that does not text cannot be the default: {refused:?}"
    );
}

pub async fn taking_a_number_away_passes_the_default_on(store: &dyn Store) {
    let t = team(store, "num", 1).await;
    let a = add(store, t.org.id, true).await;
    let b = add(store, t.org.id, true).await;
    for n in [&a, &b] {
        store
            .assign_number(t.org.id, n.id, t.id(0))
            .await
            .expect("assign");
    }
    let first_default = store
        .numbers_of(t.id(0))
        .await
        .expect("mine")
        .into_iter()
        .find(|o| o.default)
        .expect("a default")
        .number;
    store
        .unassign_number(t.org.id, first_default.id, t.id(0))
        .await
        .expect("take away");
    let mine = store.numbers_of(t.id(0)).await.expect("mine");
    assert_eq!(mine.len(), 1);
    assert!(mine[0].default, "the remaining number is the default");
    assert_ne!(mine[0].number.id, first_default.id);
}

pub async fn a_number_that_stops_texting_is_nobodys_default(store: &dyn Store) {
    let t = team(store, "num", 1).await;
    let n = add(store, t.org.id, true).await;
    store
        .assign_number(t.org.id, n.id, t.id(0))
        .await
        .expect("assign");
    let updated = store
        .update_number(
            t.org.id,
            n.id,
            NumberUpdate {
                sms_enabled: Some(false),
                ..NumberUpdate::default()
            },
        )
        .await
        .expect("update");
    assert!(!updated.sms_enabled);
    let mine = store.numbers_of(t.id(0)).await.expect("mine");
    assert!(mine.iter().all(|o| !o.default), "{mine:?}");
}

/// Sets whether `number` of `org` texts.
async fn set_sms(store: &dyn Store, org: OrgId, number: NumberId, sms_enabled: bool) {
    store
        .update_number(
            org,
            number,
            NumberUpdate {
                sms_enabled: Some(sms_enabled),
                ..NumberUpdate::default()
            },
        )
        .await
        .expect("update");
}

async fn default_of(
    store: &dyn Store,
    extension: switchboard_domain::ExtensionId,
) -> Vec<NumberId> {
    store
        .numbers_of(extension)
        .await
        .expect("mine")
        .iter()
        .filter(|o| o.default)
        .map(|o| o.number.id)
        .collect()
}

pub async fn a_number_that_starts_texting_becomes_the_default_of_those_without_one(
    store: &dyn Store,
) {
    let t = team(store, "num", 2).await;
    let quiet = add(store, t.org.id, false).await;
    let texting = add(store, t.org.id, true).await;
    store
        .assign_number(t.org.id, quiet.id, t.id(0))
        .await
        .expect("assign");
    for n in [&quiet, &texting] {
        store
            .assign_number(t.org.id, n.id, t.id(1))
            .await
            .expect("assign");
    }
    assert!(default_of(store, t.id(0)).await.is_empty(), "nothing texts");
    assert_eq!(default_of(store, t.id(1)).await, vec![texting.id]);

    set_sms(store, t.org.id, quiet.id, true).await;
    assert_eq!(
        default_of(store, t.id(0)).await,
        vec![quiet.id],
        "the extension without a default gets it"
    );
    assert_eq!(
        default_of(store, t.id(1)).await,
        vec![texting.id],
        "a chosen default stays"
    );

    set_sms(store, t.org.id, texting.id, false).await;
    assert_eq!(
        default_of(store, t.id(1)).await,
        vec![quiet.id],
        "the default passes to the extension's other texting number"
    );
}

pub async fn assignments_list_who_texts_from_each_number_of_the_organization(store: &dyn Store) {
    let a = team(store, "num", 3).await;
    let b = team(store, "num", 1).await;
    let first = add(store, a.org.id, true).await;
    let second = add(store, a.org.id, false).await;
    let theirs = add(store, b.org.id, true).await;
    for (n, who) in [(&first, 2), (&first, 0), (&second, 1)] {
        store
            .assign_number(a.org.id, n.id, a.id(who))
            .await
            .expect("assign");
    }
    store
        .assign_number(b.org.id, theirs.id, b.id(0))
        .await
        .expect("assign");
    let mut want = vec![
        Assignment {
            number: first.id,
            extension: a.id(0),
        },
        Assignment {
            number: first.id,
            extension: a.id(2),
        },
        Assignment {
            number: second.id,
            extension: a.id(1),
        },
    ];
    if second.number < first.number {
        want.rotate_left(2);
    }
    assert_eq!(store.assignments(a.org.id).await.expect("list"), want);

    store
        .unassign_number(a.org.id, first.id, a.id(2))
        .await
        .expect("take away");
    let listed = store.assignments(a.org.id).await.expect("list");
    assert!(
        !listed.contains(&Assignment {
            number: first.id,
            extension: a.id(2)
        }),
        "{listed:?}"
    );
    assert_eq!(listed.len(), 2);
    assert_eq!(
        store.assignments(b.org.id).await.expect("list"),
        vec![Assignment {
            number: theirs.id,
            extension: b.id(0)
        }]
    );
}

pub async fn numbers_and_extensions_of_another_organization_cannot_be_assigned(store: &dyn Store) {
    let a = team(store, "num", 1).await;
    let b = team(store, "num", 1).await;
    let theirs = add(store, b.org.id, true).await;
    let ours = add(store, a.org.id, true).await;
    let refused = store.assign_number(a.org.id, theirs.id, a.id(0)).await;
    assert!(
        matches!(refused, Err(StoreError::NotFound(_))),
        "{refused:?}"
    );
    let refused = store.assign_number(a.org.id, ours.id, b.id(0)).await;
    assert!(
        matches!(refused, Err(StoreError::NotFound(_))),
        "{refused:?}"
    );
    let refused = store
        .update_number(b.org.id, ours.id, NumberUpdate::default())
        .await;
    assert!(
        matches!(refused, Err(StoreError::NotFound(_))),
        "{refused:?}"
    );
    assert!(store.numbers_of(b.id(0)).await.expect("theirs").is_empty());
}

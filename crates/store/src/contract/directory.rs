//! Rules of the [`Directory`](crate::Directory): organizations, extensions,
//! sessions, and the events that tell servers a session ended or an
//! extension changed.

use super::*;
use crate::{ExtensionUpdate, NewPassword, Store, StoreError};
use switchboard_domain::phone::Country;
use switchboard_domain::{AlertTone, EndedSessions, Event, EventKind, ExtensionId, OrgId};

pub(super) async fn run_all(store: &dyn Store) {
    a_new_organization_has_its_slug_its_name_and_the_chime_tone(store).await;
    a_taken_slug_is_a_conflict_and_creates_nothing(store).await;
    organizations_are_found_by_slug_and_listed(store).await;
    an_alert_tone_changes_for_its_organization_only(store).await;
    a_default_country_starts_as_the_us_and_changes_for_its_organization_only(store).await;
    new_extensions_come_back_with_their_number_name_and_role(store).await;
    a_taken_number_fails_the_whole_batch(store).await;
    numbers_are_per_organization_and_lists_go_by_number(store).await;
    extension_look_ups_stay_inside_the_organization(store).await;
    an_update_changes_only_what_is_given(store).await;
    an_update_through_another_organization_is_not_found(store).await;
    an_organization_keeps_an_enabled_administrator(store).await;
    a_password_hash_changes_inside_its_organization_only(store).await;
    another_organization_has_its_own_extensions(store).await;
    a_session_lives_until_it_expires(store).await;
    a_revoked_session_is_gone_and_revoking_twice_is_fine(store).await;
    a_password_change_keeps_only_the_session_asked_for(store).await;
    a_disabled_extension_has_no_live_session(store).await;
    live_sessions_are_those_not_revoked_expired_or_disabled(store).await;
    revoking_a_session_records_session_ended_with_its_tag(store).await;
    revoking_no_session_records_nothing(store).await;
    disabling_an_extension_records_extension_changed_ending_every_session(store).await;
    a_settings_change_records_extension_changed_ending_no_session(store).await;
    a_password_change_records_extension_changed_ending_all_but_the_kept_session(store).await;
}

// ---------------------------------------------------------------------------
// Organizations.

pub async fn a_new_organization_has_its_slug_its_name_and_the_chime_tone(store: &dyn Store) {
    let slug = unique_slug("org");
    let org = store
        .create_org(&slug, &DisplayName::parse("Acme Plumbing").expect("name"))
        .await
        .expect("create org");
    assert_eq!(org.slug, slug.as_str());
    assert_eq!(org.name, "Acme Plumbing");
    assert_eq!(
        org.alert_tone,
        AlertTone::Chime,
        "the default tone is chime"
    );
}

pub async fn a_taken_slug_is_a_conflict_and_creates_nothing(store: &dyn Store) {
    let slug = unique_slug("org");
    let org = store
        .create_org(&slug, &DisplayName::parse("Acme Plumbing").expect("name"))
        .await
        .expect("create org");
    let again = store
        .create_org(&slug, &DisplayName::parse("Another Acme").expect("name"))
        .await;
    assert!(
        matches!(again, Err(StoreError::Conflict(_))),
        "a taken slug is a conflict: {again:?}"
    );
    let all = store.list_orgs().await.expect("list_orgs");
    assert_eq!(
        all.iter().filter(|o| o.slug == org.slug).count(),
        1,
        "the refused duplicate was not created"
    );
}

pub async fn organizations_are_found_by_slug_and_listed(store: &dyn Store) {
    let slug = unique_slug("org");
    let org = store
        .create_org(&slug, &DisplayName::parse("Acme Plumbing").expect("name"))
        .await
        .expect("create org");
    assert_eq!(
        store.org_by_slug(&slug).await.expect("org_by_slug"),
        Some(org.clone())
    );
    assert_eq!(
        store
            .org_by_slug(&unique_slug("missing"))
            .await
            .expect("org_by_slug"),
        None
    );
    let second = store
        .create_org(
            &unique_slug("org"),
            &DisplayName::parse("Second").expect("name"),
        )
        .await
        .expect("create org");
    assert_ne!(org.id, second.id);
    let all = store.list_orgs().await.expect("list_orgs");
    assert!(all.contains(&org) && all.contains(&second), "{all:?}");
}

pub async fn an_alert_tone_changes_for_its_organization_only(store: &dyn Store) {
    let slug = unique_slug("org");
    let org = store
        .create_org(&slug, &DisplayName::parse("Acme Plumbing").expect("name"))
        .await
        .expect("create org");
    let second = store
        .create_org(
            &unique_slug("org"),
            &DisplayName::parse("Second").expect("name"),
        )
        .await
        .expect("create org");
    let toned = store
        .set_alert_tone(org.id, AlertTone::Marimba)
        .await
        .expect("set_alert_tone");
    assert_eq!(toned.alert_tone, AlertTone::Marimba);
    assert_eq!(toned.id, org.id);
    assert_eq!(
        store
            .org_by_slug(&slug)
            .await
            .expect("org")
            .map(|o| o.alert_tone),
        Some(AlertTone::Marimba)
    );
    let other = store
        .org_by_slug(&OrgSlug::parse(&second.slug).expect("slug"))
        .await
        .expect("org");
    assert_eq!(
        other.map(|o| o.alert_tone),
        Some(AlertTone::Chime),
        "only that organization changed"
    );
    let missing = store.set_alert_tone(OrgId(i64::MAX), AlertTone::Bell).await;
    assert!(is_not_found(&missing), "{missing:?}");
}

pub async fn a_default_country_starts_as_the_us_and_changes_for_its_organization_only(
    store: &dyn Store,
) {
    let slug = unique_slug("org");
    let org = store
        .create_org(&slug, &DisplayName::parse("Acme Plumbing").expect("name"))
        .await
        .expect("create org");
    let second = store
        .create_org(
            &unique_slug("org"),
            &DisplayName::parse("Second").expect("name"),
        )
        .await
        .expect("create org");
    assert_eq!(org.default_country, Country::US);
    let gb = Country::parse("GB").expect("a country");
    let changed = store
        .set_default_country(org.id, gb)
        .await
        .expect("set_default_country");
    assert_eq!(changed.default_country, gb);
    assert_eq!(changed.alert_tone, org.alert_tone, "nothing else changed");
    let found = store.org_by_slug(&slug).await.expect("org");
    assert_eq!(found.map(|o| o.default_country), Some(gb));
    let other = store
        .org_by_slug(&OrgSlug::parse(&second.slug).expect("slug"))
        .await
        .expect("org");
    assert_eq!(
        other.map(|o| o.default_country),
        Some(Country::US),
        "only that organization changed"
    );

    // A session carries its organization's country.
    let people = store
        .create_extensions(
            org.id,
            vec![new_extension("201", "Person 201", Role::Admin)],
            T0,
        )
        .await
        .expect("create");
    let token = sign_in(store, people[0].id, T0).await;
    let session = store.session(&token, T0).await.expect("session");
    assert_eq!(session.map(|s| s.org.default_country), Some(gb));

    let missing = store.set_default_country(OrgId(i64::MAX), gb).await;
    assert!(is_not_found(&missing), "{missing:?}");
}

// ---------------------------------------------------------------------------
// Extensions.

pub async fn new_extensions_come_back_with_their_number_name_and_role(store: &dyn Store) {
    let t = team(store, "ext", 3).await;
    let first = &t.people[0];
    assert_eq!(first.number, "201");
    assert_eq!(first.name, "Person 201");
    assert_eq!(first.role, Role::Admin);
    assert_eq!(t.people[1].role, Role::Member);
    assert!(!first.disabled && !first.alert_muted);
    assert_eq!(first.org_id, t.org.id);
    assert_eq!(set(&t.ids()).len(), 3, "ids are distinct");
}

pub async fn a_taken_number_fails_the_whole_batch(store: &dyn Store) {
    let t = team(store, "ext", 3).await;
    let batch = vec![
        new_extension("300", "New One", Role::Member),
        new_extension("201", "Taken", Role::Member),
    ];
    let refused = store.create_extensions(t.org.id, batch, T0).await;
    assert!(
        matches!(refused, Err(StoreError::Conflict(_))),
        "{refused:?}"
    );
    let twice = vec![
        new_extension("301", "Twin A", Role::Member),
        new_extension("301", "Twin B", Role::Member),
    ];
    let refused = store.create_extensions(t.org.id, twice, T0).await;
    assert!(
        matches!(refused, Err(StoreError::Conflict(_))),
        "{refused:?}"
    );
    let listed = store.list_extensions(t.org.id).await.expect("list");
    assert_eq!(
        listed.iter().map(|e| e.number.as_str()).collect::<Vec<_>>(),
        ["201", "202", "203"],
        "refused batches created nothing"
    );
    assert_eq!(listed, t.people);
}

pub async fn numbers_are_per_organization_and_lists_go_by_number(store: &dyn Store) {
    let _t = team(store, "ext", 3).await;
    let other = team(store, "ext-other", 1).await;
    let same_number = store
        .create_extensions(
            other.org.id,
            vec![
                new_extension("1000", "Big", Role::Member),
                new_extension("99", "Small", Role::Member),
                new_extension("202", "Same Number", Role::Member),
            ],
            T0,
        )
        .await
        .expect("a number taken in another organization is free here");
    assert_eq!(same_number.len(), 3);
    let numbers: Vec<String> = store
        .list_extensions(other.org.id)
        .await
        .expect("list")
        .into_iter()
        .map(|e| e.number)
        .collect();
    assert_eq!(numbers, ["99", "201", "202", "1000"], "ordered by number");
}

pub async fn extension_look_ups_stay_inside_the_organization(store: &dyn Store) {
    let t = team(store, "ext", 3).await;
    let other = team(store, "ext-other", 1).await;
    let first = &t.people[0];
    assert_eq!(
        store
            .extension(t.org.id, first.id)
            .await
            .expect("extension"),
        Some(first.clone())
    );
    assert_eq!(
        store
            .extension(other.org.id, first.id)
            .await
            .expect("extension"),
        None
    );
    let (found, hash) = store
        .extension_for_sign_in(t.org.id, &number("201"))
        .await
        .expect("sign-in look-up")
        .expect("found");
    assert_eq!(found, *first);
    assert_eq!(hash, "hash of 201");
    assert!(
        store
            .extension_for_sign_in(t.org.id, &number("999"))
            .await
            .expect("sign-in look-up")
            .is_none()
    );
}

pub async fn an_update_changes_only_what_is_given(store: &dyn Store) {
    let t = team(store, "ext", 3).await;
    let renamed = store
        .update_extension(
            t.org.id,
            t.id(1),
            ExtensionUpdate {
                name: Some(DisplayName::parse("Renamed Person").expect("name")),
                ..ExtensionUpdate::default()
            },
        )
        .await
        .expect("rename")
        .value;
    assert_eq!(renamed.name, "Renamed Person");
    assert_eq!(renamed.number, "202");
    assert_eq!(renamed.role, Role::Member);
    let promoted = store
        .update_extension(
            t.org.id,
            t.id(1),
            ExtensionUpdate {
                role: Some(Role::Admin),
                alert_muted: Some(true),
                ..ExtensionUpdate::default()
            },
        )
        .await
        .expect("promote")
        .value;
    assert_eq!(promoted.name, "Renamed Person", "the name is kept");
    assert_eq!(promoted.role, Role::Admin);
    assert!(promoted.alert_muted);
    assert_eq!(
        store.extension(t.org.id, t.id(1)).await.expect("extension"),
        Some(promoted)
    );
}

pub async fn an_organization_keeps_an_enabled_administrator(store: &dyn Store) {
    let t = team(store, "ext", 2).await;
    let (first, second) = (t.id(0), t.id(1));
    let role = |role| ExtensionUpdate {
        role: Some(role),
        ..ExtensionUpdate::default()
    };
    for last_admin_goes in [
        store
            .update_extension(t.org.id, first, role(Role::Member))
            .await,
        set_disabled(store, t.org.id, first, true).await,
    ] {
        assert!(
            matches!(last_admin_goes, Err(StoreError::Conflict(_))),
            "the last enabled administrator stays: {last_admin_goes:?}"
        );
    }
    let unchanged = store.extension(t.org.id, first).await.expect("extension");
    assert_eq!(unchanged.as_ref(), Some(&t.people[0]), "nothing changed");

    // With a second administrator, either may go, but not both.
    store
        .update_extension(t.org.id, second, role(Role::Admin))
        .await
        .expect("promote");
    disable(store, t.org.id, first).await;
    let demoted = store
        .update_extension(t.org.id, second, role(Role::Member))
        .await;
    assert!(
        matches!(demoted, Err(StoreError::Conflict(_))),
        "{demoted:?}"
    );
    // Members come and go as before.
    let members = team(store, "ext", 2).await;
    set_disabled(store, members.org.id, members.id(1), true)
        .await
        .expect("disable a member");
}

pub async fn an_update_through_another_organization_is_not_found(store: &dyn Store) {
    let t = team(store, "ext", 3).await;
    let other = team(store, "ext-other", 1).await;
    for (org, id) in [(other.org.id, t.id(1)), (t.org.id, ExtensionId(i64::MAX))] {
        let r = set_disabled(store, org, id, true).await;
        assert!(is_not_found(&r), "update across organizations: {r:?}");
    }
    assert!(
        !store
            .extension(t.org.id, t.id(1))
            .await
            .expect("extension")
            .expect("found")
            .disabled
    );
}

pub async fn a_password_hash_changes_inside_its_organization_only(store: &dyn Store) {
    let t = team(store, "ext", 3).await;
    let other = team(store, "ext-other", 1).await;
    let new_password = |org, hash: &str| NewPassword {
        org,
        extension: t.id(2),
        hash: hash.into(),
        keep: None,
    };
    store
        .set_password_hash(new_password(t.org.id, "new hash"))
        .await
        .expect("set hash");
    let hash_of = |org| async move {
        store
            .extension_for_sign_in(org, &number("203"))
            .await
            .expect("look-up")
            .map(|(_, h)| h)
    };
    assert_eq!(hash_of(t.org.id).await.as_deref(), Some("new hash"));
    let r = store
        .set_password_hash(new_password(other.org.id, "stolen"))
        .await;
    assert!(is_not_found(&r), "{r:?}");
    assert_eq!(hash_of(t.org.id).await.as_deref(), Some("new hash"));
}

pub async fn another_organization_has_its_own_extensions(store: &dyn Store) {
    let t = team(store, "iso", 2).await;
    let o = team(store, "iso-other", 2).await;
    let (a, x) = (&t.people[0], &o.people[0]);
    assert!(
        store
            .extension(o.org.id, a.id)
            .await
            .expect("extension")
            .is_none()
    );
    let listed = store.list_extensions(o.org.id).await.expect("list");
    assert_eq!(listed, o.people);
    assert!(
        store
            .extension_for_sign_in(o.org.id, &number("201"))
            .await
            .expect("look-up")
            .is_some_and(|(e, _)| e.id == x.id),
        "the same number means this organization's extension"
    );
}

// ---------------------------------------------------------------------------
// Sessions.

pub async fn a_session_lives_until_it_expires(store: &dyn Store) {
    let t = team(store, "sessions", 2).await;
    let a = t.id(0);
    let token = new_token();
    store
        .create_session(NewSession {
            token: token.clone(),
            extension: a,
            now: T0,
            expires_at: at(60_000),
        })
        .await
        .expect("create session");
    let s = store
        .session(&token, at(1))
        .await
        .expect("session")
        .expect("live");
    assert_eq!(s.extension.id, a);
    assert_eq!(s.org, t.org);
    assert_eq!(s.expires_at, at(60_000));
    assert!(is_live(store, &token, at(59_999)).await);
    assert!(!is_live(store, &token, at(60_001)).await, "expired");
    assert!(!is_live(store, &new_token(), at(1)).await, "unknown token");
}

pub async fn a_revoked_session_is_gone_and_revoking_twice_is_fine(store: &dyn Store) {
    let t = team(store, "sessions", 2).await;
    let token = sign_in(store, t.id(0), T0).await;
    store.revoke_session(&token).await.expect("revoke session");
    assert!(!is_live(store, &token, at(1)).await);
    store
        .revoke_session(&token)
        .await
        .expect("revoking twice is fine");
}

pub async fn a_password_change_keeps_only_the_session_asked_for(store: &dyn Store) {
    let t = team(store, "sessions", 2).await;
    let (a, b) = (t.id(0), t.id(1));
    let [kept, second, third] = [
        sign_in(store, a, at(10)).await,
        sign_in(store, a, at(10)).await,
        sign_in(store, a, at(10)).await,
    ];
    let bs = sign_in(store, b, at(10)).await;
    store
        .set_password_hash(NewPassword {
            org: t.org.id,
            extension: a,
            hash: "changed".into(),
            keep: Some(kept.clone()),
        })
        .await
        .expect("set hash");
    assert!(
        is_live(store, &kept, at(20)).await,
        "the kept session lives"
    );
    assert!(
        !is_live(store, &second, at(20)).await && !is_live(store, &third, at(20)).await,
        "the others are revoked"
    );
    assert!(
        is_live(store, &bs, at(20)).await,
        "another extension's session is untouched"
    );
    store
        .set_password_hash(NewPassword {
            org: t.org.id,
            extension: a,
            hash: "reset".into(),
            keep: None,
        })
        .await
        .expect("reset");
    assert!(
        !is_live(store, &kept, at(20)).await,
        "a reset revokes every session"
    );
}

pub async fn a_disabled_extension_has_no_live_session(store: &dyn Store) {
    let t = team(store, "sessions", 2).await;
    let b = t.id(1);
    let before = sign_in(store, b, at(10)).await;
    disable(store, t.org.id, b).await;
    assert!(!is_live(store, &before, at(20)).await, "disabling revokes");
    let while_disabled = sign_in(store, b, at(30)).await;
    assert!(
        !is_live(store, &while_disabled, at(20)).await,
        "a disabled extension has no live session"
    );
    enable(store, t.org.id, b).await;
    assert!(
        !is_live(store, &before, at(20)).await,
        "re-enabling does not revive revoked sessions"
    );
    let after = sign_in(store, b, at(40)).await;
    assert!(is_live(store, &after, at(20)).await);
}

pub async fn live_sessions_are_those_not_revoked_expired_or_disabled(store: &dyn Store) {
    let t = team(store, "sessions", 3).await;
    let (a, b, c) = (t.id(0), t.id(1), t.id(2));
    let live = sign_in(store, a, at(10)).await;
    let expiring = new_token();
    store
        .create_session(NewSession {
            token: expiring.clone(),
            extension: a,
            now: at(10),
            expires_at: at(100),
        })
        .await
        .expect("create session");
    let revoked = sign_in(store, b, at(10)).await;
    store.revoke_session(&revoked).await.expect("revoke");
    let of_disabled = sign_in(store, c, at(10)).await;
    disable(store, t.org.id, c).await;
    let unknown = new_token();

    let asked = [&live, &expiring, &revoked, &of_disabled, &unknown].map(TokenHash::tag);
    let answer = |now| async move {
        let live = store
            .live_sessions(asked.to_vec(), now)
            .await
            .expect("live_sessions");
        live.into_iter().collect::<std::collections::HashSet<_>>()
    };
    assert_eq!(
        answer(at(50)).await,
        [live.tag(), expiring.tag()].into(),
        "live: not revoked, not expired, extension enabled"
    );
    assert_eq!(
        answer(at(100)).await,
        [live.tag()].into(),
        "a session is over at its expiry"
    );
    assert!(
        store
            .live_sessions(Vec::new(), at(50))
            .await
            .expect("live_sessions")
            .is_empty()
    );
}

// ---------------------------------------------------------------------------
// What servers hear of sessions and extensions.

/// The one event of `events`, which must be for `extension` alone.
fn only_event_for(events: &[Recorded], extension: ExtensionId) -> &Event {
    assert_eq!(events.len(), 1, "one event: {events:?}");
    assert_eq!(
        recipients(&events[0]),
        set(&[extension]),
        "for that extension alone"
    );
    assert!(
        !events[0].kind().reaches_clients(),
        "an event for the servers"
    );
    &events[0].event
}

pub async fn revoking_a_session_records_session_ended_with_its_tag(store: &dyn Store) {
    let t = team(store, "ended", 2).await;
    let token = sign_in(store, t.id(1), T0).await;
    let revoked = store.revoke_session(&token).await.expect("revoke");
    assert_eq!(kinds(&revoked.events), [EventKind::SessionEnded]);
    assert_eq!(
        *only_event_for(&revoked.events, t.id(1)),
        Event::SessionEnded {
            extension_id: t.id(1),
            session: token.tag(),
        }
    );
    assert_eq!(
        payload(&revoked.events[0]),
        serde_json::json!({"extension_id": t.id(1).0, "session": token.tag().to_hex()})
    );
}

pub async fn revoking_no_session_records_nothing(store: &dyn Store) {
    let t = team(store, "ended", 1).await;
    let token = sign_in(store, t.id(0), T0).await;
    store.revoke_session(&token).await.expect("revoke");
    let again = store.revoke_session(&token).await.expect("again");
    assert!(again.events.is_empty(), "nothing ended: {:?}", again.events);
    let unknown = store.revoke_session(&new_token()).await.expect("unknown");
    assert!(unknown.events.is_empty(), "nothing ended");
}

pub async fn disabling_an_extension_records_extension_changed_ending_every_session(
    store: &dyn Store,
) {
    let t = team(store, "changed", 2).await;
    let disabled = disable(store, t.org.id, t.id(1)).await;
    assert!(disabled.value.disabled);
    assert_eq!(
        *only_event_for(&disabled.events, t.id(1)),
        Event::ExtensionChanged {
            extension_id: t.id(1),
            sessions_ended: EndedSessions::AllExcept(None),
        }
    );
}

pub async fn a_settings_change_records_extension_changed_ending_no_session(store: &dyn Store) {
    let t = team(store, "changed", 2).await;
    let muted = store
        .update_extension(
            t.org.id,
            t.id(1),
            ExtensionUpdate {
                alert_muted: Some(true),
                ..ExtensionUpdate::default()
            },
        )
        .await
        .expect("mute");
    assert_eq!(
        *only_event_for(&muted.events, t.id(1)),
        Event::ExtensionChanged {
            extension_id: t.id(1),
            sessions_ended: EndedSessions::None,
        }
    );
    disable(store, t.org.id, t.id(1)).await;
    let enabled = enable(store, t.org.id, t.id(1)).await;
    assert_eq!(
        *only_event_for(&enabled.events, t.id(1)),
        Event::ExtensionChanged {
            extension_id: t.id(1),
            sessions_ended: EndedSessions::None,
        },
        "enabling ends nothing"
    );
}

pub async fn a_password_change_records_extension_changed_ending_all_but_the_kept_session(
    store: &dyn Store,
) {
    let t = team(store, "changed", 2).await;
    let token = sign_in(store, t.id(0), T0).await;
    let change = |keep: Option<TokenHash>| NewPassword {
        org: t.org.id,
        extension: t.id(0),
        hash: "changed".into(),
        keep,
    };
    let kept = store
        .set_password_hash(change(Some(token.clone())))
        .await
        .expect("change");
    assert_eq!(
        *only_event_for(&kept.events, t.id(0)),
        Event::ExtensionChanged {
            extension_id: t.id(0),
            sessions_ended: EndedSessions::AllExcept(Some(token.tag())),
        }
    );
    let reset = store.set_password_hash(change(None)).await.expect("reset");
    assert_eq!(
        *only_event_for(&reset.events, t.id(0)),
        Event::ExtensionChanged {
            extension_id: t.id(0),
            sessions_ended: EndedSessions::AllExcept(None),
        }
    );
    let refused = store
        .set_password_hash(NewPassword {
            org: OrgId(i64::MAX),
            ..change(None)
        })
        .await;
    assert!(is_not_found(&refused), "{refused:?}");
}

//! The contract every [`Store`] implementation must meet.
//!
//! Each public function here is one rule, named as the rule, run against a
//! store that may already hold other data: it creates its own organizations
//! (with unique slugs) and never assumes particular ids or that the event log
//! is empty. [`run_all`] runs every rule; a backend's test file runs each as
//! its own test against a fresh store (see `tests/sqlite_contract.rs`). A
//! rule panics with a message naming what broke.
//!
//! What is checked is behaviour a client can observe, never how a backend
//! stores it: not-found across organizations, all-or-nothing changes, the
//! events each change records (kind, audience, cursor order), idempotent
//! sends, paging, forward-only read positions, replay that follows
//! membership periods, and commit listeners that hear every event in order
//! before the caller is answered.
//!
//! Compiled only with the `contract` feature, for backends' tests.

#![allow(
    clippy::expect_used,
    clippy::panic,
    reason = "a test suite reports broken rules by panicking"
)]

pub mod conversations;
pub mod directory;
pub mod jobs;
pub mod listeners;
pub mod messages;
pub mod numbers;
pub mod replay;
pub mod sms;

use crate::{
    Committed, EditGroup, Extension, ExtensionUpdate, MarkRead, NewExtension, NewGroup, NewMessage,
    NewSession, OpenDirect, Org, Posted, Recorded, Store, StoreError, TokenHash,
};
use std::collections::BTreeSet;
use switchboard_domain::{
    Conversation, ConversationId, ConversationName, Cursor, DisplayName, EventKind, ExtensionId,
    ExtensionNumber, ExtensionRef, GroupChange, HistoryPage, IdempotencyKey, Message, MessageId,
    MessageText, OrgId, OrgSlug, Role, Timestamp,
};

/// Calls `$each!` with every rule of the contract, by part:
/// `part: [rule, ...], ...`. A backend's test file defines the macro that
/// turns each rule into a test (see `tests/sqlite_contract.rs`), so that no
/// backend can skip a rule by leaving it off a list of its own.
#[macro_export]
macro_rules! every_contract_rule {
    ($each:ident) => {
        $each! {
        directory: [
            a_new_organization_has_its_slug_its_name_and_the_chime_tone,
            a_taken_slug_is_a_conflict_and_creates_nothing,
            organizations_are_found_by_slug_and_listed,
            an_alert_tone_changes_for_its_organization_only,
            a_default_country_starts_as_the_us_and_changes_for_its_organization_only,
            new_extensions_come_back_with_their_number_name_and_role,
            a_taken_number_fails_the_whole_batch,
            numbers_are_per_organization_and_lists_go_by_number,
            extension_look_ups_stay_inside_the_organization,
            an_update_changes_only_what_is_given,
            an_update_through_another_organization_is_not_found,
            a_password_hash_changes_inside_its_organization_only,
            another_organization_has_its_own_extensions,
            a_session_lives_until_it_expires,
            a_revoked_session_is_gone_and_revoking_twice_is_fine,
            a_password_change_keeps_only_the_session_asked_for,
            a_disabled_extension_has_no_live_session,
            revoking_a_session_records_session_ended_with_its_tag,
            revoking_no_session_records_nothing,
            disabling_an_extension_records_extension_changed_ending_every_session,
            a_settings_change_records_extension_changed_ending_no_session,
            a_password_change_records_extension_changed_ending_all_but_the_kept_session,
        ],
        conversations: [
            opening_a_direct_chat_creates_it_and_tells_both,
            a_pair_has_one_direct_chat_whichever_side_opens_it,
            a_direct_chat_needs_another_enabled_extension_of_the_organization,
            a_conversation_is_visible_to_its_participants_only,
            conversations_are_listed_most_recent_activity_first,
            creating_a_group_writes_a_line_and_tells_the_members,
            a_group_with_a_foreign_member_is_not_created,
            renaming_a_group_tells_the_members,
            adding_to_a_group_tells_the_newcomers_too,
            refused_group_edits_change_nothing,
            removing_from_a_group_tells_the_removed_and_hides_it_from_them,
            leaving_a_group_tells_the_leaver_and_ends_their_edits,
            a_groups_history_has_a_line_for_every_change,
            another_organization_cannot_reach_a_conversation,
            another_organization_cannot_start_a_conversation_with_outsiders,
        ],
        messages: [
            a_send_is_stored_and_announced_to_the_participants,
            a_key_used_again_returns_the_original_and_announces_nothing,
            a_key_used_again_in_another_conversation_is_a_conflict,
            keys_belong_to_their_sender,
            without_a_key_every_send_is_new,
            only_participants_may_send,
            the_list_shows_the_last_message_and_the_newest_activity_first,
            history_pages_back_from_the_newest,
            history_pages_forward_after_an_anchor,
            history_holds_its_conversations_messages_only,
            history_is_for_participants_only,
            my_own_messages_are_never_unread,
            reading_tells_everyone_my_position_and_me_my_unread_count,
            a_read_position_never_moves_back,
            receipts_show_every_participants_read_position,
            reading_past_the_end_stops_at_the_last_message,
            outsiders_can_neither_read_nor_see_receipts,
            system_lines_are_not_unread,
        ],
        replay: [
            latest_cursor_is_the_newest_event,
            the_log_holds_the_start_and_its_cursors_and_nothing_past_them,
            founders_replay_everything_with_the_recorded_payloads,
            another_extensions_unread_count_is_not_replayed,
            a_newcomer_replays_its_membership_period_only,
            replay_pages_with_a_limit,
            other_organizations_and_non_members_replay_none_of_it,
            a_member_who_rejoins_replays_both_periods_and_nothing_between,
            session_and_extension_events_are_replayed_to_their_extension_only,
        ],
        listeners: [
            listeners_hear_a_change_before_its_caller_is_answered,
            listeners_hear_every_event_once_in_cursor_order,
            refused_changes_and_replayed_sends_are_not_heard,
            listeners_hear_sessions_end_and_extensions_change,
        ],
        numbers: [
            a_number_belongs_to_one_organization_only,
            numbers_are_listed_per_organization_by_number,
            a_number_is_found_by_its_e164_form_for_inbound_texts,
            a_connection_is_used_only_by_numbers_of_its_organization,
            a_connection_name_is_unique_in_its_organization,
            assigned_numbers_are_the_ones_an_extension_texts_from,
            the_first_sms_number_becomes_the_default_and_another_can_be_chosen,
            taking_a_number_away_passes_the_default_on,
            a_number_that_stops_texting_is_nobodys_default,
            a_number_that_starts_texting_becomes_the_default_of_those_without_one,
            assignments_list_who_texts_from_each_number_of_the_organization,
            numbers_and_extensions_of_another_organization_cannot_be_assigned,
        ],
        sms: [
            an_sms_conversation_is_one_per_pair_and_shared_by_the_holders_of_the_number,
            only_a_holder_of_a_number_that_can_text_opens_an_sms_conversation,
            a_text_to_an_outside_number_is_queued_with_its_message,
            a_claim_that_runs_out_is_handed_out_again_with_the_same_key,
            a_text_the_carrier_took_waits_for_its_statuses,
            statuses_never_move_backwards_and_early_ones_wait_for_the_send,
            a_text_that_cannot_be_sent_fails_its_delivery_with_the_reason,
            an_inbound_text_is_stored_once_per_webhook,
            an_inbound_text_to_an_unknown_number_writes_nothing,
            stop_refuses_texts_until_start,
            taking_a_number_away_takes_its_conversations_out_of_the_list,
            images_are_seen_only_by_participants,
            a_carrier_s_opt_out_refusal_opts_the_customer_out_here_too,
        ],
        jobs: [
            a_job_starts_running_reports_progress_and_finishes,
            an_organization_runs_one_job_at_a_time,
            another_organization_does_not_find_a_job,
            a_job_whose_node_stops_reporting_fails_and_frees_its_organization,
            a_restart_fails_the_jobs_its_previous_run_left_running,
            finished_jobs_are_forgotten_after_their_time_and_beyond_the_count,
        ],
        }
    };
}

/// Runs the whole contract against one store.
pub async fn run_all(store: &dyn Store) {
    directory::run_all(store).await;
    conversations::run_all(store).await;
    messages::run_all(store).await;
    replay::run_all(store).await;
    listeners::run_all(store).await;
    numbers::run_all(store).await;
    sms::run_all(store).await;
    jobs::run_all(store).await;
}

// ---------------------------------------------------------------------------
// Fixtures.

/// A moment in 2027; the contract passes `now` explicitly everywhere.
const T0: Timestamp = Timestamp(1_800_000_000_000);

fn at(offset_ms: i64) -> Timestamp {
    Timestamp(T0.0 + offset_ms)
}

/// A slug no other rule has used: random, since rules run in parallel
/// processes against stores that outlive a test run.
fn unique_slug(prefix: &str) -> OrgSlug {
    OrgSlug::parse(&format!("{prefix}-{:x}", random_u64())).expect("valid slug")
}

fn random_u64() -> u64 {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("the system's random numbers");
    u64::from_le_bytes(bytes)
}

fn new_extension(number: &str, name: &str, role: Role) -> NewExtension {
    NewExtension {
        number: ExtensionNumber::parse(number).expect("valid number"),
        name: DisplayName::parse(name).expect("valid name"),
        role,
        password_hash: format!("hash of {number}"),
    }
}

fn number(s: &str) -> ExtensionNumber {
    ExtensionNumber::parse(s).expect("valid number")
}

/// An organization with extensions numbered 201, 202, … named "Person 201",
/// …; the first is an administrator.
struct Team {
    org: Org,
    people: Vec<Extension>,
}

impl Team {
    fn id(&self, i: usize) -> ExtensionId {
        self.people[i].id
    }

    fn ids(&self) -> Vec<ExtensionId> {
        self.people.iter().map(|p| p.id).collect()
    }
}

async fn team(store: &dyn Store, prefix: &str, size: usize) -> Team {
    let org = store
        .create_org(
            &unique_slug(prefix),
            &DisplayName::parse(&format!("{prefix} team")).expect("name"),
        )
        .await
        .expect("create org");
    let new = (0..size)
        .map(|i| {
            let number = format!("{}", 201 + i);
            let role = if i == 0 { Role::Admin } else { Role::Member };
            new_extension(&number, &format!("Person {number}"), role)
        })
        .collect();
    let people = store
        .create_extensions(org.id, new, T0)
        .await
        .expect("create extensions");
    assert_eq!(
        people.len(),
        size,
        "create_extensions returns every extension"
    );
    Team { org, people }
}

async fn set_disabled(
    store: &dyn Store,
    org: OrgId,
    id: ExtensionId,
    disabled: bool,
) -> crate::Result<Committed<Extension>> {
    store
        .update_extension(
            org,
            id,
            ExtensionUpdate {
                disabled: Some(disabled),
                ..ExtensionUpdate::default()
            },
        )
        .await
}

async fn disable(store: &dyn Store, org: OrgId, id: ExtensionId) -> Committed<Extension> {
    set_disabled(store, org, id, true).await.expect("disable")
}

async fn enable(store: &dyn Store, org: OrgId, id: ExtensionId) -> Committed<Extension> {
    set_disabled(store, org, id, false).await.expect("enable")
}

/// A token hash no other rule has used (hashes are keys, and rules may
/// share a store). Random bytes lead, so tags differ too.
fn new_token() -> TokenHash {
    let mut hash = [0x5b; 32];
    getrandom::fill(&mut hash[..16]).expect("the system's random numbers");
    TokenHash(hash)
}

/// A session of `extension` from `now`, expiring long after the rules end.
async fn sign_in(store: &dyn Store, extension: ExtensionId, now: Timestamp) -> TokenHash {
    let token = new_token();
    store
        .create_session(NewSession {
            token: token.clone(),
            extension,
            now,
            expires_at: at(600_000),
        })
        .await
        .expect("create session");
    token
}

async fn is_live(store: &dyn Store, token: &TokenHash, now: Timestamp) -> bool {
    store.session(token, now).await.expect("session").is_some()
}

fn text(s: &str) -> MessageText {
    MessageText::parse(s).expect("valid text")
}

fn key(s: &str) -> IdempotencyKey {
    IdempotencyKey::parse(s).expect("valid key")
}

fn name(s: &str) -> ConversationName {
    ConversationName::parse(s).expect("valid name")
}

fn page(before: Option<i64>, after: Option<i64>, limit: u32) -> HistoryPage {
    HistoryPage::parse(before, after, Some(limit)).expect("valid page")
}

/// The direct chat of `me` and `other`, opened (or found) at `now`.
async fn direct(
    store: &dyn Store,
    org: OrgId,
    me: ExtensionId,
    other: ExtensionId,
    now: Timestamp,
) -> ConversationId {
    store
        .open_direct(OpenDirect {
            org,
            me,
            other,
            now,
        })
        .await
        .expect("direct")
        .value
        .conversation
        .id
}

async fn create_group(
    store: &dyn Store,
    org: OrgId,
    creator: ExtensionId,
    group_name: &str,
    members: &[ExtensionId],
    now: Timestamp,
) -> crate::Result<Committed<Conversation>> {
    store
        .create_group(NewGroup {
            org,
            creator,
            name: name(group_name),
            members: members.to_vec(),
            now,
        })
        .await
}

async fn edit(
    store: &dyn Store,
    org: OrgId,
    actor: ExtensionId,
    conversation: ConversationId,
    change: GroupChange,
    now: Timestamp,
) -> crate::Result<Committed<Conversation>> {
    store
        .edit_group(EditGroup {
            org,
            actor,
            conversation,
            change,
            now,
        })
        .await
}

async fn mark_read(
    store: &dyn Store,
    me: ExtensionId,
    conversation: ConversationId,
    up_to: MessageId,
    now: Timestamp,
) -> crate::Result<Committed<u32>> {
    store
        .mark_read(MarkRead {
            me,
            conversation,
            up_to,
            now,
        })
        .await
}

fn message(
    conversation: ConversationId,
    sender: &Extension,
    body: &str,
    idempotency_key: Option<&str>,
    now: Timestamp,
) -> NewMessage {
    NewMessage {
        conversation_id: conversation,
        sender: sender.as_ref(),
        text: text(body),
        attachments: Vec::new(),
        carrier_media: Vec::new(),
        idempotency_key: idempotency_key.map(key),
        now,
    }
}

/// `sender` posts `body` without a key.
async fn post_as(
    store: &dyn Store,
    sender: &Extension,
    conversation: ConversationId,
    body: &str,
    now: Timestamp,
) -> Committed<Posted> {
    post_keyed(store, sender, conversation, body, None, now).await
}

async fn post_keyed(
    store: &dyn Store,
    sender: &Extension,
    conversation: ConversationId,
    body: &str,
    idempotency_key: Option<&str>,
    now: Timestamp,
) -> Committed<Posted> {
    store
        .post_message(message(conversation, sender, body, idempotency_key, now))
        .await
        .unwrap_or_else(|e| panic!("post {body:?}: {e}"))
}

fn recipients(event: &Recorded) -> BTreeSet<ExtensionId> {
    event.recipients.iter().copied().collect()
}

fn set(ids: &[ExtensionId]) -> BTreeSet<ExtensionId> {
    ids.iter().copied().collect()
}

fn payload(event: &Recorded) -> serde_json::Value {
    serde_json::from_str(&event.payload).expect("event payloads are JSON")
}

fn kinds(events: &[Recorded]) -> Vec<EventKind> {
    events.iter().map(Recorded::kind).collect()
}

fn assert_ascending(events: &[Recorded], after: Cursor, what: &str) {
    let mut last = after;
    for e in events {
        assert!(
            e.cursor > last,
            "{what}: cursor {} follows {last}",
            e.cursor
        );
        last = e.cursor;
    }
}

fn ids(participants: &[ExtensionRef]) -> BTreeSet<ExtensionId> {
    participants.iter().map(|p| p.id).collect()
}

async fn history_all(
    store: &dyn Store,
    me: ExtensionId,
    conversation: ConversationId,
) -> Vec<Message> {
    store
        .history(me, conversation, page(None, None, 200))
        .await
        .expect("history")
        .0
}

fn is_not_found<T: std::fmt::Debug>(r: &crate::Result<T>) -> bool {
    matches!(r, Err(StoreError::NotFound(_)))
}

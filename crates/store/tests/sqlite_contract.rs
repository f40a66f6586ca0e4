//! The store contract run against the SQLite store: each rule on a fresh
//! database file, the whole suite on a single shared one, and again on a
//! database that was closed and reopened.

use switchboard_store::contract;
use switchboard_store::{SqliteOptions, SqliteStore};

fn fresh() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(SqliteOptions::new(dir.path().join("switchboard.db")))
        .expect("open the store");
    (dir, store)
}

/// One test per rule, in a module per part of the contract.
macro_rules! contract_tests {
    ($($part:ident: [$($rule:ident),* $(,)?]),* $(,)?) => {
        $(
            mod $part {
                use super::*;
                $(
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $rule() {
                        let (_dir, store) = fresh();
                        contract::$part::$rule(&store).await;
                    }
                )*
            }
        )*
    };
}

contract_tests! {
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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_contract_on_one_store() {
    let (_dir, store) = fresh();
    contract::run_all(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_survives_reopening() {
    use switchboard_domain::{DisplayName, OrgSlug};
    use switchboard_store::Directory;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("switchboard.db");
    let slug = OrgSlug::parse("kept").expect("slug");
    {
        let store = SqliteStore::open(SqliteOptions::new(&path)).expect("open");
        store
            .create_org(&slug, &DisplayName::parse("Kept").expect("name"))
            .await
            .expect("create org");
        contract::run_all(&store).await;
    }
    let store = SqliteStore::open(SqliteOptions::new(&path)).expect("reopen");
    assert!(store.org_by_slug(&slug).await.expect("look-up").is_some());
    // A reopened store keeps meeting the contract: cursors continue.
    contract::run_all(&store).await;
}

/// The files of a database: itself, its WAL and its shared memory.
fn copy_database(from: &std::path::Path, to: &std::path::Path) {
    for suffix in ["", "-wal", "-shm"] {
        let source = from.with_file_name(format!("switchboard.db{suffix}"));
        if source.exists() {
            std::fs::copy(
                &source,
                to.with_file_name(format!("switchboard.db{suffix}")),
            )
            .expect("copy a database file");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restored_backup_never_hands_out_a_lost_cursor_again() {
    use switchboard_domain::{DisplayName, OrgSlug};
    use switchboard_store::{Directory, EventLog};
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("switchboard.db");
    let backup_dir = tempfile::tempdir().expect("temp dir");
    let backup = backup_dir.path().join("switchboard.db");
    let org = |slug: &str| {
        (
            OrgSlug::parse(slug).expect("slug"),
            DisplayName::parse("Org").expect("name"),
        )
    };
    {
        let store = SqliteStore::open(SqliteOptions::new(&path)).expect("open");
        let (slug, name) = org("before-backup");
        store.create_org(&slug, &name).await.expect("create org");
    }
    copy_database(&path, &backup);
    // After the backup the log goes on, and a client keeps its cursor.
    let lost = {
        let store = SqliteStore::open(SqliteOptions::new(&path)).expect("reopen");
        let (slug, name) = org("after-backup");
        store.create_org(&slug, &name).await.expect("create org");
        store.latest_cursor().await.expect("latest")
    };
    // The operator restores the backup; the log goes on from there.
    let restored = SqliteStore::open(SqliteOptions::new(&backup)).expect("open the backup");
    assert!(
        !restored.holds(lost).await.expect("holds"),
        "a cursor lost with the restore is not held"
    );
    let (slug, name) = org("after-restore");
    restored.create_org(&slug, &name).await.expect("create org");
    let next = restored.latest_cursor().await.expect("latest");
    assert!(next > lost, "new events come after every lost cursor");
    assert!(
        !restored.holds(lost).await.expect("holds"),
        "a lost cursor is never handed out again"
    );
}

//! Who hears about what: the delivery plan, one rule at a time.
//!
//! The store records each event with the extensions that get it live; the
//! rules choosing them are product rules, so they live here and the store
//! only applies them.

use crate::ExtensionId;

/// Who hears about a change to a group: everyone who was or now is a
/// participant. Those leaving (removed, or gone of their own accord) are
/// among `before` and are told, so their clients learn that they left;
/// those `joining` are told too, so the group appears for them.
///
/// `before` in its order, then each newcomer once.
pub fn group_change_audience(before: &[ExtensionId], joining: &[ExtensionId]) -> Vec<ExtensionId> {
    let mut audience = Vec::with_capacity(before.len() + joining.len());
    audience.extend_from_slice(before);
    for id in joining {
        if !audience.contains(id) {
            audience.push(*id);
        }
    }
    audience
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ConversationKind, ConversationName, GroupChange};

    fn e(i: i64) -> ExtensionId {
        ExtensionId(i)
    }

    /// The audience of `change` made by `actor` in a group of `before`.
    fn audience(
        before: &[ExtensionId],
        actor: ExtensionId,
        change: GroupChange,
    ) -> Vec<ExtensionId> {
        let affected = change
            .check(ConversationKind::Group, actor, before)
            .expect("an allowed change");
        let joining = match change {
            GroupChange::Add(_) => affected,
            _ => Vec::new(),
        };
        group_change_audience(before, &joining)
    }

    #[test]
    fn a_rename_is_heard_by_the_participants() {
        let name = ConversationName::parse("Sales").expect("name");
        assert_eq!(
            audience(&[e(1), e(2)], e(1), GroupChange::Rename(name)),
            [e(1), e(2)]
        );
    }

    #[test]
    fn newcomers_hear_of_their_addition() {
        assert_eq!(
            audience(
                &[e(1), e(2)],
                e(2),
                GroupChange::Add(vec![e(3), e(3), e(4)])
            ),
            [e(1), e(2), e(3), e(4)]
        );
    }

    #[test]
    fn the_removed_and_the_leaving_hear_of_it() {
        assert_eq!(
            audience(&[e(1), e(2), e(3)], e(1), GroupChange::Remove(e(3))),
            [e(1), e(2), e(3)]
        );
        assert_eq!(
            audience(&[e(1), e(2), e(3)], e(2), GroupChange::Leave),
            [e(1), e(2), e(3)]
        );
    }

    #[test]
    fn nobody_hears_twice() {
        assert_eq!(
            group_change_audience(&[e(1), e(2)], &[e(2), e(3), e(3)]),
            [e(1), e(2), e(3)]
        );
    }
}

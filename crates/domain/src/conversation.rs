//! Conversations and who may do what in them.

use crate::phone::E164;
use crate::{ConversationId, ConversationName, ExtensionId, ExtensionRef, NumberId, Timestamp};
use serde::{Deserialize, Serialize};

/// The kinds of conversation. SMS and queue conversations arrive with the SMS
/// capability; the kinds exist now so stored data and clients know them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConversationKind {
    /// Exactly two extensions; unique per pair.
    Direct,
    /// Named, any number of extensions (externals later).
    Group,
    /// One external number and the extensions sharing a business number.
    Sms,
    /// An SMS conversation owned by an SMS queue.
    Queue,
}

impl ConversationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::Group => "group",
            Self::Sms => "sms",
            Self::Queue => "queue",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "direct" => Some(Self::Direct),
            "group" => Some(Self::Group),
            "sms" => Some(Self::Sms),
            "queue" => Some(Self::Queue),
            _ => None,
        }
    }
}

/// A conversation as its participants see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversation {
    pub id: ConversationId,
    pub kind: ConversationKind,
    pub name: Option<String>,
    pub participants: Vec<ExtensionRef>,
    /// The outside numbers taking part by SMS (none in a chat).
    #[serde(default)]
    pub externals: Vec<ExternalParticipant>,
    /// The business number texts go out from (none in a chat).
    #[serde(default)]
    pub business_number: Option<BusinessNumberRef>,
    pub created_at: Timestamp,
    pub last_activity_at: Timestamp,
}

/// An outside number in a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExternalParticipant {
    pub number: E164,
    pub display: String,
    /// It texted STOP to the conversation's business number: nothing may be
    /// texted to it until it texts START.
    pub opted_out: bool,
}

/// The business number of an SMS conversation or mixed group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BusinessNumberRef {
    pub id: NumberId,
    pub number: E164,
    pub display: String,
}

/// The key that makes an SMS conversation unique per pair of numbers.
pub fn sms_key(business_number: NumberId, external: &E164) -> String {
    format!("{business_number}:{external}")
}

impl Conversation {
    pub fn has_participant(&self, id: ExtensionId) -> bool {
        self.participants.iter().any(|p| p.id == id)
    }
}

/// Most members a group may have. Large enough for a company-wide group, small
/// enough that one message's fan-out stays cheap.
pub const MAX_GROUP_MEMBERS: usize = 500;

/// Why a membership change is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MembershipError {
    #[error("you cannot start a direct chat with yourself")]
    DirectWithSelf,
    #[error("a group can have at most {MAX_GROUP_MEMBERS} members")]
    TooManyMembers,
    #[error("only groups can be renamed or have participants added or removed")]
    NotAGroup,
    #[error("extension {0} is already a participant")]
    AlreadyParticipant(ExtensionId),
    #[error("extension {0} is not a participant")]
    NotAParticipant(ExtensionId),
    #[error("to leave the conversation use leave, not remove")]
    RemoveSelf,
    #[error("nothing to add")]
    NothingToAdd,
}

/// The key that makes a direct chat unique per pair of extensions, whichever
/// of the two opens it.
pub fn direct_key(a: ExtensionId, b: ExtensionId) -> Result<String, MembershipError> {
    if a == b {
        return Err(MembershipError::DirectWithSelf);
    }
    let (lo, hi) = if a < b { (a, b) } else { (b, a) };
    Ok(format!("{lo}:{hi}"))
}

/// The members of a new group: the creator first, then the others once each,
/// in the order given.
pub fn group_members(
    creator: ExtensionId,
    others: &[ExtensionId],
) -> Result<Vec<ExtensionId>, MembershipError> {
    let mut members = Vec::with_capacity(others.len() + 1);
    members.push(creator);
    for &m in others {
        if !members.contains(&m) {
            members.push(m);
        }
    }
    if members.len() > MAX_GROUP_MEMBERS {
        return Err(MembershipError::TooManyMembers);
    }
    Ok(members)
}

/// A change to a group, as asked for by `actor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupChange {
    Rename(ConversationName),
    Add(Vec<ExtensionId>),
    Remove(ExtensionId),
    Leave,
}

impl GroupChange {
    /// Checks a change against the conversation's kind and current members
    /// (`actor` is known to be one of them). For `Add`, returns the
    /// extensions that are actually new, dropping repeats.
    pub fn check(
        &self,
        kind: ConversationKind,
        actor: ExtensionId,
        members: &[ExtensionId],
    ) -> Result<Vec<ExtensionId>, MembershipError> {
        if kind != ConversationKind::Group {
            return Err(MembershipError::NotAGroup);
        }
        match self {
            GroupChange::Rename(_) | GroupChange::Leave => Ok(Vec::new()),
            GroupChange::Add(ids) => {
                let mut new = Vec::with_capacity(ids.len());
                for &id in ids {
                    if members.contains(&id) {
                        return Err(MembershipError::AlreadyParticipant(id));
                    }
                    if !new.contains(&id) {
                        new.push(id);
                    }
                }
                if new.is_empty() {
                    return Err(MembershipError::NothingToAdd);
                }
                if members.len() + new.len() > MAX_GROUP_MEMBERS {
                    return Err(MembershipError::TooManyMembers);
                }
                Ok(new)
            }
            GroupChange::Remove(id) => {
                if *id == actor {
                    return Err(MembershipError::RemoveSelf);
                }
                if !members.contains(id) {
                    return Err(MembershipError::NotAParticipant(*id));
                }
                Ok(vec![*id])
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn e(i: i64) -> ExtensionId {
        ExtensionId(i)
    }

    #[test]
    fn direct_key_is_symmetric_and_refuses_self() {
        assert_eq!(direct_key(e(1), e(2)), direct_key(e(2), e(1)));
        assert_eq!(direct_key(e(3), e(3)), Err(MembershipError::DirectWithSelf));
    }

    #[test]
    fn group_members_put_creator_first_once() {
        assert_eq!(
            group_members(e(1), &[e(2), e(1), e(2), e(3)]).unwrap(),
            vec![e(1), e(2), e(3)]
        );
        let many: Vec<_> = (2..=MAX_GROUP_MEMBERS as i64 + 1).map(e).collect();
        assert_eq!(
            group_members(e(1), &many),
            Err(MembershipError::TooManyMembers)
        );
    }

    #[test]
    fn changes_only_apply_to_groups() {
        let members = [e(1), e(2)];
        for change in [
            GroupChange::Rename(ConversationName::parse("Sales").unwrap()),
            GroupChange::Add(vec![e(3)]),
            GroupChange::Remove(e(2)),
            GroupChange::Leave,
        ] {
            assert_eq!(
                change.check(ConversationKind::Direct, e(1), &members),
                Err(MembershipError::NotAGroup)
            );
        }
    }

    #[test]
    fn add_and_remove_rules() {
        let members = [e(1), e(2)];
        let g = ConversationKind::Group;
        assert_eq!(
            GroupChange::Add(vec![e(3), e(3), e(4)]).check(g, e(1), &members),
            Ok(vec![e(3), e(4)])
        );
        assert_eq!(
            GroupChange::Add(vec![e(2)]).check(g, e(1), &members),
            Err(MembershipError::AlreadyParticipant(e(2)))
        );
        assert_eq!(
            GroupChange::Add(vec![]).check(g, e(1), &members),
            Err(MembershipError::NothingToAdd)
        );
        assert_eq!(
            GroupChange::Remove(e(1)).check(g, e(1), &members),
            Err(MembershipError::RemoveSelf)
        );
        assert_eq!(
            GroupChange::Remove(e(9)).check(g, e(1), &members),
            Err(MembershipError::NotAParticipant(e(9)))
        );
        assert_eq!(
            GroupChange::Remove(e(2)).check(g, e(1), &members),
            Ok(vec![e(2)])
        );
    }

    proptest! {
        #[test]
        fn group_members_are_unique_and_include_creator(creator in 1i64..50, others in proptest::collection::vec(1i64..50, 0..40)) {
            let others: Vec<_> = others.into_iter().map(e).collect();
            let members = group_members(e(creator), &others).unwrap();
            prop_assert_eq!(members[0], e(creator));
            let mut sorted = members.clone();
            sorted.sort();
            sorted.dedup();
            prop_assert_eq!(sorted.len(), members.len());
            for o in &others {
                prop_assert!(members.contains(o));
            }
        }

        #[test]
        fn added_extensions_are_never_existing_members(members in proptest::collection::vec(1i64..30, 1..10), add in proptest::collection::vec(1i64..30, 0..10)) {
            let members: Vec<_> = members.into_iter().map(e).collect();
            let add: Vec<_> = add.into_iter().map(e).collect();
            if let Ok(new) = GroupChange::Add(add).check(ConversationKind::Group, members[0], &members) {
                prop_assert!(!new.is_empty());
                for n in new {
                    prop_assert!(!members.contains(&n));
                }
            }
        }
    }
}

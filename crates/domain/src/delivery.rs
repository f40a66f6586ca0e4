//! Who hears about what, by which channel: the audience of a group change,
//! the delivery plan of a message (live to extensions, texts to outside
//! numbers) and where a text from outside lands. These are product rules,
//! so they live here; the store and the services only apply them.

use crate::phone::E164;
use crate::{ConversationId, ConversationKind, ExtensionId, Timestamp};

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

/// Who wrote a message, as the delivery plan needs to know them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sender {
    /// A colleague, by id and the name others see.
    Extension { id: ExtensionId, name: String },
    /// Someone outside, by number and the name we know them by (a contact,
    /// else their number formatted for the organization).
    External { number: E164, name: String },
    /// A lifecycle line (renamed, joined, claimed …): never texted.
    System,
}

/// One text to an outside number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text {
    pub from: E164,
    pub to: E164,
    pub body: String,
}

/// Who gets a message, and by which channel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Extensions that get it live on their devices.
    pub live: Vec<ExtensionId>,
    /// Texts to send, one per outside participant.
    pub texts: Vec<Text>,
}

/// The participants of a conversation, for planning one message.
#[derive(Debug, Clone, Copy)]
pub struct Participants<'a> {
    pub kind: ConversationKind,
    pub extensions: &'a [ExtensionId],
    pub externals: &'a [E164],
    /// The number texts go out from: the SMS conversation's or the mixed
    /// group's business number.
    pub business_number: Option<&'a E164>,
}

/// The delivery plan of one message. Every extension gets it live. Every
/// outside participant but the sender gets it as a text from the business
/// number: in an SMS or queue conversation as written (the business is
/// speaking), in a group prefixed with the sender's name (`Alice: …`) so a
/// group read on a phone makes sense. System lines are never texted.
pub fn plan(participants: Participants<'_>, sender: &Sender, body: &str) -> Plan {
    let live = participants.extensions.to_vec();
    let Some(from) = participants.business_number else {
        return Plan {
            live,
            texts: Vec::new(),
        };
    };
    let (name, own_number) = match sender {
        Sender::System => {
            return Plan {
                live,
                texts: Vec::new(),
            };
        }
        Sender::Extension { name, .. } => (name.as_str(), None),
        Sender::External { number, name } => (name.as_str(), Some(number)),
    };
    let body = match participants.kind {
        ConversationKind::Group => format!("{name}: {body}"),
        ConversationKind::Direct | ConversationKind::Sms | ConversationKind::Queue => {
            body.to_owned()
        }
    };
    let texts = participants
        .externals
        .iter()
        .filter(|to| Some(*to) != own_number)
        .map(|to| Text {
            from: from.clone(),
            to: to.clone(),
            body: body.clone(),
        })
        .collect();
    Plan { live, texts }
}

/// An open group on a business number, as inbound routing sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenGroup {
    pub id: ConversationId,
    pub externals: Vec<E164>,
    pub last_activity_at: Timestamp,
}

/// Where a text from outside lands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inbound {
    /// In this group, which the sender belongs to.
    Group(ConversationId),
    /// In the SMS conversation of this pair of numbers (opened if need be).
    Sms,
}

/// Where a text from `from` to a business number lands, given the open
/// groups on that number: the most recently active group the sender belongs
/// to (the lower id on a tie, so the choice is stable), else the SMS
/// conversation of the pair.
pub fn route_inbound(from: &E164, groups: &[OpenGroup]) -> Inbound {
    groups
        .iter()
        .filter(|g| g.externals.contains(from))
        .max_by(|a, b| {
            a.last_activity_at
                .cmp(&b.last_activity_at)
                .then(b.id.0.cmp(&a.id.0))
        })
        .map_or(Inbound::Sms, |g| Inbound::Group(g.id))
}

/// How far a text to one outside number has gone, as carriers report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    /// Stored, or accepted by the carrier and not yet sent on.
    Queued,
    /// Handed to the network.
    Sent,
    /// The handset has it.
    Delivered,
    /// It will not arrive (the reason says why).
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Queued, Self::Sent, Self::Delivered, Self::Failed]
            .into_iter()
            .find(|k| k.as_str() == s)
    }

    fn rank(self) -> u8 {
        match self {
            Self::Queued => 0,
            Self::Sent => 1,
            Self::Delivered | Self::Failed => 2,
        }
    }

    /// Whether a report of `next` moves a text that is at `self`. Statuses
    /// only move forward, so reports arriving out of order (carriers do not
    /// promise order) never undo a later one; the first final status
    /// (delivered or failed) stays.
    pub fn moves_to(self, next: DeliveryStatus) -> bool {
        next.rank() > self.rank()
    }
}

/// How the outbox retries a text the carrier did not take: exponential
/// backoff with jitter, within a budget of attempts, never sooner than the
/// carrier asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    pub first_delay: std::time::Duration,
    pub max_delay: std::time::Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 10,
            first_delay: std::time::Duration::from_secs(2),
            max_delay: std::time::Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    /// The wait before the next attempt after `attempts` have failed, or
    /// `None` when the budget is spent. `jitter` in `[0, 1)` spreads
    /// retries of many texts so they do not come back together (the delay
    /// is between half and all of the backoff); `retry_after` is the wait the
    /// carrier asked for, which is honoured even beyond the cap.
    pub fn next_delay(
        &self,
        attempts: u32,
        retry_after: Option<std::time::Duration>,
        jitter: f64,
    ) -> Option<std::time::Duration> {
        if attempts >= self.max_attempts {
            return None;
        }
        let exponent = attempts.saturating_sub(1).min(20);
        let backoff = self
            .first_delay
            .saturating_mul(1u32 << exponent)
            .min(self.max_delay);
        let jitter = jitter.clamp(0.0, 1.0);
        let delay = backoff.mul_f64(0.5 + jitter / 2.0);
        Some(retry_after.map_or(delay, |asked| asked.max(delay)))
    }
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

#[cfg(test)]
mod status_tests {
    use super::*;
    use proptest::prelude::*;
    use std::time::Duration;

    const ALL: [DeliveryStatus; 4] = [
        DeliveryStatus::Queued,
        DeliveryStatus::Sent,
        DeliveryStatus::Delivered,
        DeliveryStatus::Failed,
    ];

    #[test]
    fn statuses_move_forward_only_and_the_first_final_one_stays() {
        use DeliveryStatus::*;
        assert!(Queued.moves_to(Sent));
        assert!(Queued.moves_to(Delivered));
        assert!(Sent.moves_to(Failed));
        assert!(!Sent.moves_to(Queued));
        assert!(!Delivered.moves_to(Sent));
        assert!(!Delivered.moves_to(Failed));
        assert!(!Failed.moves_to(Delivered));
        assert!(!Sent.moves_to(Sent));
    }

    proptest! {
        /// Whatever order reports come in, the status reached is the
        /// furthest reported (the first final one when several are final).
        #[test]
        fn any_order_of_reports_ends_at_the_furthest(order in proptest::sample::subsequence(ALL.to_vec(), 1..=4).prop_shuffle()) {
            let mut status = DeliveryStatus::Queued;
            for next in &order {
                if status.moves_to(*next) {
                    status = *next;
                }
            }
            let first_final = order.iter().find(|s| matches!(s, DeliveryStatus::Delivered | DeliveryStatus::Failed));
            match first_final {
                Some(f) => prop_assert_eq!(status, *f),
                None if order.contains(&DeliveryStatus::Sent) => prop_assert_eq!(status, DeliveryStatus::Sent),
                None => prop_assert_eq!(status, DeliveryStatus::Queued),
            }
        }

        #[test]
        fn retries_back_off_within_the_cap_and_stop_at_the_budget(attempts in 1u32..15, jitter in 0.0f64..1.0) {
            let policy = RetryPolicy::default();
            match policy.next_delay(attempts, None, jitter) {
                Some(delay) => {
                    prop_assert!(attempts < policy.max_attempts);
                    prop_assert!(delay <= policy.max_delay);
                    prop_assert!(delay >= policy.first_delay / 2);
                }
                None => prop_assert!(attempts >= policy.max_attempts),
            }
        }
    }

    #[test]
    fn a_carrier_s_retry_after_is_honoured() {
        let policy = RetryPolicy::default();
        assert_eq!(
            policy.next_delay(1, Some(Duration::from_secs(900)), 0.0),
            Some(Duration::from_secs(900))
        );
        assert_eq!(
            policy.next_delay(1, Some(Duration::from_millis(1)), 0.0),
            Some(Duration::from_secs(1))
        );
        assert_eq!(
            policy.next_delay(2, None, 0.99).map(|d| d.as_secs()),
            Some(3)
        );
        assert_eq!(policy.next_delay(10, None, 0.5), None);
    }
}

#[cfg(test)]
mod plan_tests {
    use super::*;

    fn n(s: &str) -> E164 {
        E164::parse_strict(s).expect("a valid number")
    }

    fn alice() -> Sender {
        Sender::Extension {
            id: ExtensionId(1),
            name: "Alice".into(),
        }
    }

    #[test]
    fn in_a_mixed_group_extensions_get_it_live_and_externals_a_prefixed_text() {
        let business = n("+14155550100");
        let externals = [n("+14155552671"), n("+442079460958")];
        let plan = plan(
            Participants {
                kind: ConversationKind::Group,
                extensions: &[ExtensionId(1), ExtensionId(2)],
                externals: &externals,
                business_number: Some(&business),
            },
            &alice(),
            "Lunch at one?",
        );
        assert_eq!(plan.live, vec![ExtensionId(1), ExtensionId(2)]);
        assert_eq!(plan.texts.len(), 2);
        for (text, to) in plan.texts.iter().zip(&externals) {
            assert_eq!(text.from, business);
            assert_eq!(&text.to, to);
            assert_eq!(text.body, "Alice: Lunch at one?");
        }
    }

    #[test]
    fn an_external_in_a_group_is_relayed_to_the_others_but_not_back() {
        let business = n("+14155550100");
        let bob = n("+14155552671");
        let carol = n("+442079460958");
        let externals = [bob.clone(), carol.clone()];
        let plan = plan(
            Participants {
                kind: ConversationKind::Group,
                extensions: &[ExtensionId(1)],
                externals: &externals,
                business_number: Some(&business),
            },
            &Sender::External {
                number: bob,
                name: "Bob".into(),
            },
            "On my way",
        );
        assert_eq!(plan.live, vec![ExtensionId(1)]);
        assert_eq!(
            plan.texts,
            vec![Text {
                from: business,
                to: carol,
                body: "Bob: On my way".into()
            }]
        );
    }

    #[test]
    fn in_an_sms_conversation_the_business_speaks_without_a_prefix() {
        let business = n("+14155550100");
        let customer = [n("+14155552671")];
        let plan = plan(
            Participants {
                kind: ConversationKind::Sms,
                extensions: &[ExtensionId(1), ExtensionId(3)],
                externals: &customer,
                business_number: Some(&business),
            },
            &alice(),
            "Your order shipped",
        );
        assert_eq!(plan.texts.len(), 1);
        assert_eq!(plan.texts[0].body, "Your order shipped");
    }

    #[test]
    fn system_lines_and_chats_without_externals_are_never_texted() {
        let business = n("+14155550100");
        let customer = [n("+14155552671")];
        let with_customer = Participants {
            kind: ConversationKind::Group,
            extensions: &[ExtensionId(1)],
            externals: &customer,
            business_number: Some(&business),
        };
        assert!(
            plan(with_customer, &Sender::System, "renamed")
                .texts
                .is_empty()
        );
        let chat = Participants {
            kind: ConversationKind::Direct,
            extensions: &[ExtensionId(1), ExtensionId(2)],
            externals: &[],
            business_number: None,
        };
        let plan = plan(chat, &alice(), "hi");
        assert_eq!(plan.live.len(), 2);
        assert!(plan.texts.is_empty());
    }

    #[test]
    fn an_inbound_text_lands_in_the_most_recently_active_group_of_its_sender() {
        let bob = n("+14155552671");
        let group = |id, externals: Vec<E164>, at| OpenGroup {
            id: ConversationId(id),
            externals,
            last_activity_at: Timestamp(at),
        };
        let groups = [
            group(1, vec![bob.clone()], 100),
            group(2, vec![bob.clone(), n("+442079460958")], 300),
            group(3, vec![n("+442079460958")], 900),
        ];
        assert_eq!(
            route_inbound(&bob, &groups),
            Inbound::Group(ConversationId(2))
        );
        let stranger = n("+14155550123");
        assert_eq!(route_inbound(&stranger, &groups), Inbound::Sms);
        assert_eq!(route_inbound(&bob, &[]), Inbound::Sms);
        // A tie goes to the older group, whatever the order given.
        let tied = [
            group(7, vec![bob.clone()], 5),
            group(4, vec![bob.clone()], 5),
        ];
        assert_eq!(
            route_inbound(&bob, &tied),
            Inbound::Group(ConversationId(4))
        );
    }
}

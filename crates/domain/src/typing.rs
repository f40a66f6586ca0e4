//! Typing indicators: when they start, when they expire.
//!
//! Pure bookkeeping over `now` values the caller supplies; the server turns
//! the transitions it returns into ephemeral `typing` frames.

use crate::{ConversationId, ExtensionId, Timestamp};
use std::collections::HashMap;
use std::time::Duration;

/// A typing indicator disappears this long after the last typing frame.
pub const TYPING_TTL: Duration = Duration::from_secs(5);

/// A change others should be told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TypingChange {
    pub conversation_id: ConversationId,
    pub extension_id: ExtensionId,
    pub active: bool,
}

/// Who is typing where, and until when.
#[derive(Debug, Default)]
pub struct TypingTracker {
    until: HashMap<(ConversationId, ExtensionId), Timestamp>,
}

impl TypingTracker {
    /// A typing frame arrived. Returns the change to announce when the
    /// extension was not already shown as typing there.
    pub fn typing(
        &mut self,
        conversation_id: ConversationId,
        extension_id: ExtensionId,
        now: Timestamp,
    ) -> Option<TypingChange> {
        let expires = now.saturating_add(TYPING_TTL);
        let was = self.until.insert((conversation_id, extension_id), expires);
        match was {
            Some(old) if old > now => None,
            _ => Some(TypingChange {
                conversation_id,
                extension_id,
                active: true,
            }),
        }
    }

    /// The extension sent a message there (or left): the indicator goes at once.
    pub fn stopped(
        &mut self,
        conversation_id: ConversationId,
        extension_id: ExtensionId,
        now: Timestamp,
    ) -> Option<TypingChange> {
        match self.until.remove(&(conversation_id, extension_id)) {
            Some(until) if until > now => Some(TypingChange {
                conversation_id,
                extension_id,
                active: false,
            }),
            _ => None,
        }
    }

    /// Removes every indicator that has expired by `now`, returning their
    /// `active: false` changes.
    pub fn expire(&mut self, now: Timestamp) -> Vec<TypingChange> {
        let mut gone = Vec::new();
        self.until
            .retain(|&(conversation_id, extension_id), until| {
                let keep = *until > now;
                if !keep {
                    gone.push(TypingChange {
                        conversation_id,
                        extension_id,
                        active: false,
                    });
                }
                keep
            });
        gone
    }

    /// When the next indicator expires, for the caller's timer.
    pub fn next_expiry(&self) -> Option<Timestamp> {
        self.until.values().min().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const C: ConversationId = ConversationId(1);
    const A: ExtensionId = ExtensionId(7);

    #[test]
    fn starts_once_and_expires_five_seconds_after_the_last_frame() {
        let mut t = TypingTracker::default();
        assert!(t.typing(C, A, Timestamp(0)).is_some());
        assert_eq!(t.typing(C, A, Timestamp(2_000)), None, "still typing");
        assert!(t.expire(Timestamp(6_999)).is_empty());
        assert_eq!(t.next_expiry(), Some(Timestamp(7_000)));
        let gone = t.expire(Timestamp(7_000));
        assert_eq!(
            gone,
            vec![TypingChange {
                conversation_id: C,
                extension_id: A,
                active: false
            }]
        );
        assert_eq!(t.next_expiry(), None);
    }

    #[test]
    fn sending_clears_at_once() {
        let mut t = TypingTracker::default();
        t.typing(C, A, Timestamp(0));
        assert_eq!(
            t.stopped(C, A, Timestamp(100)).map(|c| c.active),
            Some(false)
        );
        assert_eq!(t.stopped(C, A, Timestamp(200)), None);
        assert!(t.expire(Timestamp(10_000)).is_empty());
    }

    #[test]
    fn typing_again_after_expiry_announces_again() {
        let mut t = TypingTracker::default();
        t.typing(C, A, Timestamp(0));
        t.expire(Timestamp(5_000));
        assert!(t.typing(C, A, Timestamp(9_000)).is_some());
    }
}

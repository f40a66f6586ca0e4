//! Event cursors and the gate that keeps a resumed stream gap-free and
//! duplicate-free.
//!
//! Every durable event gets a sequence number when it is committed. A client
//! keeps the last one it saw; on reconnecting it asks for everything after it.
//! The server subscribes to live events *before* reading the missed ones from
//! the store, so the two streams overlap; the [`ReplayGate`] lets each event
//! through once, in order.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// The position of a durable event in the server's event log. Clients see it
/// as an opaque decimal string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Cursor(pub i64);

impl Cursor {
    /// Before every event.
    pub const START: Cursor = Cursor(0);

    pub fn parse(s: &str) -> Option<Self> {
        let n: i64 = s.parse().ok()?;
        (n >= 0).then_some(Self(n))
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for Cursor {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Cursor {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Cursor::parse(&s).ok_or_else(|| serde::de::Error::custom("invalid cursor"))
    }
}

/// Lets through each durable event at most once and only in increasing cursor
/// order, whichever stream (replay or live) it arrives on.
#[derive(Debug, Clone, Copy)]
pub struct ReplayGate {
    last: Cursor,
}

impl ReplayGate {
    pub fn new(from: Cursor) -> Self {
        Self { last: from }
    }

    /// True when the event at `cursor` should be sent; remembers it.
    pub fn admit(&mut self, cursor: Cursor) -> bool {
        if cursor > self.last {
            self.last = cursor;
            true
        } else {
            false
        }
    }

    pub fn last(&self) -> Cursor {
        self.last
    }

    /// Gives up replaying: the client reloads and continues from the cursor
    /// returned, `newest` or, when the replay already ran past it (it chases
    /// events recorded while it reads), the last cursor sent. The gate never
    /// moves back, so nothing already sent passes it again.
    pub fn skip_to(&mut self, newest: Cursor) -> Cursor {
        self.last = self.last.max(newest);
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn cursor_text_form() {
        assert_eq!(Cursor::parse("42"), Some(Cursor(42)));
        assert_eq!(Cursor::parse("-1"), None);
        assert_eq!(Cursor::parse("x"), None);
        assert_eq!(Cursor(7).to_string(), "7");
    }

    proptest! {
        /// The client last saw `from`; events 1..=n exist. The replay read
        /// returns those after `from` up to `replayed`; the live stream, which
        /// was subscribed earlier, carries those from `live_from` on. However
        /// the two interleave, the client gets each of from+1..=n exactly
        /// once, in order.
        #[test]
        fn replay_and_live_merge_without_gap_or_duplicate(
            n in 1i64..60,
            from_frac in 0.0f64..1.0,
            replayed_frac in 0.0f64..1.0,
            live_frac in 0.0f64..1.0,
            interleave in proptest::collection::vec(any::<bool>(), 0..200),
        ) {
            let from = (from_frac * n as f64) as i64;
            let replayed = from + ((n - from) as f64 * replayed_frac) as i64;
            // Subscribing before the read means live starts no later than the
            // first event the read did not see.
            let live_from = from + 1 + ((replayed - from) as f64 * live_frac) as i64;
            let replay: Vec<i64> = (from + 1..=replayed).collect();
            let live: Vec<i64> = (live_from..=n).collect();

            // The gateway sends the replay first, then drains what live
            // buffered meanwhile; a few live events may also race the
            // replay's tail, which `interleave` models.
            let mut gate = ReplayGate::new(Cursor(from));
            let mut out = Vec::new();
            let (mut r, mut l) = (0, 0);
            let mut choices = interleave.into_iter();
            while r < replay.len() || l < live.len() {
                let take_replay = r < replay.len() && (l >= live.len() || choices.next().unwrap_or(true));
                let c = if take_replay { r += 1; replay[r - 1] } else { l += 1; live[l - 1] };
                if gate.admit(Cursor(c)) {
                    out.push(c);
                }
            }
            // Out of order arrival may drop an event only if a later one was
            // already sent; with replay before live that never happens, so
            // check the stronger property on the ordered merge as well.
            prop_assert!(out.windows(2).all(|w| w[0] < w[1]));
            let mut ordered_gate = ReplayGate::new(Cursor(from));
            let ordered: Vec<i64> = replay.iter().chain(live.iter()).copied().filter(|&c| ordered_gate.admit(Cursor(c))).collect();
            prop_assert_eq!(ordered, (from + 1..=n).collect::<Vec<_>>());
        }
    }

    #[test]
    fn giving_up_a_replay_never_moves_the_gate_back() {
        let mut gate = ReplayGate::new(Cursor(10));
        assert!(gate.admit(Cursor(11)));
        assert!(gate.admit(Cursor(30)));
        // The replay ran past the newest cursor it started with (20).
        assert_eq!(gate.skip_to(Cursor(20)), Cursor(30));
        assert!(!gate.admit(Cursor(25)), "already sent");
        assert!(!gate.admit(Cursor(30)), "already sent");
        assert!(gate.admit(Cursor(31)));
        // Behind the newest: skip ahead to it.
        assert_eq!(gate.skip_to(Cursor(50)), Cursor(50));
        assert!(!gate.admit(Cursor(40)));
    }
}

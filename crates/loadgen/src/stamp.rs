//! The text of a generated message: `lg <run> <phase> <sender> <seq> <scheduled_unix_nanos>`.
//!
//! Everything a receiver needs to account for a delivery travels in the message
//! itself, so no state is shared between the sending and the receiving side
//! except the ledger the stamp points into.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// The identity and scheduled send time of one generated message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// Tells runs of the generator apart (its start time, in seconds).
    pub run: u64,
    /// The measured phase (a W2 step, for example) the message belongs to.
    pub phase: u32,
    /// The sending user, numbered by the generator.
    pub sender: u32,
    /// The sender's sequence number within the phase.
    pub seq: u64,
    /// When the schedule called for the message to be sent, in Unix nanoseconds.
    pub scheduled_unix_nanos: u64,
}

impl Stamp {
    pub fn text(&self) -> String {
        format!(
            "lg {} {} {} {} {}",
            self.run, self.phase, self.sender, self.seq, self.scheduled_unix_nanos
        )
    }

    /// Reads a stamp back; `None` for any other text (system messages, people).
    pub fn parse(text: &str) -> Option<Stamp> {
        let mut words = text.strip_prefix("lg ")?.split(' ');
        let stamp = Stamp {
            run: words.next()?.parse().ok()?,
            phase: words.next()?.parse().ok()?,
            sender: words.next()?.parse().ok()?,
            seq: words.next()?.parse().ok()?,
            scheduled_unix_nanos: words.next()?.parse().ok()?,
        };
        words.next().is_none().then_some(stamp)
    }

    /// A key the server can use to recognise a retried send.
    pub fn idempotency_key(&self) -> String {
        format!(
            "lg-{}-{}-{}-{}",
            self.run, self.phase, self.sender, self.seq
        )
    }
}

/// Wall-clock time derived from one reading of the system clock plus the
/// monotonic clock, so that a clock step during a run cannot bend latencies.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    base: Instant,
    base_unix_nanos: u64,
}

impl Clock {
    pub fn start() -> Clock {
        let base_unix_nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        Clock {
            base: Instant::now(),
            base_unix_nanos,
        }
    }

    /// Unix nanoseconds of a monotonic instant taken after the clock was made.
    pub fn unix_nanos(&self, at: Instant) -> u64 {
        let since = at.saturating_duration_since(self.base).as_nanos();
        self.base_unix_nanos
            .saturating_add(u64::try_from(since).unwrap_or(u64::MAX))
    }

    pub fn now_unix_nanos(&self) -> u64 {
        self.unix_nanos(Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let stamp = Stamp {
            run: 1_790_000_000,
            phase: 3,
            sender: 17,
            seq: 42,
            scheduled_unix_nanos: 1_790_000_000_123_456_789,
        };
        assert_eq!(Stamp::parse(&stamp.text()), Some(stamp));
        assert_eq!(stamp.idempotency_key(), "lg-1790000000-3-17-42");
    }

    #[test]
    fn refuses_other_text() {
        assert_eq!(Stamp::parse("Lunch at noon?"), None);
        assert_eq!(Stamp::parse("lg 1 2 3 4"), None);
        assert_eq!(Stamp::parse("lg 1 2 3 4 5 6"), None);
        assert_eq!(Stamp::parse("lg 1 2 x 4 5"), None);
    }
}

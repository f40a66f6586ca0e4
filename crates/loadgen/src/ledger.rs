//! The accounting of one measured phase: which messages were scheduled, sent and
//! acknowledged, which recipient saw which message how many times, and how late.
//!
//! The ledger is plain data with atomic cells so that many sender and receiver
//! tasks can write into it without a lock on the hot path; it performs no I/O and
//! reads no clock (callers pass latencies in), which keeps it unit-testable.
//!
//! Message `i` of a phase (in schedule order) is sent by sender slot
//! `i % senders` with sequence number `i / senders`; both travel in the message
//! text, so a receiver can find the message's cell again without any lookup table.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicU16, AtomicU64, Ordering};

use hdrhistogram::Histogram;
use serde::Serialize;

/// Who sends to whom in a phase. Users are numbered from 0 by the generator
/// (not by the server); senders are a subset of users.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topology {
    /// Users `2k` and `2k + 1` share a direct chat; every user sends to its partner.
    Pairs { users: u32 },
    /// One group of `members` users; only user 0 sends, every other member receives.
    Group { members: u32 },
    /// Messages from `externals` people outside the organization (texts that
    /// come in through a carrier's webhook) to a business number shared by
    /// users `0..recipients`, each of whom receives every message. Senders are
    /// numbered apart from users: sender 3 is the fourth external number, not
    /// user 3, so no delivery is ever an echo.
    Inbound { recipients: u32, externals: u32 },
}

impl Topology {
    /// How many users send.
    pub fn senders(self) -> u32 {
        match self {
            Topology::Pairs { users } => users,
            Topology::Group { .. } => 1,
            Topology::Inbound { externals, .. } => externals,
        }
    }

    /// The user that sends from a sender slot.
    pub fn sender_user(self, slot: u32) -> u32 {
        match self {
            Topology::Pairs { .. } | Topology::Inbound { .. } => slot,
            Topology::Group { .. } => 0,
        }
    }

    /// The sender slot of a user, if that user sends at all.
    pub fn sender_slot(self, user: u32) -> Option<u32> {
        match self {
            Topology::Pairs { users } => (user < users).then_some(user),
            Topology::Group { members } => (user == 0 && members > 0).then_some(0),
            Topology::Inbound { externals, .. } => (user < externals).then_some(user),
        }
    }

    /// The most recipients any one message has.
    pub fn fanout(self) -> u32 {
        match self {
            Topology::Pairs { .. } => 1,
            Topology::Group { members } => members.saturating_sub(1),
            Topology::Inbound { recipients, .. } => recipients,
        }
    }

    /// Whether a recipient seeing a sender's message sees its own message
    /// come back (its other devices would show it), which is no delivery.
    pub fn is_echo(self, sender: u32, recipient: u32) -> bool {
        match self {
            Topology::Pairs { .. } | Topology::Group { .. } => {
                recipient == sender && self.sender_slot(sender).is_some()
            }
            Topology::Inbound { .. } => false,
        }
    }

    /// Where a recipient's delivery counter sits among a sender's recipients,
    /// or `None` when that user is not a recipient of that sender (for example
    /// the sender itself, which gets its own messages as an echo).
    pub fn recipient_slot(self, sender: u32, recipient: u32) -> Option<u32> {
        match self {
            Topology::Pairs { users } => {
                (sender < users && recipient < users && recipient == sender ^ 1).then_some(0)
            }
            Topology::Group { members } => {
                (sender == 0 && recipient > 0 && recipient < members).then(|| recipient - 1)
            }
            Topology::Inbound {
                recipients,
                externals,
            } => (sender < externals && recipient < recipients).then_some(recipient),
        }
    }

    /// How many recipients a sender's messages have.
    pub fn recipients_of(self, sender: u32) -> u32 {
        match self {
            Topology::Pairs { users } => u32::from(sender < users && (sender ^ 1) < users),
            Topology::Group { members } if sender == 0 => members.saturating_sub(1),
            Topology::Group { .. } => 0,
            Topology::Inbound {
                recipients,
                externals,
            } if sender < externals => recipients,
            Topology::Inbound { .. } => 0,
        }
    }
}

/// The state of one scheduled message.
const NOT_SENT: u8 = 0;
const IN_FLIGHT: u8 = 1;
const ACKED: u8 = 2;
const FAILED: u8 = 3;

/// Latencies are kept in microseconds, from 1 µs to one hour, 3 significant digits.
const LATENCY_MAX_US: u64 = 3_600_000_000;
/// Histograms are sharded so concurrent receivers rarely meet on one lock.
const SHARDS: usize = 16;

fn new_histogram() -> Histogram<u64> {
    // The bounds are constants that hdrhistogram accepts; the fallback is never taken.
    Histogram::new_with_bounds(1, LATENCY_MAX_US, 3)
        .or_else(|_| Histogram::new(3))
        .unwrap_or_else(|_| unreachable!("constant histogram bounds are valid"))
}

/// A sharded latency histogram (microseconds).
struct Latencies {
    shards: Vec<Mutex<Histogram<u64>>>,
}

impl Latencies {
    fn new() -> Self {
        Latencies {
            shards: (0..SHARDS).map(|_| Mutex::new(new_histogram())).collect(),
        }
    }

    fn record(&self, shard: usize, latency_ns: u64) {
        let us = (latency_ns / 1_000).clamp(1, LATENCY_MAX_US);
        let mut histogram = match self.shards[shard % SHARDS].lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        histogram.saturating_record(us);
    }

    fn merged(&self) -> Histogram<u64> {
        let mut all = new_histogram();
        for shard in &self.shards {
            let histogram = match shard.lock() {
                Ok(guard) => guard,
                Err(poisoned) => poisoned.into_inner(),
            };
            // Every shard has the same bounds, so adding cannot fail.
            let _ = all.add(&*histogram);
        }
        all
    }
}

/// What a receiver made of one delivered frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// The first time this recipient saw this message.
    First,
    /// This recipient had seen this message before.
    Duplicate,
    /// The sender's own message came back to it (its other devices would show it).
    Echo,
    /// The message does not belong to this phase's plan (unknown sender or sequence).
    Stray,
}

/// The accounting of one phase.
pub struct Ledger {
    topology: Topology,
    total: u64,
    states: Vec<AtomicU8>,
    deliveries: Vec<AtomicU16>,
    latency: Latencies,
    ack_latency: Latencies,
    echoes: AtomicU64,
    strays: AtomicU64,
    first_deliveries: AtomicU64,
    acked: AtomicU64,
    errors: Mutex<BTreeMap<String, u64>>,
    timeline: Option<Timeline>,
}

impl Ledger {
    /// A ledger for `total` scheduled messages over `topology`.
    pub fn new(topology: Topology, total: u64) -> Self {
        let fanout = u64::from(topology.fanout());
        let cells = usize::try_from(total.saturating_mul(fanout)).unwrap_or(usize::MAX);
        let messages = usize::try_from(total).unwrap_or(usize::MAX);
        Ledger {
            topology,
            total,
            states: (0..messages).map(|_| AtomicU8::new(NOT_SENT)).collect(),
            deliveries: (0..cells).map(|_| AtomicU16::new(0)).collect(),
            latency: Latencies::new(),
            ack_latency: Latencies::new(),
            echoes: AtomicU64::new(0),
            strays: AtomicU64::new(0),
            first_deliveries: AtomicU64::new(0),
            acked: AtomicU64::new(0),
            errors: Mutex::new(BTreeMap::new()),
            timeline: None,
        }
    }

    /// Also keeps per-second figures, by scheduled send second, for a phase
    /// starting at `start_unix_nanos` and lasting `seconds`.
    pub fn with_timeline(mut self, start_unix_nanos: u64, seconds: usize) -> Self {
        self.timeline = Some(Timeline {
            start_unix_nanos,
            seconds: (0..seconds).map(|_| SecondCells::default()).collect(),
        });
        self
    }

    fn second(&self, scheduled_unix_nanos: u64) -> Option<&SecondCells> {
        let timeline = self.timeline.as_ref()?;
        let offset = scheduled_unix_nanos.checked_sub(timeline.start_unix_nanos)? / 1_000_000_000;
        timeline.seconds.get(usize::try_from(offset).ok()?)
    }

    /// Notes a first delivery in the timeline (call it when `record_delivery`
    /// answered [`Delivery::First`]).
    pub fn note_delivery(&self, scheduled_unix_nanos: u64, latency_ns: u64) {
        if let Some(second) = self.second(scheduled_unix_nanos) {
            let us = latency_ns / 1_000;
            second.delivered.fetch_add(1, Ordering::Relaxed);
            if us >= SLOW_US {
                second.slow.fetch_add(1, Ordering::Relaxed);
            }
            second.max_us.fetch_max(us, Ordering::Relaxed);
        }
    }

    /// Notes an acknowledgement in the timeline.
    pub fn note_ack(&self, scheduled_unix_nanos: u64, latency_ns: u64) {
        if let Some(second) = self.second(scheduled_unix_nanos) {
            second
                .ack_max_us
                .fetch_max(latency_ns / 1_000, Ordering::Relaxed);
        }
    }

    /// The sender user and sequence number of message `index`.
    pub fn message(&self, index: u64) -> (u32, u64) {
        let senders = u64::from(self.topology.senders().max(1));
        let slot = u32::try_from(index % senders).unwrap_or(0);
        (self.topology.sender_user(slot), index / senders)
    }

    fn index_of(&self, sender: u32, seq: u64) -> Option<u64> {
        let slot = self.topology.sender_slot(sender)?;
        let index = seq
            .checked_mul(u64::from(self.topology.senders()))?
            .checked_add(u64::from(slot))?;
        (index < self.total).then_some(index)
    }

    fn state(&self, index: u64) -> Option<&AtomicU8> {
        self.states.get(usize::try_from(index).ok()?)
    }

    /// Message `index` left the generator.
    pub fn mark_sent(&self, index: u64) {
        if let Some(state) = self.state(index) {
            state.store(IN_FLIGHT, Ordering::Relaxed);
        }
    }

    /// The server acknowledged message `index`, `latency_ns` after its scheduled time.
    pub fn mark_acked(&self, index: u64, latency_ns: u64) {
        if let Some(state) = self.state(index) {
            state.store(ACKED, Ordering::Release);
            self.acked.fetch_add(1, Ordering::Relaxed);
            self.ack_latency.record(index as usize, latency_ns);
        }
    }

    /// Sending message `index` failed for good; `reason` is counted in the report.
    pub fn mark_failed(&self, index: u64, reason: &str) {
        if let Some(state) = self.state(index) {
            state.store(FAILED, Ordering::Release);
        }
        let mut errors = match self.errors.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        *errors.entry(reason.to_owned()).or_insert(0) += 1;
    }

    /// Recipient user `recipient` received message (`sender`, `seq`), `latency_ns`
    /// after its scheduled send time.
    pub fn record_delivery(
        &self,
        recipient: u32,
        sender: u32,
        seq: u64,
        latency_ns: u64,
    ) -> Delivery {
        if self.topology.is_echo(sender, recipient) {
            self.echoes.fetch_add(1, Ordering::Relaxed);
            return Delivery::Echo;
        }
        let cell = self.index_of(sender, seq).and_then(|index| {
            let slot = self.topology.recipient_slot(sender, recipient)?;
            let cell = index * u64::from(self.topology.fanout()) + u64::from(slot);
            self.deliveries.get(usize::try_from(cell).ok()?)
        });
        let Some(cell) = cell else {
            self.strays.fetch_add(1, Ordering::Relaxed);
            return Delivery::Stray;
        };
        let before = cell
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                Some(n.saturating_add(1))
            })
            .unwrap_or(u16::MAX);
        if before == 0 {
            self.first_deliveries.fetch_add(1, Ordering::Relaxed);
            self.latency.record(recipient as usize, latency_ns);
            Delivery::First
        } else {
            Delivery::Duplicate
        }
    }

    /// How many first deliveries have been seen so far.
    pub fn first_deliveries(&self) -> u64 {
        self.first_deliveries.load(Ordering::Relaxed)
    }

    /// How many deliveries the acknowledged messages so far call for.
    pub fn expected_so_far(&self) -> u64 {
        // Exact for every topology used here: all senders have the same fan-out.
        self.acked.load(Ordering::Relaxed) * u64::from(self.topology.fanout())
    }

    /// Counts everything up. Call it once the grace period is over.
    pub fn summarize(&self) -> Tally {
        let mut tally = Tally::default();
        let fanout = u64::from(self.topology.fanout());
        for index in 0..self.total {
            let state = self
                .state(index)
                .map_or(NOT_SENT, |s| s.load(Ordering::Acquire));
            let (sender, _) = self.message(index);
            let recipients = u64::from(self.topology.recipients_of(sender));
            match state {
                NOT_SENT => {}
                IN_FLIGHT => tally.unanswered += 1,
                ACKED => tally.acked += 1,
                _ => tally.failed += 1,
            }
            if state != NOT_SENT {
                tally.sent += 1;
            }
            for slot in 0..recipients {
                let count = usize::try_from(index * fanout + slot)
                    .ok()
                    .and_then(|cell| self.deliveries.get(cell))
                    .map_or(0, |c| u64::from(c.load(Ordering::Relaxed)));
                if state == ACKED {
                    tally.expected += 1;
                    if count == 0 {
                        tally.lost += 1;
                    }
                }
                if count > 0 {
                    if state == ACKED {
                        tally.delivered += 1;
                    } else {
                        tally.delivered_unacked += 1;
                    }
                    tally.duplicated += count - 1;
                }
            }
        }
        tally.scheduled = self.total;
        tally.echoes = self.echoes.load(Ordering::Relaxed);
        tally.strays = self.strays.load(Ordering::Relaxed);
        tally.latency = Percentiles::of(&self.latency.merged());
        tally.ack_latency = Percentiles::of(&self.ack_latency.merged());
        tally.errors = match self.errors.lock() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        tally.timeline = self.timeline.as_ref().map_or_else(Vec::new, |timeline| {
            timeline
                .seconds
                .iter()
                .enumerate()
                .map(|(second, cells)| SecondReport {
                    second,
                    delivered: cells.delivered.load(Ordering::Relaxed),
                    over_100ms: cells.slow.load(Ordering::Relaxed),
                    max_ms: cells.max_us.load(Ordering::Relaxed) as f64 / 1e3,
                    ack_max_ms: cells.ack_max_us.load(Ordering::Relaxed) as f64 / 1e3,
                })
                .collect()
        });
        tally
    }
}

/// Deliveries at or over this latency count as slow in the timeline.
const SLOW_US: u64 = 100_000;

/// Per-second cells, by the second in which messages were due.
struct Timeline {
    start_unix_nanos: u64,
    seconds: Vec<SecondCells>,
}

#[derive(Default)]
struct SecondCells {
    delivered: AtomicU64,
    slow: AtomicU64,
    max_us: AtomicU64,
    ack_max_us: AtomicU64,
}

/// One second of a phase, by scheduled send time.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SecondReport {
    pub second: usize,
    /// First deliveries of messages due in this second.
    pub delivered: u64,
    /// Of those, how many took 100 ms or more.
    pub over_100ms: u64,
    /// The slowest of those deliveries.
    pub max_ms: f64,
    /// The slowest acknowledgement of messages due in this second.
    pub ack_max_ms: f64,
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
    pub mean_us: f64,
}

impl Percentiles {
    pub fn of(histogram: &Histogram<u64>) -> Self {
        if histogram.is_empty() {
            return Percentiles::default();
        }
        Percentiles {
            count: histogram.len(),
            p50_us: histogram.value_at_quantile(0.50),
            p90_us: histogram.value_at_quantile(0.90),
            p99_us: histogram.value_at_quantile(0.99),
            p999_us: histogram.value_at_quantile(0.999),
            max_us: histogram.max(),
            mean_us: histogram.mean(),
        }
    }
}

/// The counts of one phase.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Tally {
    /// Messages the schedule called for.
    pub scheduled: u64,
    /// Messages that left the generator.
    pub sent: u64,
    /// Messages the server acknowledged (201 or 200).
    pub acked: u64,
    /// Messages whose send failed for good.
    pub failed: u64,
    /// Messages still without an answer when the phase ended.
    pub unanswered: u64,
    /// Deliveries the acknowledged messages call for (messages × recipients).
    pub expected: u64,
    /// Of those, how many arrived at least once.
    pub delivered: u64,
    /// Acknowledged deliveries that never arrived within the grace period.
    pub lost: u64,
    /// Extra copies of a message seen by the same recipient.
    pub duplicated: u64,
    /// Deliveries of messages whose send was never acknowledged.
    pub delivered_unacked: u64,
    /// Senders' own messages seen on their own connection.
    pub echoes: u64,
    /// Generator messages that fit no cell of this phase.
    pub strays: u64,
    /// End-to-end latency from the scheduled send time to the first delivery.
    pub latency: Percentiles,
    /// From the scheduled send time to the server's answer.
    pub ack_latency: Percentiles,
    /// Failed sends by reason.
    pub errors: BTreeMap<String, u64>,
    /// Per-second figures, when the phase keeps them.
    pub timeline: Vec<SecondReport>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn pairs_map_messages_to_partners() {
        let topology = Topology::Pairs { users: 4 };
        let ledger = Ledger::new(topology, 8);
        assert_eq!(ledger.message(0), (0, 0));
        assert_eq!(ledger.message(5), (1, 1));
        assert_eq!(topology.recipient_slot(2, 3), Some(0));
        assert_eq!(topology.recipient_slot(3, 2), Some(0));
        assert_eq!(topology.recipient_slot(2, 1), None);
        assert_eq!(topology.recipients_of(3), 1);
    }

    #[test]
    fn counts_loss_duplicates_and_latency() {
        // Four users in two pairs, two rounds: eight messages.
        let ledger = Ledger::new(Topology::Pairs { users: 4 }, 8);
        for index in 0..8 {
            ledger.mark_sent(index);
        }
        for index in 0..7 {
            ledger.mark_acked(index, 2 * MS);
        }
        ledger.mark_failed(7, "http 500");

        // Every acknowledged message arrives at its partner except (sender 2, seq 1),
        // which is message 6; (sender 1, seq 0) arrives twice.
        for index in 0..8u64 {
            let (sender, seq) = ledger.message(index);
            if index == 6 {
                continue;
            }
            let latency = (index + 1) * 10 * MS;
            assert_eq!(
                ledger.record_delivery(sender ^ 1, sender, seq, latency),
                Delivery::First
            );
        }
        assert_eq!(
            ledger.record_delivery(0, 1, 0, 500 * MS),
            Delivery::Duplicate
        );
        assert_eq!(ledger.record_delivery(1, 1, 0, MS), Delivery::Echo);
        assert_eq!(ledger.record_delivery(0, 1, 99, MS), Delivery::Stray);
        assert_eq!(ledger.record_delivery(2, 0, 0, MS), Delivery::Stray);

        let tally = ledger.summarize();
        assert_eq!(tally.scheduled, 8);
        assert_eq!(tally.sent, 8);
        assert_eq!(tally.acked, 7);
        assert_eq!(tally.failed, 1);
        assert_eq!(tally.expected, 7);
        assert_eq!(tally.delivered, 6);
        assert_eq!(tally.lost, 1);
        assert_eq!(tally.duplicated, 1);
        assert_eq!(tally.delivered_unacked, 1);
        assert_eq!(tally.echoes, 1);
        assert_eq!(tally.strays, 2);
        assert_eq!(tally.errors.get("http 500"), Some(&1));

        // First deliveries only: 10, 20, 30, 40, 50, 60, 80 ms (the duplicate is not counted).
        assert_eq!(tally.latency.count, 7);
        assert_eq!(tally.latency.max_us / 1_000, 80);
        let p50 = tally.latency.p50_us;
        assert!((39_900..=40_100).contains(&p50), "p50 {p50}");
        assert_eq!(tally.ack_latency.count, 7);
        assert!((1_990..=2_010).contains(&tally.ack_latency.p99_us));
    }

    #[test]
    fn group_fans_out_to_every_other_member() {
        let ledger = Ledger::new(Topology::Group { members: 5 }, 3);
        for index in 0..3 {
            ledger.mark_sent(index);
            ledger.mark_acked(index, MS);
        }
        for seq in 0..3 {
            for member in 1..5 {
                if seq == 2 && member == 4 {
                    continue;
                }
                ledger.record_delivery(member, 0, seq, MS);
            }
            ledger.record_delivery(0, 0, seq, MS);
        }
        assert_eq!(ledger.record_delivery(3, 1, 0, MS), Delivery::Stray);
        assert_eq!(ledger.expected_so_far(), 12);
        assert_eq!(ledger.first_deliveries(), 11);
        let tally = ledger.summarize();
        assert_eq!(tally.expected, 12);
        assert_eq!(tally.delivered, 11);
        assert_eq!(tally.lost, 1);
        assert_eq!(tally.duplicated, 0);
        assert_eq!(tally.echoes, 3);
    }

    #[test]
    fn inbound_texts_reach_every_recipient_and_are_never_echoes() {
        // Three external numbers text a number shared by two users; sender
        // numbers overlap user numbers on purpose.
        let topology = Topology::Inbound {
            recipients: 2,
            externals: 3,
        };
        let ledger = Ledger::new(topology, 6);
        assert_eq!(ledger.message(4), (1, 1));
        for index in 0..6 {
            ledger.mark_sent(index);
            ledger.mark_acked(index, MS);
        }
        for index in 0..6 {
            let (sender, seq) = ledger.message(index);
            for recipient in 0..2 {
                if index == 5 && recipient == 1 {
                    continue;
                }
                assert_eq!(
                    ledger.record_delivery(recipient, sender, seq, MS),
                    Delivery::First
                );
            }
        }
        // A webhook taken twice by the server would show as a second copy.
        assert_eq!(ledger.record_delivery(1, 1, 0, MS), Delivery::Duplicate);
        assert_eq!(ledger.record_delivery(2, 0, 0, MS), Delivery::Stray);
        assert_eq!(ledger.record_delivery(0, 3, 0, MS), Delivery::Stray);
        assert_eq!(ledger.expected_so_far(), 12);
        let tally = ledger.summarize();
        assert_eq!(tally.expected, 12);
        assert_eq!(tally.delivered, 11);
        assert_eq!(tally.lost, 1);
        assert_eq!(tally.duplicated, 1);
        assert_eq!(tally.echoes, 0);
        assert_eq!(tally.strays, 2);
    }

    #[test]
    fn timeline_groups_by_scheduled_second() {
        let start = 1_000 * 1_000 * MS;
        let ledger = Ledger::new(Topology::Pairs { users: 2 }, 4).with_timeline(start, 2);
        ledger.note_delivery(start + 10 * MS, 5 * MS);
        ledger.note_delivery(start + 900 * MS, 150 * MS);
        ledger.note_delivery(start + 1_100 * MS, 20 * MS);
        ledger.note_ack(start + 1_100 * MS, 7 * MS);
        ledger.note_delivery(start + 5_000 * MS, 20 * MS);
        ledger.note_delivery(start - MS, 20 * MS);
        let timeline = ledger.summarize().timeline;
        assert_eq!(timeline.len(), 2);
        assert_eq!((timeline[0].delivered, timeline[0].over_100ms), (2, 1));
        assert!((timeline[0].max_ms - 150.0).abs() < 1e-9);
        assert_eq!((timeline[1].delivered, timeline[1].over_100ms), (1, 0));
        assert!((timeline[1].ack_max_ms - 7.0).abs() < 1e-9);
    }

    #[test]
    fn unsent_messages_are_neither_lost_nor_sent() {
        let ledger = Ledger::new(Topology::Pairs { users: 2 }, 10);
        ledger.mark_sent(0);
        ledger.mark_acked(0, MS);
        ledger.mark_sent(1);
        let tally = ledger.summarize();
        assert_eq!(tally.sent, 2);
        assert_eq!(tally.acked, 1);
        assert_eq!(tally.unanswered, 1);
        assert_eq!(tally.lost, 1);
        assert_eq!(tally.latency, Percentiles::default());
    }
}

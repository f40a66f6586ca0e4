//! Open-loop sending: message `i` of a phase is due at `start + i / rate`, and it
//! is sent then whatever happened to the messages before it. Each send is its
//! own task over the shared keep-alive pool, so a slow answer delays nothing
//! else; latency is measured from the due time, never from when the request
//! actually left, so a generator or server that falls behind shows it in the
//! figures instead of hiding it (no coordinated omission).
//!
//! With `--send-over ws` a send is a `send` frame queued on the sender's own
//! WebSocket instead of a task (see `wsend`); the schedule, the permits of
//! `--max-in-flight` and the latency definitions are the same.
//!
//! W5's messages are no user's: each is a carrier's signed webhook, its own
//! task over the same pool, acknowledged by the server's 200 (see `webhook`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::Semaphore;

use crate::api::{Api, SendOutcome};
use crate::ledger::{Ledger, Tally, Topology};
use crate::stamp::Stamp;
use crate::usage::{self, MachineSample, Process, StallProbe, Usage};
use crate::webhook::{Inbound, RepostReport, Reposts};
use crate::ws::Board;
use crate::wsend::{Acks, Flight, Line, SendPath, send_frame};

/// Who sends where: per user, its bearer token, the conversation it posts to
/// and the API of the node it is placed on (REST sends go there).
pub struct Senders {
    pub tokens: Vec<String>,
    pub conversations: Vec<i64>,
    pub apis: Vec<Api>,
}

/// Where the messages of a phase come from.
#[derive(Clone)]
pub enum Route {
    /// Users post to their conversations, as `Limits::send_path` says.
    Conversations(Arc<Senders>),
    /// A carrier posts a signed webhook per inbound text.
    Webhooks(Arc<Inbound>),
}

/// Limits that keep a run honest and finite.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Most sends in flight at once (each holds one pooled connection).
    pub max_in_flight: usize,
    /// Give up on a phase when sends leave this much later than due.
    pub max_lag: Duration,
    /// How long to wait for deliveries after the last answer.
    pub grace: Duration,
    /// Attempts per message on transport errors (same idempotency key).
    pub attempts: u32,
    /// REST requests or frames on the sender's WebSocket.
    pub send_path: SendPath,
}

/// One measured phase.
#[derive(Debug, Clone)]
pub struct Phase {
    pub name: String,
    pub number: u32,
    pub rate: f64,
    pub duration: Duration,
    pub topology: Topology,
}

/// What a phase measured.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseReport {
    pub name: String,
    /// How the messages were sent: `rest` or `ws`.
    pub send_path: SendPath,
    pub target_rate: f64,
    pub duration_seconds: f64,
    #[serde(flatten)]
    pub tally: Tally,
    /// Sends per second actually issued over the sending window.
    pub offered_rate: f64,
    /// Acknowledged sends per second, from start to the last answer.
    pub acked_rate: f64,
    /// First deliveries per second, from start to the last delivery seen.
    pub delivery_rate: f64,
    /// The latest any send left after its due time, in milliseconds.
    pub max_send_lag_ms: f64,
    /// Why sending stopped early, if it did.
    pub aborted: Option<String>,
    /// Seconds from the last due time until every delivery was in (or the grace ran out).
    pub drain_seconds: f64,
    pub reconnects: u64,
    /// WebSocket sends written again after their connection closed.
    pub resent: u64,
    /// W5: webhooks posted a second time with the same message id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reposts: Option<RepostReport>,
    /// Per second of the phase, the worst delay in ms of a thread that only
    /// sleeps: the machine's own stalls, which neither side caused.
    pub machine_stall_ms: Vec<f64>,
    /// Connection attempts the machine dropped on a full listen queue during the phase.
    pub listen_overflows: Option<u64>,
    /// The server process over the sending window.
    pub server: Option<Usage>,
    /// The generator itself over the sending window.
    pub loadgen: Usage,
    /// The whole machine (every process) over the sending window.
    pub machine_busy_percent: f64,
}

/// The pacer's shortest sleep: at high rates the messages due within one
/// tick leave together, as from many independent clients, rather than
/// costing a wake-up each; at W1's rate every message still has a tick of
/// its own. A send leaves at most this late, and the lateness is measured.
const TICK: Duration = Duration::from_micros(250);

/// When the messages of a phase are due: message `i` at `start + i × period`.
struct Schedule {
    start: Instant,
    period_ns: f64,
    total: u64,
}

/// Issues the sends of one phase on their due times, from a thread of its
/// own: the runtime's timers fire on whole milliseconds, which alone would
/// add up to a millisecond to every measured latency; a thread sleeps to
/// within tens of microseconds.
struct Pacer {
    api: Api,
    board: Arc<Board>,
    route: Route,
    reposts: Arc<Reposts>,
    ledger: Arc<Ledger>,
    acks: Arc<Acks>,
    in_flight: Arc<Semaphore>,
    lines: Vec<Option<Arc<Line>>>,
    limits: Limits,
    phase: u32,
    runtime: tokio::runtime::Handle,
}

impl Pacer {
    /// Sends every message of the schedule; the latest a send left after
    /// its due time, and why sending stopped early if it did.
    fn run(self, schedule: Schedule) -> (Duration, Option<String>) {
        let Schedule {
            start,
            period_ns,
            total,
        } = schedule;
        let ledger = &self.ledger;
        let mut max_lag = Duration::ZERO;
        for index in 0..total {
            let due = start + Duration::from_nanos((index as f64 * period_ns) as u64);
            let now = Instant::now();
            if due > now {
                // Everything due by the time the thread wakes leaves together.
                std::thread::sleep((due - now).max(TICK));
            }
            let permit = match self.in_flight.clone().try_acquire_owned() {
                Ok(permit) => permit,
                Err(_) => match self
                    .runtime
                    .block_on(self.in_flight.clone().acquire_owned())
                {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
            };
            let lag = Instant::now().saturating_duration_since(due);
            max_lag = max_lag.max(lag);
            if lag > self.limits.max_lag {
                let why = format!(
                    "sends fell {:.1} s behind schedule at message {index} of {total}",
                    lag.as_secs_f64()
                );
                return (max_lag, Some(why));
            }
            let (sender, seq) = ledger.message(index);
            let stamp = Stamp {
                run: self.board.run,
                phase: self.phase,
                sender,
                seq,
                scheduled_unix_nanos: self.board.clock.unix_nanos(due),
            };
            let senders = match &self.route {
                Route::Conversations(senders) => senders,
                Route::Webhooks(inbound) => {
                    ledger.mark_sent(index);
                    let post = Post {
                        api: self.api.clone(),
                        inbound: inbound.clone(),
                        acks: self.acks.clone(),
                        reposts: self.reposts.clone(),
                        attempts: self.limits.attempts.max(1),
                    };
                    self.runtime.spawn(post.run(index, due, stamp, permit));
                    continue;
                }
            };
            let Some(conversation) = senders.conversations.get(sender as usize).copied() else {
                ledger.mark_failed(index, "no conversation");
                continue;
            };
            ledger.mark_sent(index);
            if self.limits.send_path == SendPath::Ws {
                let key = stamp.idempotency_key();
                let frame = send_frame(conversation, &stamp.text(), &key);
                let flight = Flight::new(
                    self.acks.clone(),
                    index,
                    due,
                    stamp.scheduled_unix_nanos,
                    frame,
                    permit,
                );
                match self.lines.get(sender as usize).and_then(Option::as_ref) {
                    Some(line) => line.submit(key, flight),
                    None => ledger.mark_failed(index, "no websocket"),
                }
                continue;
            }
            let api = senders
                .apis
                .get(sender as usize)
                .unwrap_or(&self.api)
                .clone();
            let (acks, senders) = (self.acks.clone(), senders.clone());
            let attempts = self.limits.attempts.max(1);
            self.runtime.spawn(async move {
                let _permit = permit;
                let token = senders
                    .tokens
                    .get(sender as usize)
                    .map_or("", String::as_str);
                let (text, key) = (stamp.text(), stamp.idempotency_key());
                for attempt in 1..=attempts {
                    match api.send(token, conversation, &text, &key).await {
                        SendOutcome::Acked => {
                            acks.acked(index, due, stamp.scheduled_unix_nanos, Instant::now());
                            return;
                        }
                        SendOutcome::Refused(reason) => {
                            acks.ledger.mark_failed(index, &reason);
                            return;
                        }
                        SendOutcome::Transport(reason) if attempt == attempts => {
                            acks.ledger.mark_failed(index, &reason);
                            return;
                        }
                        SendOutcome::Transport(_) => {
                            tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt)))
                                .await;
                        }
                    }
                }
            });
        }
        (max_lag, None)
    }
}

/// One webhook of a phase: posted (again on transport errors, with the same
/// message id, as a carrier retries), then perhaps posted a second time on
/// purpose once accepted.
struct Post {
    api: Api,
    inbound: Arc<Inbound>,
    acks: Arc<Acks>,
    reposts: Arc<Reposts>,
    attempts: u32,
}

impl Post {
    async fn run(
        self,
        index: u64,
        due: Instant,
        stamp: Stamp,
        permit: tokio::sync::OwnedSemaphorePermit,
    ) {
        // The permit is held until the second post is answered too, so the
        // phase waits for it.
        let _permit = permit;
        let fields = self.inbound.fields(&stamp, index);
        let signature = self.inbound.signature(&fields);
        let url = &self.inbound.post_url;
        for attempt in 1..=self.attempts {
            match self.api.post_webhook(url, &fields, &signature).await {
                SendOutcome::Acked => {
                    self.acks
                        .acked(index, due, stamp.scheduled_unix_nanos, Instant::now());
                    if self.inbound.reposts(index) {
                        let again = self.api.post_webhook(url, &fields, &signature).await;
                        self.reposts.record(&again);
                    }
                    return;
                }
                SendOutcome::Refused(reason) => {
                    self.acks.ledger.mark_failed(index, &reason);
                    return;
                }
                SendOutcome::Transport(reason) if attempt == self.attempts => {
                    self.acks.ledger.mark_failed(index, &reason);
                    return;
                }
                SendOutcome::Transport(_) => {
                    tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
                }
            }
        }
    }
}

/// Runs one phase to the end of its grace period and reports it.
pub async fn run_phase(
    api: &Api,
    board: &Arc<Board>,
    route: &Route,
    phase: &Phase,
    limits: &Limits,
    server: Option<&Process>,
) -> PhaseReport {
    let total = (phase.rate * phase.duration.as_secs_f64()).round().max(0.0) as u64;
    let period_ns = 1e9 / phase.rate.max(1e-9);
    let start = Instant::now() + Duration::from_millis(50);
    let seconds = phase.duration.as_secs_f64().ceil() as usize + 1;
    let ledger = Arc::new(
        Ledger::new(phase.topology, total).with_timeline(board.clock.unix_nanos(start), seconds),
    );
    // The probe's seconds line up with the timeline's to within the 50 ms before `start`.
    let probe = StallProbe::start(seconds + limits.grace.as_secs() as usize + 30);
    board.register(phase.number, ledger.clone());
    let reconnects_before = board.reconnects.load(std::sync::atomic::Ordering::Relaxed);
    let resent_before = board.resent.load(std::sync::atomic::Ordering::Relaxed);
    // Over the WebSocket, each sending user's line, looked up once.
    let send_path = match route {
        Route::Conversations(_) => limits.send_path,
        Route::Webhooks(_) => SendPath::Webhook,
    };
    let lines: Vec<_> = match (route, send_path) {
        (Route::Conversations(senders), SendPath::Ws) => (0..senders.conversations.len())
            .map(|user| u32::try_from(user).ok().and_then(|user| board.line(user)))
            .collect(),
        _ => Vec::new(),
    };

    let me = Process::current();
    let server_before = server.and_then(|p| p.sample().ok());
    let me_before = me.sample().ok();
    let machine_before = MachineSample::take().ok();
    let overflows_before = usage::listen_overflows();

    let in_flight = Arc::new(Semaphore::new(limits.max_in_flight));
    let acks = Arc::new(Acks::new(ledger.clone()));
    let reposts = Arc::new(Reposts::default());
    let schedule = Schedule {
        start,
        period_ns,
        total,
    };
    let pacer = Pacer {
        api: api.clone(),
        board: board.clone(),
        route: route.clone(),
        reposts: reposts.clone(),
        ledger: ledger.clone(),
        acks: acks.clone(),
        in_flight: in_flight.clone(),
        lines,
        limits: limits.clone(),
        phase: phase.number,
        runtime: tokio::runtime::Handle::current(),
    };
    let (max_lag, aborted) = tokio::task::spawn_blocking(move || pacer.run(schedule))
        .await
        .unwrap_or_else(|e| {
            (
                Duration::ZERO,
                Some(format!("the sending thread failed: {e}")),
            )
        });
    let sending_ended = Instant::now();
    let server_after = server.and_then(|p| p.sample().ok());
    let me_after = me.sample().ok();
    let machine_after = MachineSample::take().ok();

    // Every send task holds a permit; holding them all means every send is over.
    let permits = u32::try_from(limits.max_in_flight).unwrap_or(u32::MAX);
    let _all =
        tokio::time::timeout(Duration::from_secs(120), in_flight.acquire_many(permits)).await;
    let answers_done = Instant::now();

    // Grace: wait until every acknowledged delivery is in, or the grace runs out.
    let grace_end = answers_done + limits.grace;
    let mut last_progress = (ledger.first_deliveries(), Instant::now());
    while Instant::now() < grace_end && ledger.first_deliveries() < ledger.expected_so_far() {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let seen = ledger.first_deliveries();
        if seen != last_progress.0 {
            last_progress = (seen, Instant::now());
        }
    }
    let drained = last_progress.1;
    let mut stalls = probe.finish();
    stalls.truncate(seconds);
    let overflows_after = usage::listen_overflows();
    let tally = ledger.summarize();

    let last_due =
        start + Duration::from_nanos((total.saturating_sub(1) as f64 * period_ns) as u64);
    let sending_seconds = sending_ended
        .saturating_duration_since(start)
        .as_secs_f64()
        .max(1e-9);
    let ack_seconds = acks
        .last()
        .map(|last| last.saturating_duration_since(start))
        .unwrap_or_default()
        .as_secs_f64()
        .max(1e-9);
    let delivery_seconds = drained
        .saturating_duration_since(start)
        .as_secs_f64()
        .max(1e-9);
    PhaseReport {
        name: phase.name.clone(),
        send_path,
        target_rate: phase.rate,
        duration_seconds: phase.duration.as_secs_f64(),
        offered_rate: tally.sent as f64 / sending_seconds,
        acked_rate: tally.acked as f64 / ack_seconds,
        delivery_rate: tally.delivered as f64 / delivery_seconds,
        max_send_lag_ms: max_lag.as_secs_f64() * 1e3,
        aborted,
        drain_seconds: drained.saturating_duration_since(last_due).as_secs_f64(),
        reconnects: board.reconnects.load(std::sync::atomic::Ordering::Relaxed) - reconnects_before,
        resent: board.resent.load(std::sync::atomic::Ordering::Relaxed) - resent_before,
        reposts: matches!(route, Route::Webhooks(_)).then(|| reposts.report()),
        machine_stall_ms: stalls,
        listen_overflows: overflows_before
            .zip(overflows_after)
            .map(|(before, after)| after.saturating_sub(before)),
        server: server_before
            .zip(server_after)
            .map(|(a, b)| Usage::between(&a, &b)),
        loadgen: me_before
            .zip(me_after)
            .map(|(a, b)| Usage::between(&a, &b))
            .unwrap_or_default(),
        machine_busy_percent: machine_before
            .zip(machine_after)
            .map_or(0.0, |(a, b)| a.busy_percent(&b)),
        tally,
    }
}

//! The workloads W1–W5: each provisions its users, builds its conversations,
//! connects its receivers and runs one or more measured phases.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use futures_util::{StreamExt, TryStreamExt, stream};
use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::api::{Api, Session};
use crate::idle::{self, IdleOptions, IdleReport};
use crate::ledger::Topology;
use crate::provision::{CarrierSetup, Directory, Provisioned, SmsProvisioned};
use crate::traffic::{self, Limits, Phase, PhaseReport, Route, Senders};
use crate::usage::Process;
use crate::webhook::{self, Inbound};
use crate::ws::{self, Board, Endpoint, Receiver};
use crate::wsend::SendPath;

/// One node of the server: its REST API and its WebSocket.
#[derive(Clone)]
pub struct Node {
    pub api: Api,
    pub endpoint: Endpoint,
}

/// Which node a user's connections and sends go to.
#[derive(Debug, Clone, Copy)]
enum Placement {
    /// Users in pairs (0, 1), (2, 3), …: pair `k` has its first user on node
    /// `k` and its second on node `k + 1` (modulo the nodes), so with two nodes
    /// or more every pair spans two nodes and the nodes are evenly loaded.
    Pairs,
    /// User `u` on node `u` (modulo the nodes).
    RoundRobin,
}

impl Placement {
    fn node(self, user: u32, nodes: usize) -> usize {
        let slot = match self {
            Placement::Pairs => user / 2 + (user & 1),
            Placement::RoundRobin => user,
        };
        slot as usize % nodes.max(1)
    }
}

/// Everything a workload needs from the command line and the server.
pub struct Context {
    /// The first node's API: provisioning, administration and webhooks go there.
    pub api: Api,
    /// The first node's WebSocket.
    pub endpoint: Endpoint,
    /// Every node, the first included; users are spread over them.
    pub nodes: Vec<Node>,
    pub directory: Directory,
    pub board: Arc<Board>,
    pub limits: Limits,
    pub server: Option<Process>,
    pub open_files_limit: u64,
    /// Keep-alive connections to open before sending (at most one per user).
    pub warm_connections: usize,
}

/// What a workload reports besides its phases.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Outcome {
    pub provisioning: Provisioned,
    pub receivers: usize,
    /// Whether the server sends `ready` on a connection without a cursor.
    pub server_sends_ready: bool,
    pub phases: Vec<PhaseReport>,
    /// W2, W5: the highest step that kept p99 under the limit with nothing lost.
    pub best_rate: Option<f64>,
    /// W2, W5: why the stepping stopped.
    pub stop_reason: Option<String>,
    /// W5: the carrier connection and business number the webhooks went to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sms: Option<SmsProvisioned>,
    pub idle: Option<IdleReport>,
}

/// The connected receivers of a workload; dropping them without `stop` leaves
/// them running, so every workload calls `stop` before it returns.
struct Receivers {
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl Receivers {
    async fn stop(mut self) {
        let _ = self.stop.send(true);
        let drained = tokio::time::timeout(Duration::from_secs(10), async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            self.tasks.abort_all();
        }
    }
}

impl Context {
    /// Fills the HTTP pool before the first phase (see [`Api::warm`]); sends
    /// over the WebSocket need no pool.
    async fn warm(&self, token: &str, users: u32) {
        if self.limits.send_path == SendPath::Ws {
            return;
        }
        self.warm_pool(token, self.warm_connections.min(users as usize))
            .await;
    }

    /// Opens up to `connections` keep-alive connections (never more than
    /// sends may be in flight), shared evenly by the nodes.
    async fn warm_pool(&self, token: &str, connections: usize) {
        let connections = connections.min(self.limits.max_in_flight);
        if connections > 0 {
            let each = connections.div_ceil(self.nodes.len().max(1));
            let mut opened = 0;
            for node in &self.nodes {
                opened += node.api.warm(token, each).await;
            }
            eprintln!("opened {opened} keep-alive connections");
        }
    }

    /// Asks the server once whether it sends `ready` without a cursor, so that
    /// receivers wait for it (it marks the subscription as live) only if it comes.
    async fn probe_ready(&self, token: &str) -> Result<Option<Duration>> {
        let mut socket = ws::connect(&self.endpoint, token, None, None, ws::config(4096))
            .await
            .context("opening a first WebSocket")?;
        let ready = ws::await_ready(&mut socket, Duration::from_secs(3), |_| {})
            .await
            .is_ok();
        let _ = futures_util::SinkExt::close(&mut socket).await;
        Ok(ready.then_some(Duration::from_secs(30)))
    }

    /// The node `user` is placed on.
    fn node(&self, placement: Placement, user: u32) -> &Node {
        let index = placement.node(user, self.nodes.len());
        &self.nodes[index]
    }

    /// Connects one receiver per listed user, each to its node.
    async fn connect(
        &self,
        sessions: &[Session],
        users: &[u32],
        ready: Option<Duration>,
        placement: Placement,
    ) -> Result<Receivers> {
        let (stop, stopped) = watch::channel(false);
        let sockets: Vec<(Endpoint, Receiver)> = stream::iter(users.iter().copied())
            .map(|user| {
                let token = sessions
                    .get(user as usize)
                    .map(|s| s.token.clone())
                    .unwrap_or_default();
                let endpoint = self.node(placement, user).endpoint.clone();
                async move {
                    let mut socket = ws::connect(
                        &endpoint,
                        &token,
                        None,
                        None,
                        ws::config(ws::RECEIVER_READ_BUFFER),
                    )
                    .await
                    .with_context(|| format!("connecting user {user}"))?;
                    let cursor = match ready {
                        Some(wait) => ws::await_ready(&mut socket, wait, |_| {}).await?,
                        None => None,
                    };
                    let outbox =
                        (self.limits.send_path == SendPath::Ws).then(|| self.board.open_line(user));
                    anyhow::Ok((
                        endpoint,
                        Receiver {
                            user,
                            token,
                            socket,
                            cursor,
                            outbox,
                        },
                    ))
                }
            })
            .buffer_unordered(64)
            .try_collect()
            .await?;
        let mut tasks = JoinSet::new();
        for (endpoint, receiver) in sockets {
            tasks.spawn(receiver.run(endpoint, self.board.clone(), stopped.clone()));
        }
        // Without a `ready` frame there is no sign that subscriptions are live; give them a moment.
        if ready.is_none() {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        Ok(Receivers { stop, tasks })
    }

    /// Users in pairs, each pair in one direct chat.
    async fn pairs(&self, users: u32) -> Result<(Vec<Session>, Provisioned, Arc<Senders>)> {
        let (sessions, provisioned) = self.directory.users(&self.api, users as usize).await?;
        let pairs: Vec<(Session, i64)> = sessions
            .chunks_exact(2)
            .map(|pair| (pair[0].clone(), pair[1].extension_id))
            .collect();
        let api = &self.api;
        let conversations: Vec<i64> = stream::iter(pairs)
            .map(|(first, peer)| async move { api.direct_conversation(&first, peer).await })
            .buffered(16)
            .try_collect()
            .await?;
        let senders = Senders {
            tokens: sessions.iter().map(|s| s.token.clone()).collect(),
            conversations: conversations.iter().flat_map(|&c| [c, c]).collect(),
            apis: (0..users)
                .map(|user| self.node(Placement::Pairs, user).api.clone())
                .collect(),
        };
        Ok((sessions, provisioned, Arc::new(senders)))
    }
}

fn even_users(users: u32) -> Result<u32> {
    let users = users & !1;
    if users < 2 {
        bail!("--users must be at least 2");
    }
    Ok(users)
}

/// W1: users in pairs, a fixed aggregate rate for a fixed time.
pub async fn w1(context: &Context, users: u32, rate: f64, duration: Duration) -> Result<Outcome> {
    let users = even_users(users)?;
    let (sessions, provisioning, senders) = context.pairs(users).await?;
    let ready = context.probe_ready(&sessions[0].token).await?;
    let everyone: Vec<u32> = (0..users).collect();
    eprintln!("connecting {users} receivers");
    let receivers = context
        .connect(&sessions, &everyone, ready, Placement::Pairs)
        .await?;
    context.warm(&sessions[0].token, users).await;
    let phase = Phase {
        name: "w1".into(),
        number: 1,
        rate,
        duration,
        topology: Topology::Pairs { users },
    };
    eprintln!("w1: {rate} msg/s for {} s", duration.as_secs_f64());
    let report = traffic::run_phase(
        &context.api,
        &context.board,
        &Route::Conversations(senders),
        &phase,
        &context.limits,
        context.server.as_ref(),
    )
    .await;
    receivers.stop().await;
    Ok(Outcome {
        provisioning,
        receivers: everyone.len(),
        server_sends_ready: ready.is_some(),
        phases: vec![report],
        ..Outcome::default()
    })
}

/// The pass mark of a W2 step.
#[derive(Debug, Clone, Copy)]
pub struct StepRule {
    pub p99_limit: Duration,
}

impl StepRule {
    /// Why a step failed, or `None` when it passed.
    pub fn verdict(&self, step: &PhaseReport) -> Option<String> {
        let tally = &step.tally;
        if let Some(aborted) = &step.aborted {
            return Some(aborted.clone());
        }
        if tally.lost > 0 {
            return Some(format!("{} deliveries lost", tally.lost));
        }
        if tally.failed > 0 || tally.unanswered > 0 {
            return Some(format!("{} sends failed", tally.failed + tally.unanswered));
        }
        if tally.sent < tally.scheduled {
            return Some(format!(
                "only {} of {} sends left",
                tally.sent, tally.scheduled
            ));
        }
        let limit_us = self.p99_limit.as_micros() as u64;
        if tally.latency.p99_us >= limit_us {
            return Some(format!(
                "p99 {:.1} ms is not under {:.0} ms",
                tally.latency.p99_us as f64 / 1e3,
                limit_us as f64 / 1e3
            ));
        }
        None
    }
}

impl StepRule {
    /// Why a W5 step failed, or `None` when it passed: a W2 step's rule,
    /// and besides no recipient saw any text twice and every webhook posted
    /// a second time was answered 200 again.
    pub fn inbound_verdict(&self, step: &PhaseReport) -> Option<String> {
        if let Some(why) = self.verdict(step) {
            return Some(why);
        }
        if step.tally.duplicated > 0 {
            return Some(format!("{} deliveries duplicated", step.tally.duplicated));
        }
        let reposts = step.reposts.as_ref()?;
        (reposts.accepted < reposts.posted).then(|| {
            format!(
                "{} of {} webhooks posted again were refused",
                reposts.posted - reposts.accepted,
                reposts.posted
            )
        })
    }
}

/// W2: the W1 users, the rate stepped up until a step fails.
pub async fn w2(
    context: &Context,
    users: u32,
    steps: &[f64],
    duration: Duration,
    rule: StepRule,
    pause: Duration,
) -> Result<Outcome> {
    let users = even_users(users)?;
    let (sessions, provisioning, senders) = context.pairs(users).await?;
    let ready = context.probe_ready(&sessions[0].token).await?;
    let everyone: Vec<u32> = (0..users).collect();
    eprintln!("connecting {users} receivers");
    let receivers = context
        .connect(&sessions, &everyone, ready, Placement::Pairs)
        .await?;
    context.warm(&sessions[0].token, users).await;
    let mut outcome = Outcome {
        provisioning,
        receivers: everyone.len(),
        server_sends_ready: ready.is_some(),
        ..Outcome::default()
    };
    let route = Route::Conversations(senders);
    for (number, &rate) in steps.iter().enumerate() {
        let phase = Phase {
            name: format!("w2 {rate}/s"),
            number: 100 + number as u32,
            rate,
            duration,
            topology: Topology::Pairs { users },
        };
        eprintln!("w2: step {rate} msg/s for {} s", duration.as_secs_f64());
        let report = traffic::run_phase(
            &context.api,
            &context.board,
            &route,
            &phase,
            &context.limits,
            context.server.as_ref(),
        )
        .await;
        let verdict = rule.verdict(&report);
        outcome.phases.push(report);
        match verdict {
            None => outcome.best_rate = Some(rate),
            Some(reason) => {
                eprintln!("w2: step {rate} msg/s failed: {reason}");
                outcome.stop_reason = Some(format!("{rate} msg/s: {reason}"));
                break;
            }
        }
        tokio::time::sleep(pause).await;
    }
    if outcome.stop_reason.is_none() {
        outcome.stop_reason = Some("every step passed".into());
    }
    receivers.stop().await;
    Ok(outcome)
}

/// W3: idle connections, sharing a few users' tokens.
pub async fn w3(context: &Context, users: u32, mut options: IdleOptions) -> Result<Outcome> {
    let (sessions, provisioning) = context
        .directory
        .users(&context.api, users.max(1) as usize)
        .await?;
    let tokens: Vec<String> = sessions.iter().map(|s| s.token.clone()).collect();
    options.ready = context
        .probe_ready(&tokens[0])
        .await?
        .map(|_| Duration::from_secs(30));
    eprintln!(
        "w3: opening {} connections from {} source addresses to {} nodes",
        options.connections,
        options.sources.len(),
        context.nodes.len()
    );
    let endpoints: Vec<Endpoint> = context.nodes.iter().map(|n| n.endpoint.clone()).collect();
    let idle = idle::run(
        &endpoints,
        &tokens,
        &options,
        context.server.as_ref(),
        context.open_files_limit,
    )
    .await?;
    Ok(Outcome {
        provisioning,
        server_sends_ready: options.ready.is_some(),
        idle: Some(idle),
        ..Outcome::default()
    })
}

/// Source addresses 127.0.0.1 … 127.0.0.n for W3.
pub fn loopback_sources(count: u8) -> Vec<IpAddr> {
    (1..=count.max(1))
        .map(|n| IpAddr::V4(Ipv4Addr::new(127, 0, 0, n)))
        .collect()
}

/// W4: one group; its first member sends, every other member receives.
pub async fn w4(context: &Context, members: u32, rate: f64, duration: Duration) -> Result<Outcome> {
    if members < 2 {
        bail!("--users must be at least 2");
    }
    let (sessions, provisioning) = context
        .directory
        .users(&context.api, members as usize)
        .await?;
    let others: Vec<i64> = sessions[1..].iter().map(|s| s.extension_id).collect();
    let group = context
        .api
        .group_conversation(
            &sessions[0],
            &format!("Load group {}", context.board.run),
            &others,
        )
        .await?;
    let senders = Arc::new(Senders {
        tokens: vec![sessions[0].token.clone()],
        conversations: vec![group],
        apis: vec![context.node(Placement::RoundRobin, 0).api.clone()],
    });
    let ready = context.probe_ready(&sessions[0].token).await?;
    let everyone: Vec<u32> = (0..members).collect();
    eprintln!("connecting {members} receivers");
    let receivers = context
        .connect(&sessions, &everyone, ready, Placement::RoundRobin)
        .await?;
    context.warm(&sessions[0].token, members).await;
    let phase = Phase {
        name: "w4".into(),
        number: 4,
        rate,
        duration,
        topology: Topology::Group { members },
    };
    eprintln!(
        "w4: {rate} msg/s to {} recipients for {} s",
        members - 1,
        duration.as_secs_f64()
    );
    let report = traffic::run_phase(
        &context.api,
        &context.board,
        &Route::Conversations(senders),
        &phase,
        &context.limits,
        context.server.as_ref(),
    )
    .await;
    receivers.stop().await;
    Ok(Outcome {
        provisioning,
        receivers: everyone.len(),
        server_sends_ready: ready.is_some(),
        phases: vec![report],
        ..Outcome::default()
    })
}

/// What a refused webhook most likely means, for the stop reason.
fn refusal_hint(report: &PhaseReport, route: &Route) -> String {
    let Route::Webhooks(inbound) = route else {
        return String::new();
    };
    let errors = &report.tally.errors;
    if errors.contains_key("http 403") {
        format!(
            "; 403: the signature was refused: the server's public URL must make the webhook URL {} \
             and the connection's auth token must be --auth-token (a connection found by name keeps the token it was made with)",
            inbound.signed_url
        )
    } else if errors.contains_key("http 404") {
        format!(
            "; 404: the server knows no connection at {} or that connection does not serve {}",
            inbound.post_url, inbound.to
        )
    } else {
        String::new()
    }
}

/// W5's settings besides the shared ones.
pub struct W5 {
    /// Extensions sharing the business number, each a receiver.
    pub extensions: u32,
    /// Distinct outside numbers the texts come from.
    pub externals: usize,
    pub steps: Vec<f64>,
    pub duration: Duration,
    pub rule: StepRule,
    pub pause: Duration,
    pub carrier: CarrierSetup,
    /// Every `repost_every`-th webhook is posted a second time (0: none).
    pub repost_every: u64,
    /// Rate of the unjudged first phase, one text from each outside number.
    pub warm_up_rate: f64,
    /// Keep-alive connections to open before the first phase.
    pub connections: usize,
}

/// W5: signed inbound webhooks to one business number shared by the
/// workload's users, the rate stepped up until a step fails.
///
/// A first, unjudged phase has every outside number text once, so that the
/// steps measure texts into conversations that exist, as they mostly are.
pub async fn w5(context: &Context, settings: W5) -> Result<Outcome> {
    if settings.extensions < 1 {
        bail!("--extensions must be at least 1");
    }
    let externals =
        webhook::external_numbers(settings.externals, &settings.carrier.business_number)?;
    let (sessions, provisioning) = context
        .directory
        .users(&context.api, settings.extensions as usize)
        .await?;
    let admin = context.directory.admin(&context.api).await?;
    let sms = settings
        .carrier
        .provision(&context.api, &admin, &sessions)
        .await?;
    let post_url = format!(
        "{}/webhooks/twilio/{}/messages",
        context.api.base(),
        sms.connection_id
    );
    if post_url != sms.webhook_url {
        eprintln!(
            "webhooks go to {post_url} signed for {} (the server's public URL)",
            sms.webhook_url
        );
    }
    let inbound = Arc::new(Inbound {
        post_url,
        signed_url: sms.webhook_url.clone(),
        account_sid: settings.carrier.account_sid.clone(),
        auth_token: settings.carrier.auth_token.clone(),
        to: sms.business_number.clone(),
        externals,
        run: context.board.run,
        repost_every: settings.repost_every,
    });
    let ready = context.probe_ready(&sessions[0].token).await?;
    let everyone: Vec<u32> = (0..settings.extensions).collect();
    eprintln!("connecting {} receivers", settings.extensions);
    let receivers = context
        .connect(&sessions, &everyone, ready, Placement::RoundRobin)
        .await?;
    context
        .warm_pool(&sessions[0].token, settings.connections)
        .await;
    let mut outcome = Outcome {
        provisioning,
        receivers: everyone.len(),
        server_sends_ready: ready.is_some(),
        sms: Some(sms),
        ..Outcome::default()
    };
    let topology = Topology::Inbound {
        recipients: settings.extensions,
        externals: u32::try_from(settings.externals).unwrap_or(u32::MAX),
    };
    let route = Route::Webhooks(inbound);
    let warm_up = Phase {
        name: "w5 warm-up".into(),
        number: 500,
        rate: settings.warm_up_rate,
        duration: Duration::from_secs_f64(settings.externals as f64 / settings.warm_up_rate),
        topology,
    };
    eprintln!(
        "w5: one text from each of {} outside numbers at {}/s",
        settings.externals, settings.warm_up_rate
    );
    let report = traffic::run_phase(
        &context.api,
        &context.board,
        &route,
        &warm_up,
        &context.limits,
        context.server.as_ref(),
    )
    .await;
    let verdict = settings.rule.inbound_verdict(&report);
    let hint = refusal_hint(&report, &route);
    outcome.phases.push(report);
    if let Some(reason) = verdict.filter(|r| !r.contains("p99")) {
        // Texts that do not arrive at all will not arrive faster.
        outcome.stop_reason = Some(format!("warm-up: {reason}{hint}"));
        receivers.stop().await;
        return Ok(outcome);
    }
    tokio::time::sleep(settings.pause).await;
    for (number, &rate) in settings.steps.iter().enumerate() {
        let phase = Phase {
            name: format!("w5 {rate}/s"),
            number: 501 + number as u32,
            rate,
            duration: settings.duration,
            topology,
        };
        eprintln!(
            "w5: step {rate} webhooks/s to {} extensions for {} s",
            settings.extensions,
            settings.duration.as_secs_f64()
        );
        let report = traffic::run_phase(
            &context.api,
            &context.board,
            &route,
            &phase,
            &context.limits,
            context.server.as_ref(),
        )
        .await;
        let verdict = settings.rule.inbound_verdict(&report);
        outcome.phases.push(report);
        match verdict {
            None => outcome.best_rate = Some(rate),
            Some(reason) => {
                eprintln!("w5: step {rate} webhooks/s failed: {reason}");
                outcome.stop_reason = Some(format!("{rate} webhooks/s: {reason}"));
                break;
            }
        }
        tokio::time::sleep(settings.pause).await;
    }
    if outcome.stop_reason.is_none() {
        outcome.stop_reason = Some("every step passed".into());
    }
    receivers.stop().await;
    Ok(outcome)
}

#[cfg(test)]
mod tests;

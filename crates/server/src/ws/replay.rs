//! Catching a connection up from the store. The connection is registered
//! with the hub, and its node follows the organization's stream on the bus
//! (`Bus::track`), first, so live events queue while the replay reads; the
//! [`ReplayGate`] then lets each cursor through once, from either side.

use super::frames::{durable_frame, ready_frame, resync_frame};
use crate::app::App;
use axum::extract::ws::{Message, WebSocket};
use switchboard_domain::{Cursor, ExtensionId, OrgId, ReplayGate};

/// Events read per store query while replaying.
const REPLAY_BATCH: u32 = 500;
/// A client further behind than this reloads over REST instead of replaying.
const REPLAY_LIMIT: usize = 20_000;

/// Sends what `me` missed after `from` (nothing without a cursor), then the
/// `ready` frame; returns the gate that live events must pass. A cursor the
/// log did not hand out (forged, or from a history lost with a restore of an
/// older backup) cannot be replayed from: the client is told to `resync`
/// and continues from the newest cursor, so it never waits for events
/// beyond it that will never come.
pub(super) async fn catch_up(
    app: &App,
    me: ExtensionId,
    org: OrgId,
    from: Option<Cursor>,
    socket: &mut WebSocket,
) -> Result<ReplayGate, String> {
    let latest = app
        .store
        .latest_cursor(org)
        .await
        .map_err(|e| e.to_string())?;
    let mut gate = ReplayGate::new(from.unwrap_or(latest));
    let honoured = match from {
        Some(from) => app.store.holds(from).await.map_err(|e| e.to_string())?,
        None => true,
    };
    let from = if honoured {
        from
    } else {
        send(socket, resync_frame(latest)).await?;
        gate = ReplayGate::new(latest);
        None
    };
    if from.is_some() {
        let mut replayed = 0usize;
        loop {
            let events = app
                .store
                .events_after(me, gate.last(), REPLAY_BATCH)
                .await
                .map_err(|e| e.to_string())?;
            if events.is_empty() {
                break;
            }
            replayed += events.len();
            if replayed > REPLAY_LIMIT {
                let resume_at = gate.skip_to(latest);
                send(socket, resync_frame(resume_at)).await?;
                break;
            }
            for e in events {
                if gate.admit(e.cursor) && e.kind.reaches_clients() {
                    send(socket, durable_frame(e.kind.as_str(), e.cursor, &e.payload)).await?;
                }
            }
        }
    }
    send(socket, ready_frame(gate.last().max(latest))).await?;
    Ok(gate)
}

async fn send(socket: &mut WebSocket, frame: String) -> Result<(), String> {
    socket
        .send(Message::Text(frame.into()))
        .await
        .map_err(|e| e.to_string())
}

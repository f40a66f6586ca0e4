//! Typing indicators: one task owns the [`TypingTracker`] and publishes
//! ephemeral `typing` frames on the bus as indicators start, stop and expire.

use crate::clock::Clock;
use crate::ws::frames::typing_frame;
use std::collections::HashMap;
use std::sync::Arc;
use switchboard_bus::{Bus, Envelope, Scope};
use switchboard_domain::typing::{TypingChange, TypingTracker};
use switchboard_domain::{ConversationId, ExtensionId, OrgId};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

enum Command {
    Typing {
        org: OrgId,
        conversation: ConversationId,
        extension: ExtensionId,
        recipients: Arc<[ExtensionId]>,
    },
    Stopped {
        conversation: ConversationId,
        extension: ExtensionId,
    },
}

/// Who hears an indicator, and in which organization (whose nodes it goes
/// to).
type Audience = (OrgId, Arc<[ExtensionId]>);

/// Typing frames waiting for the task; when full, a typing frame is dropped
/// (the client repeats it), never a caller blocked.
const COMMAND_QUEUE: usize = 1024;

#[derive(Clone)]
pub struct TypingHandle {
    tx: mpsc::Sender<Command>,
}

impl TypingHandle {
    /// A typing frame arrived; announced to `recipients` (of `org`, on
    /// every node) if it starts one.
    pub fn typing(
        &self,
        org: OrgId,
        conversation: ConversationId,
        extension: ExtensionId,
        recipients: Arc<[ExtensionId]>,
    ) {
        let _ = self.tx.try_send(Command::Typing {
            org,
            conversation,
            extension,
            recipients,
        });
    }

    /// The extension sent a message: clear its indicator at once.
    pub fn stopped(&self, conversation: ConversationId, extension: ExtensionId) {
        let _ = self.tx.try_send(Command::Stopped {
            conversation,
            extension,
        });
    }
}

pub fn spawn(
    bus: Arc<dyn Bus>,
    clock: Arc<dyn Clock>,
    shutdown: CancellationToken,
    tasks: &TaskTracker,
) -> TypingHandle {
    let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
    tasks.spawn(run(bus, clock, shutdown, rx));
    TypingHandle { tx }
}

async fn run(
    bus: Arc<dyn Bus>,
    clock: Arc<dyn Clock>,
    shutdown: CancellationToken,
    mut rx: mpsc::Receiver<Command>,
) {
    let mut tracker = TypingTracker::default();
    let mut audiences: HashMap<(ConversationId, ExtensionId), Audience> = HashMap::new();
    let publish = |change: TypingChange, (org, recipients): Audience| {
        bus.publish(Envelope {
            cursor: None,
            scope: Scope::Org(org),
            recipients,
            except: Some(change.extension_id),
            frame: typing_frame(change),
            event: None,
        });
    };
    loop {
        let next = tracker.next_expiry();
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = async {
                match next {
                    Some(at) => clock.sleep_until(at).await,
                    None => std::future::pending().await,
                }
            } => {
                for change in tracker.expire(clock.now()) {
                    if let Some(r) = audiences.remove(&(change.conversation_id, change.extension_id)) {
                        publish(change, r);
                    }
                }
            }
            command = rx.recv() => {
                let Some(command) = command else { return };
                let now = clock.now();
                match command {
                    Command::Typing { org, conversation, extension, recipients } => {
                        audiences.insert((conversation, extension), (org, Arc::clone(&recipients)));
                        if let Some(change) = tracker.typing(conversation, extension, now) {
                            publish(change, (org, recipients));
                        }
                    }
                    Command::Stopped { conversation, extension } => {
                        if let Some(change) = tracker.stopped(conversation, extension, now)
                            && let Some(r) = audiences.remove(&(conversation, extension))
                        {
                            publish(change, r);
                        }
                    }
                }
            }
        }
    }
}

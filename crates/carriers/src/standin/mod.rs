//! Stand-ins for the carriers' APIs, for tests: local HTTP servers on
//! `127.0.0.1` that answer as each vendor documents (status codes and error
//! bodies included), record every request, and misbehave on demand.
//!
//! - [`TwilioStandin`]: the Messages resource with Basic auth, media URLs
//!   that want the account's credentials and redirect to a "CDN" on another
//!   port, as Twilio's do.
//! - [`TelnyxStandin`]: `/v2/messages` with a bearer key and Telnyx's
//!   `Idempotency-Key` replay: the same key and body get the first success
//!   again and create nothing; the same key with another body gets `422`.
//!
//! Each can be told to misbehave for its next requests to create a message
//! ([`Misbehaviour`]: `500`, `429` with `Retry-After`, an answer held past
//! the client's timeout, a connection cut before the answer) or to stop
//! listening altogether ([`TwilioStandin::stop_listening`]). Tests wait for
//! requests with [`TwilioStandin::wait_for_requests`] rather than sleeping,
//! and count duplicates with `messages_created`.

mod listener;
mod telnyx;
mod twilio;

pub use telnyx::TelnyxStandin;
pub use twilio::TwilioStandin;

use axum::Router;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use listener::{Switch, SwitchableListener};
use parking_lot::Mutex;
use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A request as the stand-in received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// Names in lower case, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RecordedRequest {
    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body's form fields, in order, repeated names included.
    pub fn form(&self) -> Vec<(String, String)> {
        serde_urlencoded::from_bytes(&self.body).unwrap_or_default()
    }

    /// Every value of one form field.
    pub fn form_values(&self, name: &str) -> Vec<String> {
        self.form()
            .into_iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v)
            .collect()
    }

    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// User and password of a Basic `Authorization` header.
    pub fn basic_auth(&self) -> Option<(String, String)> {
        let encoded = self.header("authorization")?.strip_prefix("Basic ")?;
        let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
        let (user, password) = decoded.split_once(':')?;
        Some((user.to_owned(), password.to_owned()))
    }

    /// The token of a Bearer `Authorization` header.
    pub fn bearer(&self) -> Option<&str> {
        self.header("authorization")?.strip_prefix("Bearer ")
    }
}

/// A text a stand-in accepted: what a real carrier would send on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedMessage {
    pub id: String,
    pub from: String,
    pub to: String,
    pub text: String,
    pub media_urls: Vec<String>,
    pub status_callback: Option<String>,
}

/// What a stand-in does instead of its normal answer to a request to
/// create a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Misbehaviour {
    /// Answer `500` with the vendor's error body; nothing is created.
    ServerError,
    /// Answer `429` with the vendor's error body and this `Retry-After`
    /// (delay-seconds or an HTTP-date); nothing is created.
    TooManyRequests { retry_after: String },
    /// Create the message, then keep the answer until
    /// [`TwilioStandin::release_held`] (or the stand-in's drop): past the
    /// client's timeout, as a carrier that is slow but did its work.
    Hold,
    /// Read the request, create nothing, and close the connection without
    /// answering.
    DropConnection,
}

/// Rules a stand-in applies to numbers, set by the test.
#[derive(Default)]
struct NumberRules {
    /// When set, only these numbers may send; others are "not owned".
    owned: Option<HashSet<String>>,
    opted_out: HashSet<String>,
    landlines: HashSet<String>,
    invalid: HashSet<String>,
}

/// The state both stand-ins share.
struct Core {
    requests: Mutex<Vec<RecordedRequest>>,
    request_count: watch::Sender<usize>,
    created: Mutex<Vec<CreatedMessage>>,
    created_count: watch::Sender<usize>,
    faults: Mutex<VecDeque<Misbehaviour>>,
    numbers: Mutex<NumberRules>,
    held: watch::Sender<usize>,
    /// Bumped to let every held answer go.
    release: watch::Sender<u64>,
    next_id: Mutex<u64>,
}

impl Core {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            requests: Mutex::new(Vec::new()),
            request_count: watch::Sender::new(0),
            created: Mutex::new(Vec::new()),
            created_count: watch::Sender::new(0),
            faults: Mutex::new(VecDeque::new()),
            numbers: Mutex::new(NumberRules::default()),
            held: watch::Sender::new(0),
            release: watch::Sender::new(0),
            next_id: Mutex::new(0),
        })
    }

    fn record(&self, request: RecordedRequest) {
        self.requests.lock().push(request);
        self.request_count.send_modify(|n| *n += 1);
    }

    fn next_fault(&self) -> Option<Misbehaviour> {
        self.faults.lock().pop_front()
    }

    fn next_id(&self) -> u64 {
        let mut id = self.next_id.lock();
        *id += 1;
        *id
    }

    fn create(&self, message: CreatedMessage) {
        self.created.lock().push(message);
        self.created_count.send_modify(|n| *n += 1);
    }

    fn is_owned(&self, number: &str) -> bool {
        self.numbers
            .lock()
            .owned
            .as_ref()
            .is_none_or(|owned| owned.contains(number))
    }

    fn is_opted_out(&self, number: &str) -> bool {
        self.numbers.lock().opted_out.contains(number)
    }

    fn is_invalid(&self, number: &str) -> bool {
        self.numbers.lock().invalid.contains(number)
    }

    fn is_landline(&self, number: &str) -> bool {
        self.numbers.lock().landlines.contains(number)
    }

    /// Waits until released; counted as held meanwhile.
    async fn hold(&self) {
        let mut release = self.release.subscribe();
        self.held.send_modify(|n| *n += 1);
        let _ = release.changed().await;
        self.held.send_modify(|n| *n -= 1);
    }
}

/// A running HTTP server with its switchable listener.
struct Server {
    addr: SocketAddr,
    switch: Arc<Switch>,
    task: JoinHandle<()>,
}

impl Server {
    async fn start(router: Router) -> std::io::Result<Self> {
        let switch = Switch::new();
        let listener = SwitchableListener::bind(Arc::clone(&switch)).await?;
        let addr = listener.addr();
        let service = router.into_make_service_with_connect_info::<listener::Connection>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, service).await;
        });
        Ok(Self { addr, switch, task })
    }

    fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The controls both stand-ins offer, written once.
macro_rules! controls {
    ($standin:ty) => {
        impl $standin {
            /// The base URL to configure the client with.
            pub fn base_url(&self) -> String {
                self.server.base_url()
            }

            /// Every request received so far, in order.
            pub fn requests(&self) -> Vec<$crate::standin::RecordedRequest> {
                self.core.requests.lock().clone()
            }

            /// Every text created so far, in order; a duplicate shows twice.
            pub fn messages_created(&self) -> Vec<$crate::standin::CreatedMessage> {
                self.core.created.lock().clone()
            }

            /// Misbehaves `times` times, for the next requests to create a
            /// message (after any misbehaviour queued before).
            pub fn misbehave(&self, what: $crate::standin::Misbehaviour, times: usize) {
                let mut faults = self.core.faults.lock();
                faults.extend(std::iter::repeat_n(what, times));
            }

            /// Forgets the misbehaviours still queued: the next requests
            /// are answered normally.
            pub fn behave(&self) {
                self.core.faults.lock().clear();
            }

            /// Only these numbers may send; any other "from" is refused as
            /// not belonging to the account.
            pub fn own_numbers(&self, numbers: &[&str]) {
                self.core.numbers.lock().owned =
                    Some(numbers.iter().map(|n| (*n).to_owned()).collect());
            }

            /// The recipient has replied STOP: texts to it are refused.
            pub fn opt_out(&self, number: &str) {
                self.core.numbers.lock().opted_out.insert(number.to_owned());
            }

            /// The recipient is a landline: texts to it are refused.
            pub fn make_landline(&self, number: &str) {
                self.core.numbers.lock().landlines.insert(number.to_owned());
            }

            /// The carrier does not know the number as a phone number at
            /// all (although it is well formed): texts to it are refused.
            pub fn make_invalid(&self, number: &str) {
                self.core.numbers.lock().invalid.insert(number.to_owned());
            }

            /// Resolves once at least `count` requests have arrived.
            pub async fn wait_for_requests(&self, count: usize) {
                let mut seen = self.core.request_count.subscribe();
                let _ = seen.wait_for(|n| *n >= count).await;
            }

            /// Resolves once at least `count` texts have been created (a
            /// request can arrive well before its text is created, or be
            /// refused).
            pub async fn wait_for_created(&self, count: usize) {
                let mut created = self.core.created_count.subscribe();
                let _ = created.wait_for(|n| *n >= count).await;
            }

            /// Resolves once at least `count` answers are being held.
            pub async fn wait_for_held(&self, count: usize) {
                let mut held = self.core.held.subscribe();
                let _ = held.wait_for(|n| *n >= count).await;
            }

            /// Sends every held answer (to clients that may be gone).
            pub fn release_held(&self) {
                self.core.release.send_modify(|g| *g += 1);
            }

            /// Closes the listening socket and every open connection: new
            /// connections are refused until [`Self::resume_listening`].
            pub async fn stop_listening(&self) {
                self.server.switch.stop().await;
            }

            /// Listens again, on the same port.
            pub async fn resume_listening(&self) {
                self.server.switch.resume().await;
            }
        }

        impl Drop for $standin {
            fn drop(&mut self) {
                self.release_held();
            }
        }
    };
}
use controls;

/// Reads a request into a record (the body in full: stand-ins are fed by
/// tests, not strangers).
async fn record(
    core: &Core,
    request: axum::extract::Request,
) -> (RecordedRequest, Option<listener::Connection>) {
    let (parts, body) = request.into_parts();
    let connection = parts
        .extensions
        .get::<axum::extract::ConnectInfo<listener::Connection>>()
        .map(|c| c.0.clone());
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .map(|b| b.to_vec())
        .unwrap_or_default();
    let recorded = RecordedRequest {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body,
    };
    core.record(recorded.clone());
    (recorded, connection)
}

/// A media item a stand-in serves.
#[derive(Clone)]
struct Media {
    bytes: Vec<u8>,
    content_type: String,
    /// Sent without `Content-Length`, in chunks, as a lying or streaming
    /// server would.
    streamed: bool,
}

fn media_response(media: &Media) -> axum::response::Response {
    use axum::response::IntoResponse;
    let header = [(axum::http::header::CONTENT_TYPE, media.content_type.clone())];
    if media.streamed {
        let chunks: Vec<Result<Vec<u8>, std::io::Error>> = media
            .bytes
            .chunks(16 * 1024)
            .map(|c| Ok(c.to_vec()))
            .collect();
        let body = axum::body::Body::from_stream(futures_util::stream::iter(chunks));
        (header, body).into_response()
    } else {
        (header, media.bytes.clone()).into_response()
    }
}

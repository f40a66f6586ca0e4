//! Requests with any credential (none, a bearer token, a session cookie with
//! or without its CSRF token), for the tests of who may do what.

use super::{Answer, Server, Ws, answer};
use serde_json::Value;
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest, http::HeaderValue};

#[derive(Clone, Copy)]
pub enum Cred<'a> {
    None,
    Bearer(&'a str),
    Cookie {
        token: &'a str,
        csrf: Option<&'a str>,
    },
}

pub enum Payload {
    Empty,
    Json(Value),
    Csv(&'static str),
    /// An image as the raw body.
    Png(&'static [u8]),
}

/// The smallest PNG: one green pixel.
pub const TINY_PNG: &[u8] = &[
    137, 80, 78, 71, 13, 10, 26, 10, 0, 0, 0, 13, 73, 72, 68, 82, 0, 0, 0, 1, 0, 0, 0, 1, 8, 2, 0,
    0, 0, 144, 119, 83, 222, 0, 0, 0, 12, 73, 68, 65, 84, 120, 156, 99, 248, 207, 192, 0, 0, 3, 1,
    1, 0, 201, 254, 146, 239, 0, 0, 0, 0, 73, 69, 78, 68, 174, 66, 96, 130,
];

/// One request to one route: a method, a concrete path and its body.
pub struct Endpoint {
    pub method: &'static str,
    pub path: String,
    pub payload: Payload,
}

impl Endpoint {
    pub fn new(method: &'static str, path: impl Into<String>, payload: Payload) -> Self {
        Self {
            method,
            path: path.into(),
            payload,
        }
    }

    pub fn name(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

impl Server {
    pub async fn request(&self, cred: Cred<'_>, ep: &Endpoint) -> Answer {
        let http = super::http();
        let method = reqwest::Method::from_bytes(ep.method.as_bytes()).expect("method");
        let mut req = http.request(method, format!("{}{}", self.base, ep.path));
        match cred {
            Cred::None => {}
            Cred::Bearer(token) => req = req.bearer_auth(token),
            Cred::Cookie { token, csrf } => {
                req = req.header("cookie", format!("sb_session={token}"));
                if let Some(csrf) = csrf {
                    req = req.header("x-csrf-token", csrf);
                }
            }
        }
        req = match &ep.payload {
            Payload::Empty => req,
            Payload::Json(v) => req.json(v),
            Payload::Csv(text) => req.header("content-type", "text/csv").body(*text),
            Payload::Png(bytes) => req.header("content-type", "image/png").body(*bytes),
        };
        answer(req.send().await.expect("request")).await
    }

    /// Tries to open the WebSocket with the given headers: the stream after
    /// `ready`, or the HTTP status and body of the refusal.
    pub async fn ws_attempt(&self, headers: &[(&str, String)]) -> Result<Ws, (u16, Value)> {
        let mut request = format!("ws://{}/api/v1/ws", self.addr())
            .into_client_request()
            .expect("ws request");
        for (name, value) in headers {
            request.headers_mut().insert(
                tungstenite::http::HeaderName::from_bytes(name.as_bytes()).expect("header name"),
                HeaderValue::from_str(value).expect("header value"),
            );
        }
        match tokio_tungstenite::connect_async(request).await {
            Ok((stream, _)) => {
                let mut ws = Ws::from_stream(stream);
                ws.next_of("ready").await;
                Ok(ws)
            }
            Err(tungstenite::Error::Http(response)) => {
                let body = response
                    .body()
                    .as_ref()
                    .and_then(|b| serde_json::from_slice(b).ok())
                    .unwrap_or(Value::Null);
                Err((response.status().as_u16(), body))
            }
            Err(e) => panic!("websocket connect failed unexpectedly: {e}"),
        }
    }
}

pub fn bearer(token: &str) -> Vec<(&'static str, String)> {
    vec![("authorization", format!("Bearer {token}"))]
}

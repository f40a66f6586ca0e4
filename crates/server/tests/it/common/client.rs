//! A signed-in API client using a bearer token, and the answers it gets.

use super::Ws;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

#[derive(Clone)]
pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
    pub token: String,
    pub id: i64,
}

pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl Client {
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Answer {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self
            .http
            .request(method, format!("{}{}", self.base, path))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        answer(req.send().await.expect("request")).await
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.call("GET", path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Answer {
        self.call("POST", path, Some(body)).await
    }

    pub async fn direct_with(&self, other: i64) -> i64 {
        let a = self
            .post(
                "/api/v1/conversations/direct",
                json!({"extension_id": other}),
            )
            .await;
        assert!(a.status == 200 || a.status == 201, "direct: {}", a.body);
        a.body["conversation"]["id"]
            .as_i64()
            .expect("conversation id")
    }

    /// Creates a group with `members` and returns its id.
    pub async fn create_group(&self, name: &str, members: &[i64]) -> i64 {
        let a = self
            .post(
                "/api/v1/conversations/group",
                json!({"name": name, "member_ids": members}),
            )
            .await;
        assert!(
            a.status == 200 || a.status == 201,
            "conversation: {}",
            a.body
        );
        a.body["conversation"]["id"]
            .as_i64()
            .expect("conversation id")
    }

    pub async fn rename(&self, conversation: i64, name: &str) -> Answer {
        self.call(
            "PATCH",
            &format!("/api/v1/conversations/{conversation}"),
            Some(json!({"name": name})),
        )
        .await
    }

    pub async fn add_participants(&self, conversation: i64, extensions: &[i64]) -> Answer {
        self.post(
            &format!("/api/v1/conversations/{conversation}/participants"),
            json!({"extension_ids": extensions}),
        )
        .await
    }

    pub async fn remove_participant(&self, conversation: i64, extension: i64) -> Answer {
        self.call(
            "DELETE",
            &format!("/api/v1/conversations/{conversation}/participants/{extension}"),
            None,
        )
        .await
    }

    pub async fn leave(&self, conversation: i64) -> Answer {
        self.call(
            "POST",
            &format!("/api/v1/conversations/{conversation}/leave"),
            None,
        )
        .await
    }

    pub async fn send(&self, conversation: i64, text: &str) -> Value {
        let a = self
            .post(
                &format!("/api/v1/conversations/{conversation}/messages"),
                json!({"text": text, "idempotency_key": uuid_like()}),
            )
            .await;
        assert_eq!(a.status, 201, "send: {}", a.body);
        a.body["message"].clone()
    }

    /// Every message of a conversation, oldest first, paging backwards.
    pub async fn whole_history(&self, conversation: i64) -> Vec<Value> {
        let mut pages: Vec<Vec<Value>> = Vec::new();
        let mut before: Option<i64> = None;
        loop {
            let path = match before {
                Some(b) => {
                    format!("/api/v1/conversations/{conversation}/messages?before={b}&limit=200")
                }
                None => format!("/api/v1/conversations/{conversation}/messages?limit=200"),
            };
            let page = self.get(&path).await;
            assert_eq!(page.status, 200, "history: {}", page.body);
            let messages = page.body["messages"].as_array().expect("messages").clone();
            assert!(messages.len() <= 200);
            assert!(
                messages
                    .windows(2)
                    .all(|w| w[0]["id"].as_i64() < w[1]["id"].as_i64()),
                "each page ascends"
            );
            let more = page.body["has_more"].as_bool().expect("has_more");
            before = messages.first().and_then(|m| m["id"].as_i64());
            pages.push(messages);
            if !more {
                break;
            }
            assert!(before.is_some(), "has_more with an empty page");
        }
        pages.into_iter().rev().flatten().collect()
    }

    /// Opens the WebSocket, resuming after `cursor` if given, and returns
    /// once the server says `ready`.
    pub async fn ws(&self, cursor: Option<&str>) -> Ws {
        let url = match cursor {
            Some(c) => format!(
                "ws://{}/api/v1/ws?cursor={c}",
                self.base.trim_start_matches("http://")
            ),
            None => format!("ws://{}/api/v1/ws", self.base.trim_start_matches("http://")),
        };
        let mut request = url.into_client_request().expect("ws request");
        request.headers_mut().insert(
            "authorization",
            HeaderValue::from_str(&format!("Bearer {}", self.token)).expect("header"),
        );
        Ws::open(request).await
    }
}

pub async fn answer(res: reqwest::Response) -> Answer {
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let text = res.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer {
        status,
        body,
        headers,
    }
}

pub fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("k-{nanos}-{}", N.fetch_add(1, Ordering::Relaxed))
}

/// Asserts the answer is the API's error shape with the given status and code.
pub fn assert_error(a: &Answer, status: u16, code: &str, what: &str) {
    assert_eq!(a.status, status, "{what}: status (body {})", a.body);
    assert_eq!(
        a.body["error"]["code"], code,
        "{what}: code (body {})",
        a.body
    );
    assert!(
        a.body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{what}: the error has a message: {}",
        a.body
    );
}

//! The REST half of the client protocol (`docs/PROTOCOL.md`): sign-in, the
//! administrator's CSV import, conversations and sends, as an API client does
//! it (bearer token, no cookies, no CSRF token).

use std::time::Duration;

use anyhow::{Context, Result, bail};
use reqwest::{Client, StatusCode, header};
use serde::Deserialize;
use serde_json::json;

/// A signed-in extension.
#[derive(Debug, Clone)]
pub struct Session {
    pub token: String,
    /// The extension's id on the server.
    pub extension_id: i64,
}

#[derive(Deserialize)]
struct SignInAnswer {
    token: String,
    extension: ExtensionBody,
}

#[derive(Deserialize)]
struct ExtensionBody {
    id: i64,
    number: String,
}

#[derive(Deserialize)]
struct ExtensionList {
    extensions: Vec<ExtensionBody>,
}

#[derive(Deserialize)]
struct ConversationBody {
    id: i64,
}

/// The server answers `{"conversation": {…}}`; a bare conversation is accepted too.
#[derive(Deserialize)]
#[serde(untagged)]
enum ConversationAnswer {
    Wrapped { conversation: ConversationBody },
    Bare(ConversationBody),
}

impl ConversationAnswer {
    fn id(&self) -> i64 {
        match self {
            ConversationAnswer::Wrapped { conversation }
            | ConversationAnswer::Bare(conversation) => conversation.id,
        }
    }
}

#[derive(Deserialize)]
struct ErrorAnswer {
    error: ErrorBody,
}

#[derive(Deserialize)]
struct ErrorBody {
    code: String,
    message: String,
}

/// A carrier connection as administrators see it.
#[derive(Debug, Clone, Deserialize)]
pub struct CarrierConnection {
    pub id: i64,
    pub kind: String,
    pub name: String,
    /// The URLs to paste into the carrier's console, under the server's public URL.
    #[serde(default)]
    pub webhook_urls: Vec<String>,
}

/// A business number as administrators see it.
#[derive(Debug, Clone, Deserialize)]
pub struct BusinessNumber {
    pub id: i64,
    /// E.164.
    pub number: String,
    pub sms_enabled: bool,
    pub connection_id: Option<i64>,
    /// The extensions that text from it.
    #[serde(default)]
    pub extension_ids: Vec<i64>,
}

#[derive(Deserialize)]
struct NumberAnswer {
    number: BusinessNumber,
}

/// How a send ended, for the ledger.
pub enum SendOutcome {
    Acked,
    /// The server refused it; retrying will not help. Holds a short reason.
    Refused(String),
    /// The request never got an answer (connection reset, timeout); a retry with
    /// the same idempotency key is safe.
    Transport(String),
}

/// One HTTP client with a keep-alive connection pool, shared by every task.
#[derive(Clone)]
pub struct Api {
    client: Client,
    base: String,
}

impl Api {
    /// `pool` is how many idle keep-alive connections to keep; it should cover
    /// the most requests in flight at once.
    pub fn new(base_url: &str, pool: usize) -> Result<Api> {
        let client = Client::builder()
            // The server is local; a proxy from the environment would only distort the figures.
            .no_proxy()
            .pool_max_idle_per_host(pool)
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .build()
            .context("building the HTTP client")?;
        Ok(Api {
            client,
            base: base_url.trim_end_matches('/').to_owned(),
        })
    }

    /// The server's base URL, without a trailing slash.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn url(&self, path: &str) -> String {
        format!("{}/api/v1{}", self.base, path)
    }

    pub async fn sign_in(
        &self,
        organization: &str,
        extension: &str,
        password: &str,
    ) -> Result<Session> {
        let response = self
            .client
            .post(self.url("/auth/sign-in"))
            .json(&json!({"organization": organization, "extension": extension, "password": password}))
            .send()
            .await
            .context("sign-in request")?;
        let answer: SignInAnswer = expect_json(response, "sign-in")
            .await
            .with_context(|| format!("signing in as {organization}/{extension}"))?;
        Ok(Session {
            token: answer.token,
            extension_id: answer.extension.id,
        })
    }

    /// Every extension number of the organization with its id (administrators only).
    pub async fn extension_numbers(&self, admin: &Session) -> Result<Vec<(String, i64)>> {
        let response = self
            .client
            .get(self.url("/admin/extensions"))
            .bearer_auth(&admin.token)
            .send()
            .await
            .context("listing extensions")?;
        let list: ExtensionList = expect_json(response, "listing extensions").await?;
        Ok(list
            .extensions
            .into_iter()
            .map(|e| (e.number, e.id))
            .collect())
    }

    /// Imports a CSV directory (all rows or none) and waits for the import
    /// job to finish; answers how many were created.
    pub async fn import_extensions(&self, admin: &Session, csv: String) -> Result<u64> {
        #[derive(Deserialize)]
        struct Started {
            job: ImportJob,
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(1800);
        // An organization runs one import at a time, whichever node started
        // it: generators importing at once take turns.
        let response = loop {
            let response = self
                .client
                .post(self.url("/admin/extensions/import"))
                .bearer_auth(&admin.token)
                .header(header::CONTENT_TYPE, "text/csv")
                .body(csv.clone())
                .send()
                .await
                .context("import request")?;
            if response.status() != StatusCode::CONFLICT || std::time::Instant::now() > deadline {
                break response;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        let mut job = expect_json::<Started>(response, "importing extensions")
            .await?
            .job;
        // Hashing every password takes a while; the job says how far it is.
        while job.state == "running" {
            if std::time::Instant::now() > deadline {
                bail!("the import job did not finish within 30 minutes");
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            let response = self
                .client
                .get(self.url(&format!("/admin/jobs/{}", job_id(&job.id))))
                .bearer_auth(&admin.token)
                .send()
                .await
                .context("import job request")?;
            job = expect_json::<Started>(response, "following the import")
                .await?
                .job;
        }
        match job.state.as_str() {
            "succeeded" => Ok(job.created),
            _ => bail!(
                "the import failed: {}{}",
                job.error.unwrap_or_default(),
                job.refused
                    .iter()
                    .take(3)
                    .map(|r| format!("; line {}: {}", r.line, r.reason))
                    .collect::<String>()
            ),
        }
    }

    pub async fn direct_conversation(&self, session: &Session, peer: i64) -> Result<i64> {
        let response = self
            .client
            .post(self.url("/conversations/direct"))
            .bearer_auth(&session.token)
            .json(&json!({"extension_id": peer}))
            .send()
            .await
            .context("direct conversation request")?;
        let conversation: ConversationAnswer =
            expect_json(response, "opening a direct chat").await?;
        Ok(conversation.id())
    }

    pub async fn group_conversation(
        &self,
        session: &Session,
        name: &str,
        members: &[i64],
    ) -> Result<i64> {
        let response = self
            .client
            .post(self.url("/conversations/group"))
            .bearer_auth(&session.token)
            .json(&json!({"name": name, "member_ids": members}))
            .send()
            .await
            .context("group conversation request")?;
        let conversation: ConversationAnswer = expect_json(response, "creating a group").await?;
        Ok(conversation.id())
    }

    /// Opens up to `connections` keep-alive connections at once (all requests in
    /// flight together, so none can reuse another's connection), leaving them
    /// idle in the pool. Real users each hold their own connection; without
    /// this the shared pool would open connections in bursts exactly when the
    /// server is slowest. Answers how many requests succeeded.
    pub async fn warm(&self, token: &str, connections: usize) -> usize {
        let requests = (0..connections).map(|_| async {
            let response = self
                .client
                .get(self.url("/me"))
                .bearer_auth(token)
                .send()
                .await
                .ok()?;
            let ok = response.status().is_success();
            response.bytes().await.ok()?;
            ok.then_some(())
        });
        futures_util::future::join_all(requests)
            .await
            .into_iter()
            .flatten()
            .count()
    }

    /// Posts one message. Never fails: the outcome says what happened.
    pub async fn send(&self, token: &str, conversation: i64, text: &str, key: &str) -> SendOutcome {
        let result = self
            .client
            .post(self.url(&format!("/conversations/{conversation}/messages")))
            .bearer_auth(token)
            .json(&json!({"text": text, "idempotency_key": key}))
            .send()
            .await;
        match result {
            Ok(response) => {
                let status = response.status();
                // Read the body to the end so the connection goes back to the pool.
                let _ = response.bytes().await;
                if status == StatusCode::CREATED || status == StatusCode::OK {
                    SendOutcome::Acked
                } else if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
                    SendOutcome::Transport(format!("http {}", status.as_u16()))
                } else {
                    SendOutcome::Refused(format!("http {}", status.as_u16()))
                }
            }
            Err(error) if error.is_timeout() => SendOutcome::Transport("timeout".into()),
            Err(error) if error.is_connect() => SendOutcome::Transport("connect".into()),
            Err(_) => SendOutcome::Transport("transport".into()),
        }
    }
    /// The carrier connections of the organization (administrators only).
    pub async fn carriers(&self, admin: &Session) -> Result<Vec<CarrierConnection>> {
        #[derive(Deserialize)]
        struct List {
            connections: Vec<CarrierConnection>,
        }
        let response = self
            .client
            .get(self.url("/admin/carriers"))
            .bearer_auth(&admin.token)
            .send()
            .await
            .context("listing carrier connections")?;
        Ok(expect_json::<List>(response, "listing carrier connections")
            .await?
            .connections)
    }

    /// Adds a Twilio connection whose webhooks are signed with `auth_token`.
    pub async fn add_twilio_connection(
        &self,
        admin: &Session,
        name: &str,
        account_sid: &str,
        auth_token: &str,
    ) -> Result<CarrierConnection> {
        #[derive(Deserialize)]
        struct Added {
            connection: CarrierConnection,
        }
        let response = self
            .client
            .post(self.url("/admin/carriers"))
            .bearer_auth(&admin.token)
            .json(&json!({"kind": "twilio", "name": name, "account_sid": account_sid, "secret": auth_token}))
            .send()
            .await
            .context("adding a carrier connection")?;
        Ok(
            expect_json::<Added>(response, "adding a carrier connection")
                .await?
                .connection,
        )
    }

    /// The business numbers of the organization (administrators only).
    pub async fn business_numbers(&self, admin: &Session) -> Result<Vec<BusinessNumber>> {
        #[derive(Deserialize)]
        struct List {
            numbers: Vec<BusinessNumber>,
        }
        let response = self
            .client
            .get(self.url("/admin/numbers"))
            .bearer_auth(&admin.token)
            .send()
            .await
            .context("listing business numbers")?;
        Ok(expect_json::<List>(response, "listing business numbers")
            .await?
            .numbers)
    }

    /// Adds a texting business number served by `connection`.
    pub async fn add_business_number(
        &self,
        admin: &Session,
        number: &str,
        connection: i64,
    ) -> Result<BusinessNumber> {
        let response = self
            .client
            .post(self.url("/admin/numbers"))
            .bearer_auth(&admin.token)
            .json(&json!({"number": number, "sms_enabled": true, "connection_id": connection}))
            .send()
            .await
            .context("adding a business number")?;
        Ok(
            expect_json::<NumberAnswer>(response, "adding a business number")
                .await?
                .number,
        )
    }

    /// Makes business number `id` text through `connection`.
    pub async fn serve_number_by(
        &self,
        admin: &Session,
        id: i64,
        connection: i64,
    ) -> Result<BusinessNumber> {
        let response = self
            .client
            .patch(self.url(&format!("/admin/numbers/{id}")))
            .bearer_auth(&admin.token)
            .json(&json!({"sms_enabled": true, "connection_id": connection}))
            .send()
            .await
            .context("updating a business number")?;
        Ok(
            expect_json::<NumberAnswer>(response, "updating a business number")
                .await?
                .number,
        )
    }

    /// Lets `extension` text from business number `id`, or takes it away.
    pub async fn assign_number(
        &self,
        admin: &Session,
        id: i64,
        extension: i64,
        assigned: bool,
    ) -> Result<()> {
        let url = self.url(&format!("/admin/numbers/{id}/extensions/{extension}"));
        let request = if assigned {
            self.client.put(url)
        } else {
            self.client.delete(url)
        };
        let response = request
            .bearer_auth(&admin.token)
            .send()
            .await
            .context("assigning a business number")?;
        expect_json::<NumberAnswer>(response, "assigning a business number").await?;
        Ok(())
    }

    /// Posts one signed carrier webhook to `url`: accepted only when the
    /// server answers 200, as a carrier takes nothing else for delivered.
    /// Never fails: the outcome says what happened.
    pub async fn post_webhook(
        &self,
        url: &str,
        fields: &[(String, String)],
        signature: &str,
    ) -> SendOutcome {
        let result = self
            .client
            .post(url)
            .header("X-Twilio-Signature", signature)
            .form(fields)
            .send()
            .await;
        match result {
            Ok(response) => {
                let status = response.status();
                // Read the body to the end so the connection goes back to the pool.
                let _ = response.bytes().await;
                if status == StatusCode::OK {
                    SendOutcome::Acked
                } else if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
                    SendOutcome::Transport(format!("http {}", status.as_u16()))
                } else {
                    SendOutcome::Refused(format!("http {}", status.as_u16()))
                }
            }
            Err(error) if error.is_timeout() => SendOutcome::Transport("timeout".into()),
            Err(error) if error.is_connect() => SendOutcome::Transport("connect".into()),
            Err(_) => SendOutcome::Transport("transport".into()),
        }
    }
}

/// Decodes a successful JSON answer, or turns the uniform error body into an error.
fn job_id(id: &serde_json::Value) -> String {
    id.as_str().map_or_else(|| id.to_string(), str::to_owned)
}

/// An import job as the API shows it.
#[derive(Deserialize)]
struct ImportJob {
    /// A number or a string, as the server chooses.
    id: serde_json::Value,
    state: String,
    #[serde(default)]
    created: u64,
    #[serde(default)]
    refused: Vec<RefusedRow>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct RefusedRow {
    line: u64,
    reason: String,
}

async fn expect_json<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
    what: &str,
) -> Result<T> {
    let status = response.status();
    let body = response
        .bytes()
        .await
        .with_context(|| format!("{what}: reading the answer"))?;
    if !status.is_success() {
        if let Ok(error) = serde_json::from_slice::<ErrorAnswer>(&body) {
            bail!(
                "{what}: {status} {}: {}",
                error.error.code,
                error.error.message
            );
        }
        bail!(
            "{what}: {status}: {}",
            String::from_utf8_lossy(&body)
                .chars()
                .take(300)
                .collect::<String>()
        );
    }
    serde_json::from_slice(&body).with_context(|| format!("{what}: unexpected answer"))
}

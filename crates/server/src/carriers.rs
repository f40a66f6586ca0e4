//! The carrier connections as the server talks to them: a REST client per
//! connection (built once, reusing its HTTP connections) and what checks
//! the connection's webhooks, both made from the stored connection and its
//! opened credentials. The simulator connection's client is the built-in
//! simulator.

use crate::secrets::Sealer;
use crate::service::carriers::{Credentials, Settings};
use crate::simulator::Simulator;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use switchboard_carriers::{Carrier, telnyx, twilio};
use switchboard_domain::{CarrierKind, ConnectionId, OrgId};
use switchboard_store::Store;

/// How a connection's webhooks are checked.
#[derive(Clone)]
pub enum WebhookCheck {
    /// HMAC-SHA1 with the account's auth token.
    Twilio { auth_token: String },
    /// Ed25519 with the key from Telnyx's portal.
    Telnyx { key: telnyx::PublicKey },
    /// The simulator calls no webhooks.
    None,
}

/// One connection, ready to use.
#[derive(Clone)]
pub struct Connection {
    pub id: ConnectionId,
    pub org: OrgId,
    pub kind: CarrierKind,
    pub client: Arc<dyn Carrier>,
    pub webhooks: WebhookCheck,
}

/// Why a connection cannot be used; the reason is for the log and, when a
/// text fails because of it, for the user.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConnectionError {
    #[error("no such carrier connection")]
    Unknown,
    #[error("the carrier connection is not usable: {0}")]
    Unusable(String),
    #[error("the database: {0}")]
    Store(#[from] switchboard_store::StoreError),
}

pub struct CarrierClients {
    store: Arc<dyn Store>,
    sealer: Sealer,
    timeout: Duration,
    simulator: Arc<Simulator>,
    built: Mutex<HashMap<ConnectionId, Connection>>,
}

impl CarrierClients {
    pub fn new(
        store: Arc<dyn Store>,
        sealer: Sealer,
        simulator: Arc<Simulator>,
        timeout: Duration,
    ) -> Self {
        Self {
            store,
            sealer,
            timeout,
            simulator,
            built: Mutex::new(HashMap::new()),
        }
    }

    /// The connection `id`, built on first use. Connections are never
    /// edited once added, so what was built stays right.
    pub async fn get(&self, id: ConnectionId) -> Result<Connection, ConnectionError> {
        if let Some(found) = self.built.lock().get(&id) {
            return Ok(found.clone());
        }
        let stored = self
            .store
            .connection(id)
            .await?
            .ok_or(ConnectionError::Unknown)?;
        let settings: Settings = serde_json::from_str(&stored.settings).unwrap_or_default();
        let credentials = Credentials::open(&self.sealer, &stored)
            .map_err(|_| ConnectionError::Unusable("its credentials cannot be opened".into()))?;
        let unusable =
            |e: switchboard_carriers::ConfigError| ConnectionError::Unusable(e.to_string());
        let (client, webhooks): (Arc<dyn Carrier>, WebhookCheck) = match stored.kind {
            CarrierKind::Twilio => {
                let sid = settings
                    .account_sid
                    .clone()
                    .ok_or_else(|| ConnectionError::Unusable("it has no account SID".into()))?;
                let mut config = match (&settings.api_key_sid, &credentials.api_key_secret) {
                    (Some(key), Some(secret)) => {
                        twilio::Config::with_api_key(sid, key.clone(), secret.clone())
                    }
                    _ => twilio::Config::with_auth_token(sid, credentials.secret.clone()),
                };
                if let Some(base) = &settings.base_url {
                    config.base_url = base.clone();
                }
                config.timeout = self.timeout;
                (
                    Arc::new(twilio::Client::new(config).map_err(unusable)?),
                    WebhookCheck::Twilio {
                        auth_token: credentials.secret.clone(),
                    },
                )
            }
            CarrierKind::Telnyx => {
                let mut config = telnyx::Config::new(credentials.secret.clone());
                if let Some(base) = &settings.base_url {
                    config.base_url = base.clone();
                }
                config.timeout = self.timeout;
                let key = settings
                    .public_key
                    .as_deref()
                    .and_then(|k| telnyx::PublicKey::parse(k).ok())
                    .ok_or_else(|| {
                        ConnectionError::Unusable("its public key is not usable".into())
                    })?;
                (
                    Arc::new(telnyx::Client::new(config).map_err(unusable)?),
                    WebhookCheck::Telnyx { key },
                )
            }
            CarrierKind::Simulator => (self.simulator.clone(), WebhookCheck::None),
        };
        let connection = Connection {
            id,
            org: stored.org_id,
            kind: stored.kind,
            client,
            webhooks,
        };
        self.built.lock().insert(id, connection.clone());
        Ok(connection)
    }
}

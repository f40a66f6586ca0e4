//! Configuration: built-in defaults, then a TOML file, then `SWITCHBOARD_*`
//! environment variables, then command-line flags, each overriding the one
//! before. The layers are merged by one `figment` overlay and extracted into
//! one typed tree, [`Config`]; a key is declared once, as a field of that tree
//! (and, when it has a flag, once more as an `Option` in [`ServeArgs`]).
//! Values are parsed and validated in one place, at start, and a bad value
//! names its key and where it was set.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;
use switchboard_store::Synchronous;

mod layers;

pub use layers::{LAYERS_HELP, ServeArgs};

/// A secret that never shows in logs or `Debug` output.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: String) -> Self {
        Self(s)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

/// The configuration the server runs with: parsed, validated, typed.
///
/// Every key is optional in every layer; [`Config::default`] holds the
/// built-in defaults. Unknown keys are refused.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address and port to listen on (port 0 picks a free one).
    #[serde(deserialize_with = "parsed")]
    pub listen: SocketAddr,
    /// Where the database (and later attachments) live.
    pub data_dir: PathBuf,
    /// The URL carriers and browsers reach this server at, e.g.
    /// `https://pbx.example.com`: the webhook URLs shown to administrators
    /// are built from it, and carriers sign the URL they call. Default
    /// `http://{listen}` (with the port actually bound).
    #[serde(deserialize_with = "optional_public_url")]
    pub public_url: Option<PublicUrl>,
    /// Create the demo organization when the database has none.
    #[serde(deserialize_with = "parsed")]
    pub demo: bool,
    /// Password of the demo extensions (random when not given).
    pub demo_password: Option<Secret>,
    /// Serve the phone simulator page (always on with `demo`).
    #[serde(deserialize_with = "parsed")]
    pub simulator: bool,
    /// How long a sign-in lasts; the key is `session_ttl_hours`.
    #[serde(rename = "session_ttl_hours", deserialize_with = "hours")]
    pub session_ttl: Duration,
    /// Mark cookies `Secure` (when the portal is served over HTTPS).
    #[serde(deserialize_with = "parsed")]
    pub secure_cookies: bool,
    /// Log filter, e.g. "info" or "switchboard=debug".
    pub log: String,
    /// `text` or `json`.
    #[serde(deserialize_with = "parsed")]
    pub log_format: LogFormat,
    /// Where the store lives: `sqlite://PATH` or `postgres://…`. Default:
    /// SQLite in `data_dir`, for one node; several nodes share PostgreSQL.
    #[serde(deserialize_with = "optional_database_url")]
    pub database_url: Option<DatabaseUrl>,
    /// How events reach the other nodes: `nats://HOST:PORT`. Default: none,
    /// in-process (one node).
    #[serde(deserialize_with = "optional_bus_url")]
    pub bus_url: Option<BusUrl>,
    /// `[database]`. Its `sqlite_synchronous` is also accepted at top level,
    /// where it was documented first (see [`LEGACY_FLAT_KEYS`]).
    pub database: DatabaseConfig,
    /// `[sms]`: how carriers are called. The carrier accounts themselves are
    /// connections in the database (`switchboard admin add-carrier`, the
    /// Admin page), their secrets sealed with the data directory's key.
    pub sms: SmsConfig,
    /// `[media]`: where images are kept, the data directory or a bucket.
    pub media: MediaConfig,
    // Sections to come, each a field of its own section type here:
    // - `push: PushConfig` for `[push.apns]` (key id, team, key as `Secret`).
    // - `sip: SipConfig` for `[sip]`.
    // Their environment variables are `SWITCHBOARD_<SECTION>__<KEY>`; a
    // section needs no flag.
}

/// `[database]`: where and how messages are stored.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// SQLite durability: `normal` (survives a crash) or `full` (survives
    /// power loss, slower).
    #[serde(deserialize_with = "synchronous")]
    pub sqlite_synchronous: Synchronous,
}

/// `database_url`: the scheme chooses the store at run time.
#[derive(Clone)]
pub enum DatabaseUrl {
    /// `sqlite://PATH`: the embedded store in that file.
    Sqlite(PathBuf),
    /// `postgres://…` (or `postgresql://…`), as libpq reads it; it may hold
    /// a password, so it is never shown.
    Postgres(Secret),
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(path) => write!(f, "sqlite://{}", path.display()),
            Self::Postgres(_) => f.write_str("postgres://<redacted>"),
        }
    }
}

impl FromStr for DatabaseUrl {
    type Err = &'static str;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const EXPECTED: &str =
            "expected sqlite://PATH or postgres://USER:PASSWORD@HOST:PORT/DATABASE";
        let s = s.trim();
        if let Some(path) = s.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(EXPECTED);
            }
            return Ok(Self::Sqlite(PathBuf::from(path)));
        }
        let rest = s
            .strip_prefix("postgres://")
            .or_else(|| s.strip_prefix("postgresql://"));
        match rest {
            Some(rest) if !rest.is_empty() => Ok(Self::Postgres(Secret(s.to_owned()))),
            _ => Err(EXPECTED),
        }
    }
}

/// `bus_url`: the NATS server (or servers, comma-separated) the nodes
/// share. It may hold credentials, so it is never shown.
#[derive(Clone)]
pub struct BusUrl(Secret);

impl BusUrl {
    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

impl fmt::Debug for BusUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("nats://<redacted>")
    }
}

impl FromStr for BusUrl {
    type Err = &'static str;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let ok = !s.is_empty()
            && s.split(',').all(|one| {
                one.trim()
                    .strip_prefix("nats://")
                    .or_else(|| one.trim().strip_prefix("tls://"))
                    .is_some_and(|rest| !rest.is_empty())
            });
        if ok {
            Ok(Self(Secret(s.to_owned())))
        } else {
            Err("expected nats://HOST:PORT (several separated by commas)")
        }
    }
}

/// A URL read without repeating it in an error: it may hold a password.
fn secret_url<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr<Err = &'static str>,
{
    let text = d.deserialize_any(ScalarText)?;
    text.parse().map(Some).map_err(serde::de::Error::custom)
}

fn optional_database_url<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DatabaseUrl>, D::Error> {
    secret_url(d)
}

fn optional_bus_url<'de, D: Deserializer<'de>>(d: D) -> Result<Option<BusUrl>, D::Error> {
    secret_url(d)
}

/// `[sms]`: calling carriers.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmsConfig {
    /// How long one request to a carrier's API may take before it is given
    /// up (and the text tried again).
    #[serde(rename = "request_timeout_ms", deserialize_with = "millis")]
    pub request_timeout: Duration,
    /// How much longer than `request_timeout` a node's claim on a text
    /// lasts: when a node dies while sending, another sends its texts
    /// (with the same idempotency key) once the claim runs out.
    #[serde(rename = "claim_margin_ms", deserialize_with = "millis")]
    pub claim_margin: Duration,
}

impl SmsConfig {
    /// How long a claim on a text holds.
    pub fn claim(&self) -> Duration {
        self.request_timeout + self.claim_margin
    }
}

impl Default for SmsConfig {
    fn default() -> Self {
        Self {
            request_timeout: switchboard_carriers::DEFAULT_TIMEOUT,
            claim_margin: Duration::from_secs(60),
        }
    }
}

/// `[media]`: where images are kept. Without `bucket`, files in the data
/// directory (`media/`), for a single node; with it, objects in that
/// S3-compatible bucket, which every node of a deployment must share.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(try_from = "MediaSection")]
pub struct MediaConfig {
    /// The bucket's name.
    pub bucket: Option<String>,
    /// The S3 API's URL, for a service other than AWS (MinIO, Ceph, …);
    /// AWS's own for the region when not given.
    pub endpoint: Option<String>,
    /// The bucket's region (`us-east-1` when not given).
    pub region: Option<String>,
    /// An access key; without one, the standard AWS variables or the
    /// machine's role give the credentials.
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<Secret>,
    /// Name the bucket in the path (`endpoint/bucket/key`) instead of the
    /// host name, as most self-hosted S3 servers need.
    pub path_style: bool,
}

impl MediaConfig {
    /// The bucket to keep images in, if one is configured.
    pub fn bucket(&self) -> Option<switchboard_media::BucketConfig> {
        let bucket = self.bucket.clone()?;
        let credentials = match (&self.access_key_id, &self.secret_access_key) {
            (Some(key), Some(secret)) => Some((key.clone(), secret.expose().to_owned())),
            _ => None,
        };
        Some(switchboard_media::BucketConfig {
            bucket,
            endpoint: self.endpoint.clone(),
            region: self
                .region
                .clone()
                .unwrap_or_else(|| DEFAULT_REGION.to_owned()),
            credentials,
            addressing: if self.path_style {
                switchboard_media::Addressing::Path
            } else {
                switchboard_media::Addressing::VirtualHosted
            },
        })
    }
}

const DEFAULT_REGION: &str = "us-east-1";

/// `[media]` as written, checked as a whole into [`MediaConfig`].
#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct MediaSection {
    #[serde(deserialize_with = "optional_bucket_name")]
    bucket: Option<String>,
    #[serde(deserialize_with = "optional_endpoint")]
    endpoint: Option<String>,
    region: Option<String>,
    access_key_id: Option<String>,
    secret_access_key: Option<Secret>,
    #[serde(deserialize_with = "parsed")]
    path_style: bool,
}

impl TryFrom<MediaSection> for MediaConfig {
    type Error = &'static str;

    fn try_from(section: MediaSection) -> Result<Self, Self::Error> {
        if section.access_key_id.is_some() != section.secret_access_key.is_some() {
            return Err("access_key_id and secret_access_key go together: give both or neither");
        }
        let bucket_settings = section.endpoint.is_some()
            || section.region.is_some()
            || section.access_key_id.is_some()
            || section.path_style;
        if section.bucket.is_none() && bucket_settings {
            return Err("bucket is missing: the other media keys describe a bucket");
        }
        if section.region.as_deref().is_some_and(str::is_empty) {
            return Err("region is empty");
        }
        Ok(Self {
            bucket: section.bucket,
            endpoint: section.endpoint,
            region: section.region,
            access_key_id: section.access_key_id,
            secret_access_key: section.secret_access_key,
            path_style: section.path_style,
        })
    }
}

/// An S3 bucket name: 3 to 63 lowercase letters, digits, dots and hyphens,
/// starting and ending with a letter or digit.
fn optional_bucket_name<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let name = String::deserialize(d)?;
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let valid = (3..=63).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
        && edge(name.chars().next())
        && edge(name.chars().last());
    if !valid {
        return Err(serde::de::Error::custom(format!(
            "expected a bucket name (3 to 63 lowercase letters, digits, dots and hyphens), got {name:?}"
        )));
    }
    Ok(Some(name))
}

/// The S3 API's URL: http or https, a host, nothing after the path.
fn optional_endpoint<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let text = String::deserialize(d)?;
    let trimmed = text.trim().trim_end_matches('/');
    let valid = trimmed.parse::<axum::http::Uri>().is_ok_and(|uri| {
        matches!(uri.scheme_str(), Some("http" | "https"))
            && uri.host().is_some_and(|h| !h.is_empty())
            && uri.query().is_none()
    }) && !trimmed.contains(['#', '?']);
    if !valid {
        return Err(serde::de::Error::custom(format!(
            "expected an http(s) URL such as https://s3.eu-west-1.amazonaws.com, got {text:?}"
        )));
    }
    Ok(Some(trimmed.to_owned()))
}

fn millis<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let ms: u64 = parsed(d)?;
    if ms == 0 || ms > 300_000 {
        return Err(serde::de::Error::custom(
            "expected milliseconds between 1 and 300000",
        ));
    }
    Ok(Duration::from_millis(ms))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl FromStr for LogFormat {
    type Err = &'static str;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            _ => Err(r#"expected "text" or "json""#),
        }
    }
}

pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(
    std::net::Ipv4Addr::LOCALHOST,
    8080,
));

/// Longest sign-in `session_ttl_hours` accepts: a year.
const MAX_SESSION_TTL_HOURS: u64 = 24 * 365;

impl Default for Config {
    /// The built-in defaults, the lowest layer.
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN,
            data_dir: PathBuf::from("./data"),
            public_url: None,
            demo: false,
            demo_password: None,
            simulator: false,
            session_ttl: Duration::from_secs(30 * 24 * 3600),
            secure_cookies: false,
            log: "info".into(),
            log_format: LogFormat::Text,
            database_url: None,
            bus_url: None,
            database: DatabaseConfig::default(),
            sms: SmsConfig::default(),
            media: MediaConfig::default(),
        }
    }
}

impl Config {
    /// Where the store lives: `database_url`, else SQLite in `data_dir`.
    pub fn database(&self) -> DatabaseUrl {
        self.database_url
            .clone()
            .unwrap_or_else(|| DatabaseUrl::Sqlite(database_path(&self.data_dir)))
    }

    /// Whether the phone simulator page is served.
    pub fn simulator_enabled(&self) -> bool {
        self.simulator || self.demo
    }

    /// The server's public URL: `public_url` when set, else the listen
    /// address.
    pub fn public_url(&self) -> PublicUrl {
        self.public_url
            .clone()
            .unwrap_or_else(|| PublicUrl::of_address(self.listen))
    }
}

/// An absolute `http` or `https` URL without query or fragment, kept
/// without a trailing slash so paths can be appended to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl(String);

impl PublicUrl {
    /// `http://` and the address.
    pub fn of_address(addr: SocketAddr) -> Self {
        Self(format!("http://{addr}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PublicUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for PublicUrl {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const EXPECTED: &str =
            "expected an http(s) URL such as https://pbx.example.com, without query or fragment";
        let trimmed = s.trim().trim_end_matches('/');
        let uri: axum::http::Uri = trimmed.parse().map_err(|_| EXPECTED)?;
        let scheme_ok = matches!(uri.scheme_str(), Some("http" | "https"));
        let host_ok = uri.host().is_some_and(|h| !h.is_empty());
        if !scheme_ok || !host_ok || uri.query().is_some() || trimmed.contains(['#', '?']) {
            return Err(EXPECTED);
        }
        Ok(Self(trimmed.to_owned()))
    }
}

fn optional_public_url<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PublicUrl>, D::Error> {
    parsed(d).map(Some)
}

pub fn database_path(data_dir: &Path) -> PathBuf {
    data_dir.join("switchboard.db")
}

/// This node's name among the nodes sharing a database, kept in its data
/// directory (made on first start): the same across restarts, so a node
/// that starts again knows the outbox claims and the jobs of its previous
/// run for its own. Nodes must not share a data directory.
pub fn node_name(data_dir: &Path) -> anyhow::Result<String> {
    let path = data_dir.join("node-name");
    match std::fs::read_to_string(&path) {
        Ok(name) if !name.trim().is_empty() => return Ok(name.trim().to_owned()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => anyhow::bail!("cannot read {}: {e}", path.display()),
    }
    let mut bytes = [0u8; 12];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no random numbers: {e}"))?;
    let name: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    std::fs::write(&path, &name)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    Ok(name)
}

/// The key that seals carrier credentials on a single node, created on
/// first use.
pub fn secret_key_path(data_dir: &Path) -> PathBuf {
    data_dir.join("secret.key")
}

/// A scalar parsed with `FromStr` from its text, whatever the layer gave:
/// a TOML boolean or number, or a string from a variable or a flag. The
/// error repeats the value.
fn parsed<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: fmt::Display,
{
    let text = d.deserialize_any(ScalarText)?;
    text.parse()
        .map_err(|e| serde::de::Error::custom(format!("{e}, got {text:?}")))
}

fn synchronous<'de, D: Deserializer<'de>>(d: D) -> Result<Synchronous, D::Error> {
    let text = d.deserialize_any(ScalarText)?;
    Synchronous::parse(&text).ok_or_else(|| {
        serde::de::Error::custom(format!(r#"expected "normal" or "full", got {text:?}"#))
    })
}

fn hours<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let hours: u64 = parsed(d)?;
    if hours == 0 || hours > MAX_SESSION_TTL_HOURS {
        return Err(serde::de::Error::custom(format!(
            "must be between 1 and {MAX_SESSION_TTL_HOURS}, got {hours}"
        )));
    }
    Ok(Duration::from_secs(hours * 3600))
}

/// Reads a string, boolean or number as its text.
struct ScalarText;

impl serde::de::Visitor<'_> for ScalarText {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, a boolean or a number")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_owned())
    }

    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<String, E> {
        Ok(v.to_string())
    }
}

//! Configuration: defaults, then a TOML file, then `SWITCHBOARD_*`
//! environment variables, then command-line flags, each overriding the one
//! before. Validated once at start; a bad value names its key.

use anyhow::{Context, bail};
use clap::Args;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use switchboard_store::Synchronous;

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

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

/// Flags of `switchboard serve`; each also reads its environment variable.
#[derive(Debug, Args, Default)]
pub struct ServeArgs {
    /// TOML configuration file.
    #[arg(long, env = "SWITCHBOARD_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address and port to listen on (port 0 picks a free one).
    #[arg(long, env = "SWITCHBOARD_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Where the database (and later attachments) live.
    #[arg(long, env = "SWITCHBOARD_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Create a demo organization with five extensions when the data
    /// directory holds none.
    #[arg(long, env = "SWITCHBOARD_DEMO", num_args = 0..=1, default_missing_value = "true")]
    pub demo: Option<bool>,
    /// Password of the demo extensions (random when not given).
    #[arg(long, env = "SWITCHBOARD_DEMO_PASSWORD", hide_env_values = true)]
    pub demo_password: Option<Secret>,
    /// SQLite durability: "normal" (survives a crash) or "full" (survives
    /// power loss, slower).
    #[arg(long, env = "SWITCHBOARD_SQLITE_SYNCHRONOUS")]
    pub sqlite_synchronous: Option<String>,
    /// How long a sign-in lasts, in hours.
    #[arg(long, env = "SWITCHBOARD_SESSION_TTL_HOURS")]
    pub session_ttl_hours: Option<u64>,
    /// Mark cookies Secure (set when the portal is served over HTTPS).
    #[arg(long, env = "SWITCHBOARD_SECURE_COOKIES", num_args = 0..=1, default_missing_value = "true")]
    pub secure_cookies: Option<bool>,
    /// Log filter, e.g. "info" or "switchboard=debug".
    #[arg(long, env = "SWITCHBOARD_LOG")]
    pub log: Option<String>,
    /// Log format: "text" or "json".
    #[arg(long, env = "SWITCHBOARD_LOG_FORMAT")]
    pub log_format: Option<String>,
}

/// The file layer: every key optional, unknown keys refused.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    demo: Option<bool>,
    demo_password: Option<Secret>,
    sqlite_synchronous: Option<String>,
    session_ttl_hours: Option<u64>,
    secure_cookies: Option<bool>,
    log: Option<String>,
    log_format: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// The validated configuration the server runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub demo: bool,
    pub demo_password: Option<Secret>,
    pub sqlite_synchronous: Synchronous,
    pub session_ttl: Duration,
    pub secure_cookies: bool,
    pub log: String,
    pub log_format: LogFormat,
}

impl Config {
    pub fn database_path(&self) -> PathBuf {
        database_path(&self.data_dir)
    }
}

pub fn database_path(data_dir: &Path) -> PathBuf {
    data_dir.join("switchboard.db")
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

impl ServeArgs {
    /// Merges the layers. Flags and environment come through clap (flags
    /// win); the file fills what neither set; defaults fill the rest.
    pub fn resolve(self) -> anyhow::Result<Config> {
        let file = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read config file {}", path.display()))?;
                toml::from_str::<FileConfig>(&text)
                    .with_context(|| format!("invalid config file {}", path.display()))?
            }
            None => FileConfig::default(),
        };
        let synchronous = self
            .sqlite_synchronous
            .or(file.sqlite_synchronous)
            .unwrap_or_else(|| "normal".into());
        let Some(sqlite_synchronous) = Synchronous::parse(&synchronous) else {
            bail!("sqlite_synchronous: expected \"normal\" or \"full\", got {synchronous:?}");
        };
        let log_format = match self
            .log_format
            .or(file.log_format)
            .unwrap_or_else(|| "text".into())
            .as_str()
        {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => bail!("log_format: expected \"text\" or \"json\", got {other:?}"),
        };
        let ttl_hours = self
            .session_ttl_hours
            .or(file.session_ttl_hours)
            .unwrap_or(24 * 30);
        if ttl_hours == 0 || ttl_hours > 24 * 365 {
            bail!("session_ttl_hours: must be between 1 and 8760, got {ttl_hours}");
        }
        let listen = match self.listen.or(file.listen) {
            Some(l) => l,
            None => DEFAULT_LISTEN.parse().context("default listen address")?,
        };
        Ok(Config {
            listen,
            data_dir: self
                .data_dir
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from("./data")),
            demo: self.demo.or(file.demo).unwrap_or(false),
            demo_password: self.demo_password.or(file.demo_password),
            sqlite_synchronous,
            session_ttl: Duration::from_secs(ttl_hours * 3600),
            secure_cookies: self.secure_cookies.or(file.secure_cookies).unwrap_or(false),
            log: self.log.or(file.log).unwrap_or_else(|| "info".into()),
            log_format,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_file_and_defaults_fill_the_rest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("switchboard.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9000\"\ndata_dir = \"/srv/sb\"\nsqlite_synchronous = \"full\"\n",
        )
        .expect("write");
        let config = ServeArgs {
            config: Some(path),
            listen: Some("127.0.0.1:7000".parse().expect("addr")),
            ..ServeArgs::default()
        }
        .resolve()
        .expect("valid");
        assert_eq!(config.listen.port(), 7000, "the flag wins over the file");
        assert_eq!(
            config.data_dir,
            PathBuf::from("/srv/sb"),
            "the file wins over the default"
        );
        assert_eq!(config.sqlite_synchronous, Synchronous::Full);
        assert_eq!(config.log, "info");
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "listn = \"x\"\n").expect("write");
        let err = ServeArgs {
            config: Some(path),
            ..ServeArgs::default()
        }
        .resolve()
        .expect_err("unknown key");
        assert!(format!("{err:#}").contains("listn"));

        let err = ServeArgs {
            sqlite_synchronous: Some("sometimes".into()),
            ..ServeArgs::default()
        }
        .resolve()
        .expect_err("bad value");
        assert!(err.to_string().contains("sqlite_synchronous"));
    }
}

//! The layers of the configuration and their merge: the `serve` flags
//! ([`ServeArgs`]), the `SWITCHBOARD_*` environment, the TOML file and the
//! defaults, overlaid with figment and extracted into [`Config`], with errors
//! that name the key and the layer that set it.

use super::*;
use anyhow::Context;
use clap::Args;
use figment::providers::{Format, Serialized, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};

/// What `switchboard serve --help` says about the other layers.
pub const LAYERS_HELP: &str = "\
Every flag can also be set by an environment variable, SWITCHBOARD_ and the
flag's name in capitals with '_' for '-' (e.g. SWITCHBOARD_DATA_DIR), or by
the same key in the --config TOML file. Keys in a section of the file use
SWITCHBOARD_<SECTION>__<KEY> (e.g. SWITCHBOARD_DATABASE__SQLITE_SYNCHRONOUS).
Flags override the environment, which overrides the file.";

/// Flags of `switchboard serve`. Each field but `config` is a key of
/// [`Config`] under the same name, and is serialized into the overlay only
/// when given; its value is parsed with the other layers' values.
#[derive(Debug, Args, Default, Serialize)]
pub struct ServeArgs {
    /// TOML configuration file.
    #[arg(long, env = "SWITCHBOARD_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Address and port to listen on (port 0 picks a free one) [default: 127.0.0.1:8080].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    /// Where the database (and later attachments) live [default: ./data].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// The URL carriers reach this server at, e.g. https://pbx.example.com;
    /// webhook URLs are built from it [default: http://{listen}].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    /// Create a demo organization with five extensions when the data
    /// directory holds none.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub demo: Option<bool>,
    /// Password of the demo extensions (random when not given).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "expose")]
    pub demo_password: Option<Secret>,
    /// Where the store lives: sqlite://PATH or postgres://USER:PASSWORD@HOST/DB
    /// [default: SQLite in the data directory].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "expose")]
    pub database_url: Option<Secret>,
    /// The NATS server the nodes share, nats://HOST:PORT [default: none,
    /// one node].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "expose")]
    pub bus_url: Option<Secret>,
    /// SQLite durability: "normal" (survives a crash) or "full" (survives
    /// power loss, slower). In the file, also `[database] sqlite_synchronous`.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sqlite_synchronous: Option<String>,
    /// How long a sign-in lasts, in hours [default: 720].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_ttl_hours: Option<String>,
    /// Mark cookies Secure (set when the portal is served over HTTPS).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secure_cookies: Option<bool>,
    /// Log filter, e.g. "info" or "switchboard=debug" [default: info].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
    /// Log format: "text" or "json" [default: text].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<String>,
}

/// Secret flags (the demo password, URLs that may hold passwords) go into
/// the overlay as their plain text; nothing else serializes a [`Secret`].
fn expose<S: Serializer>(secret: &Option<Secret>, s: S) -> Result<S::Ok, S::Error> {
    secret.as_ref().map(Secret::expose).serialize(s)
}

impl ServeArgs {
    /// Merges the layers (file, the process environment, these flags) and
    /// validates the result.
    pub fn resolve(self) -> anyhow::Result<Config> {
        let env = std::env::vars_os()
            .filter(|(name, _)| name.to_string_lossy().starts_with(ENV_PREFIX))
            .map(|(name, value)| {
                let name = name.to_string_lossy().into_owned();
                (name, value.to_string_lossy().into_owned())
            });
        self.resolve_with_env(env)
    }

    /// [`ServeArgs::resolve`] with the environment given, so tests need not
    /// touch the process's.
    fn resolve_with_env(
        self,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> anyhow::Result<Config> {
        let file = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read config file {}", path.display()))?;
                Layer::new(
                    LayerKind::File(path.display().to_string()),
                    Toml::string(&text).data(),
                )
            }
            None => Layer::new(LayerKind::File(String::new()), Ok(Map::new())),
        };
        let env = Layer::new(LayerKind::Env, Ok(Profile::Default.collect(env_dict(env))));
        let flags = Layer::new(LayerKind::Flags, Serialized::defaults(&self).data());
        Figment::new()
            .merge(file)
            .merge(env)
            .merge(flags)
            .extract::<Config>()
            .map_err(describe)
    }
}

const ENV_PREFIX: &str = "SWITCHBOARD_";

/// The `SWITCHBOARD_*` variables as a tree: `SWITCHBOARD_LOG` is `log`,
/// `SWITCHBOARD_DATABASE__SQLITE_SYNCHRONOUS` is `database.sqlite_synchronous`.
///
/// Values are kept verbatim, as strings (a password `0123` stays `0123`);
/// typed keys parse them. Top-level names that are not flags of `serve` are
/// left alone: other programs share the prefix (`SWITCHBOARD_BIN`,
/// `SWITCHBOARD_NEW_PASSWORD`) and `SWITCHBOARD_CONFIG` names the file. A
/// name with `__` is meant for a section and must be a known key.
fn env_dict(env: impl IntoIterator<Item = (String, String)>) -> Dict {
    let flags = ServeArgs::augment_args(clap::Command::new("serve"));
    let is_key = |key: &str| {
        key != "config"
            && flags
                .get_arguments()
                .any(|arg| arg.get_id().as_str() == key)
    };
    let mut dict = Dict::new();
    for (name, value) in env {
        let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let key = rest.to_ascii_lowercase().replace("__", ".");
        if key.is_empty() || key.split('.').any(str::is_empty) {
            continue;
        }
        if !key.contains('.') && !is_key(&key) {
            continue;
        }
        insert(&mut dict, &key, value);
    }
    dict
}

/// Inserts `value` at the dotted `key`, making the sections on the way.
fn insert(dict: &mut Dict, key: &str, value: String) {
    match key.split_once('.') {
        None => {
            dict.insert(key.to_owned(), Value::from(value));
        }
        Some((section, rest)) => {
            let entry = dict
                .entry(section.to_owned())
                .or_insert_with(|| Value::from(Dict::new()));
            if !matches!(entry, Value::Dict(..)) {
                // `SWITCHBOARD_X` and `SWITCHBOARD_X__Y` both set: the
                // section wins, and `x` then fails to parse, naming itself.
                *entry = Value::from(Dict::new());
            }
            if let Value::Dict(_, table) = entry {
                insert(table, rest, value);
            }
        }
    }
}

/// Keys documented at top level that live in a section of [`Config`]: each
/// layer moves them there before the layers are merged, so a flag or an
/// environment variable overrides the file whichever spelling each uses.
const LEGACY_FLAT_KEYS: &[(&str, &str)] = &[("sqlite_synchronous", "database")];

#[derive(Clone)]
enum LayerKind {
    /// The TOML file, by its path.
    File(String),
    Env,
    Flags,
}

/// One layer of the overlay, read once, with its flat keys moved into their
/// sections; its metadata names a key as that layer spells it.
struct Layer {
    kind: LayerKind,
    data: Result<Map<Profile, Dict>, figment::Error>,
    /// The flat keys this layer used, for naming them in errors.
    moved: Vec<&'static str>,
}

impl Layer {
    fn new(kind: LayerKind, data: Result<Map<Profile, Dict>, figment::Error>) -> Self {
        let mut moved = Vec::new();
        let data = match data {
            Ok(mut profiles) => profiles
                .values_mut()
                .try_for_each(|dict| move_flat_keys(&kind, dict, &mut moved))
                .map(|()| profiles)
                .map_err(figment::Error::from),
            Err(e) => Err(e),
        };
        Self { kind, data, moved }
    }
}

/// Moves this layer's [`LEGACY_FLAT_KEYS`] into their sections, noting
/// which it used; a layer may not use both spellings of one key.
fn move_flat_keys(
    kind: &LayerKind,
    dict: &mut Dict,
    moved: &mut Vec<&'static str>,
) -> Result<(), String> {
    for &(key, section) in LEGACY_FLAT_KEYS {
        let Some(value) = dict.remove(key) else {
            continue;
        };
        let table = dict
            .entry(section.to_owned())
            .or_insert_with(|| Value::from(Dict::new()));
        let Value::Dict(_, table) = table else {
            return Err(format!("{section}: expected a table ({})", kind.name()));
        };
        if table.contains_key(key) {
            return Err(format!(
                "{key}: set both at top level and in [{section}] ({}); keep one",
                kind.name()
            ));
        }
        table.insert(key.to_owned(), value);
        moved.push(key);
    }
    Ok(())
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        let moved = self.moved.clone();
        Metadata::named(self.kind.name())
            .interpolater(move |_: &Profile, path: &[&str]| written_key(&moved, path))
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        self.data.clone()
    }
}

impl LayerKind {
    const ENV: &str = "environment";
    const FLAGS: &str = "flags";

    fn name(&self) -> String {
        match self {
            Self::File(path) => format!("config file {path}"),
            Self::Env => Self::ENV.to_owned(),
            Self::Flags => Self::FLAGS.to_owned(),
        }
    }
}

/// A key as the layer spells it: `database.sqlite_synchronous`, or
/// `sqlite_synchronous` when the layer used the flat key.
fn written_key(moved: &[&str], path: &[&str]) -> String {
    if let [section, key] = path
        && moved.contains(key)
        && LEGACY_FLAT_KEYS.contains(&(*key, *section))
    {
        return (*key).to_owned();
    }
    path.join(".")
}

/// Where a key was set, for an error: the file, the variable or the flag.
fn where_set(layer: &str, key: &str) -> String {
    match layer {
        LayerKind::ENV => format!(
            "{ENV_PREFIX}{}",
            key.replace('.', "__").to_ascii_uppercase()
        ),
        LayerKind::FLAGS => format!("--{}", key.replace('_', "-")),
        file => file.to_owned(),
    }
}

/// One line per bad key: `key: what is wrong (where it was set)`.
fn describe(errors: figment::Error) -> anyhow::Error {
    use figment::error::Kind;
    let lines: Vec<String> = errors
        .into_iter()
        .map(|e| {
            let mut path: Vec<&str> = e.path.iter().map(String::as_str).collect();
            let message = match &e.kind {
                Kind::UnknownField(field, _) => {
                    if path.last() != Some(&field.as_str()) {
                        path.push(field);
                    }
                    "unknown key".to_owned()
                }
                Kind::Message(m) => m.clone(),
                other => other.to_string(),
            };
            if path.is_empty() {
                return message;
            }
            match &e.metadata {
                Some(md) => {
                    let key = md.interpolate(&e.profile.clone().unwrap_or_default(), &path);
                    format!("{key}: {message} ({})", where_set(&md.name, &key))
                }
                None => format!("{}: {message}", path.join(".")),
            }
        })
        .collect();
    anyhow::anyhow!("invalid configuration: {}", lines.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::FromArgMatches;

    fn file(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("switchboard.toml");
        std::fs::write(&path, text).expect("write");
        (dir, path)
    }

    fn env(vars: &[(&str, &str)]) -> Vec<(String, String)> {
        vars.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// `switchboard serve ARGS` as clap parses it.
    fn flags(args: &[&str]) -> ServeArgs {
        let command = ServeArgs::augment_args(clap::Command::new("serve").no_binary_name(true));
        let matches = command.try_get_matches_from(args).expect("flags parse");
        ServeArgs::from_arg_matches(&matches).expect("flags")
    }

    fn error(args: ServeArgs, vars: &[(&str, &str)]) -> String {
        let err = args.resolve_with_env(env(vars)).expect_err("invalid");
        format!("{err:#}")
    }

    #[test]
    fn defaults_fill_what_no_layer_sets() {
        let config = ServeArgs::default()
            .resolve_with_env(Vec::new())
            .expect("valid");
        assert_eq!(config.listen, "127.0.0.1:8080".parse().expect("addr"));
        assert_eq!(config.data_dir, PathBuf::from("./data"));
        assert!(!config.demo);
        assert!(config.demo_password.is_none());
        assert_eq!(config.database.sqlite_synchronous, Synchronous::Normal);
        assert_eq!(config.session_ttl, Duration::from_secs(720 * 3600));
        assert!(!config.secure_cookies);
        assert_eq!(config.log, "info");
        assert_eq!(config.log_format, LogFormat::Text);
        assert_eq!(config.public_url, None);
        assert_eq!(config.public_url().as_str(), "http://127.0.0.1:8080");
    }

    #[test]
    fn the_public_url_is_an_http_url_without_query_from_any_layer() {
        let (_dir, path) = file("public_url = \"https://pbx.example.com/\"\n");
        let args = ServeArgs {
            config: Some(path),
            ..ServeArgs::default()
        };
        let config = args.resolve_with_env(Vec::new()).expect("valid");
        assert_eq!(
            config.public_url().as_str(),
            "https://pbx.example.com",
            "the trailing slash is dropped"
        );
        let config = ServeArgs::default()
            .resolve_with_env(env(&[(
                "SWITCHBOARD_PUBLIC_URL",
                "http://10.0.0.5:8080/switchboard",
            )]))
            .expect("valid");
        assert_eq!(
            config.public_url().as_str(),
            "http://10.0.0.5:8080/switchboard"
        );
        let config = flags(&["--public-url", "https://flag.example"])
            .resolve_with_env(env(&[("SWITCHBOARD_PUBLIC_URL", "https://env.example")]))
            .expect("valid");
        assert_eq!(config.public_url().as_str(), "https://flag.example");

        for bad in [
            "pbx.example.com",
            "ftp://pbx.example.com",
            "https://pbx.example.com/?a=b",
            "https://pbx.example.com/#top",
            "https://",
            "",
        ] {
            let message = error(ServeArgs::default(), &[("SWITCHBOARD_PUBLIC_URL", bad)]);
            assert!(
                message.contains("public_url: expected an http(s) URL")
                    && message.contains("(SWITCHBOARD_PUBLIC_URL)"),
                "{bad:?}: {message}"
            );
        }
    }

    #[test]
    fn flags_override_env_which_overrides_the_file() {
        let (_dir, path) = file(
            "listen = \"127.0.0.1:9000\"\ndata_dir = \"/srv/file\"\nlog = \"debug\"\n\
             log_format = \"json\"\nsession_ttl_hours = 48\n",
        );
        let mut args = flags(&["--log", "trace"]);
        args.config = Some(path);
        let config = args
            .resolve_with_env(env(&[
                ("SWITCHBOARD_DATA_DIR", "/srv/env"),
                ("SWITCHBOARD_LOG", "warn"),
            ]))
            .expect("valid");
        assert_eq!(config.log, "trace", "the flag wins over env and file");
        assert_eq!(
            config.data_dir,
            PathBuf::from("/srv/env"),
            "env wins over the file"
        );
        assert_eq!(config.listen.port(), 9000, "the file wins over the default");
        assert_eq!(config.log_format, LogFormat::Json);
        assert_eq!(config.session_ttl, Duration::from_secs(48 * 3600));
        assert!(!config.demo, "the default fills the rest");
    }

    #[test]
    fn sqlite_synchronous_is_read_flat_or_in_its_section_by_every_layer() {
        let (_dir, path) = file("[database]\nsqlite_synchronous = \"full\"\n");
        let from_file = ServeArgs {
            config: Some(path.clone()),
            ..ServeArgs::default()
        };
        let config = from_file.resolve_with_env(Vec::new()).expect("valid");
        assert_eq!(config.database.sqlite_synchronous, Synchronous::Full);

        // A flat variable overrides the sectioned file key, and the other way.
        let args = ServeArgs {
            config: Some(path),
            ..ServeArgs::default()
        };
        let config = args
            .resolve_with_env(env(&[("SWITCHBOARD_SQLITE_SYNCHRONOUS", "normal")]))
            .expect("valid");
        assert_eq!(config.database.sqlite_synchronous, Synchronous::Normal);

        let (_dir, path) = file("sqlite_synchronous = \"normal\"\n");
        let args = ServeArgs {
            config: Some(path),
            ..ServeArgs::default()
        };
        let config = args
            .resolve_with_env(env(&[("SWITCHBOARD_DATABASE__SQLITE_SYNCHRONOUS", "full")]))
            .expect("valid");
        assert_eq!(config.database.sqlite_synchronous, Synchronous::Full);

        let config = flags(&["--sqlite-synchronous", "full"])
            .resolve_with_env(env(&[(
                "SWITCHBOARD_DATABASE__SQLITE_SYNCHRONOUS",
                "normal",
            )]))
            .expect("valid");
        assert_eq!(config.database.sqlite_synchronous, Synchronous::Full);

        let (_dir, path) =
            file("sqlite_synchronous = \"full\"\n[database]\nsqlite_synchronous = \"normal\"\n");
        let both = ServeArgs {
            config: Some(path),
            ..ServeArgs::default()
        };
        assert!(error(both, &[]).contains("sqlite_synchronous: set both"));
    }

    #[test]
    fn bare_flags_and_env_values_are_taken_as_written() {
        let config = flags(&["--demo", "--secure-cookies", "--listen", "127.0.0.1:0"])
            .resolve_with_env(env(&[
                ("SWITCHBOARD_DEMO_PASSWORD", " 0123 "),
                ("SWITCHBOARD_SESSION_TTL_HOURS", "2"),
                ("SWITCHBOARD_LOG", "info,switchboard=debug"),
            ]))
            .expect("valid");
        assert!(config.demo && config.secure_cookies);
        assert_eq!(config.listen.port(), 0);
        let password = config.demo_password.as_ref().map(Secret::expose);
        assert_eq!(password, Some(" 0123 "));
        assert_eq!(config.session_ttl, Duration::from_secs(2 * 3600));
        assert_eq!(config.log, "info,switchboard=debug");

        let config = flags(&["--demo", "false"])
            .resolve_with_env(env(&[
                ("SWITCHBOARD_DEMO", "true"),
                ("SWITCHBOARD_SECURE_COOKIES", "true"),
            ]))
            .expect("valid");
        assert!(!config.demo, "the flag's false wins over the variable");
        assert!(config.secure_cookies);
    }

    #[test]
    fn other_programs_variables_and_the_file_variable_are_not_keys() {
        let config = ServeArgs::default()
            .resolve_with_env(env(&[
                ("SWITCHBOARD_CONFIG", "/nowhere.toml"),
                ("SWITCHBOARD_BIN", "target/debug/switchboard"),
                ("SWITCHBOARD_NEW_PASSWORD", "x"),
                ("SWITCHBOARD_LOADGEN_ADMIN_PASSWORD", "y"),
                ("OTHER_LOG", "trace"),
            ]))
            .expect("ignored");
        assert_eq!(config.log, "info");
    }

    #[test]
    fn unknown_keys_are_named() {
        let (_dir, path) = file("listn = \"x\"\n");
        let args = ServeArgs {
            config: Some(path.clone()),
            ..ServeArgs::default()
        };
        let message = error(args, &[]);
        assert!(message.contains("listn: unknown key"), "{message}");
        assert!(message.contains(&path.display().to_string()), "{message}");

        let (_dir, path) = file("[database]\nurll = \"sqlite:x\"\n");
        let args = ServeArgs {
            config: Some(path),
            ..ServeArgs::default()
        };
        assert!(error(args, &[]).contains("database.urll: unknown key"));

        let message = error(ServeArgs::default(), &[("SWITCHBOARD_DATABASE__URLL", "x")]);
        assert!(
            message.contains("database.urll: unknown key (SWITCHBOARD_DATABASE__URLL)"),
            "{message}"
        );
    }

    #[test]
    fn bad_values_are_named_with_where_they_were_set() {
        let message = error(
            ServeArgs::default(),
            &[("SWITCHBOARD_SQLITE_SYNCHRONOUS", "sometimes")],
        );
        assert!(
            message.contains(
                r#"sqlite_synchronous: expected "normal" or "full", got "sometimes" (SWITCHBOARD_SQLITE_SYNCHRONOUS)"#
            ),
            "{message}"
        );
        let message = error(flags(&["--sqlite-synchronous", "sometimes"]), &[]);
        assert!(message.contains("(--sqlite-synchronous)"), "{message}");
        let message = error(
            ServeArgs::default(),
            &[("SWITCHBOARD_DATABASE__SQLITE_SYNCHRONOUS", "x")],
        );
        assert!(
            message.contains("database.sqlite_synchronous: expected"),
            "{message}"
        );

        let message = error(flags(&["--log-format", "xml"]), &[]);
        assert!(
            message.contains(r#"log_format: expected "text" or "json", got "xml" (--log-format)"#),
            "{message}"
        );
        let message = error(flags(&["--listen", "nowhere"]), &[]);
        assert!(message.contains("listen: "), "{message}");
        let message = error(ServeArgs::default(), &[("SWITCHBOARD_DEMO", "yes")]);
        assert!(message.contains("demo: "), "{message}");

        let (_dir, path) = file("session_ttl_hours = 0\n");
        let args = ServeArgs {
            config: Some(path),
            ..ServeArgs::default()
        };
        let message = error(args, &[]);
        assert!(
            message.contains("session_ttl_hours: must be between 1 and 8760, got 0"),
            "{message}"
        );

        let args = ServeArgs {
            config: Some(PathBuf::from("/nonexistent/switchboard.toml")),
            ..ServeArgs::default()
        };
        assert!(error(args, &[]).contains("cannot read config file"));
    }

    #[test]
    fn images_stay_in_the_data_directory_unless_a_bucket_is_named() {
        let config = ServeArgs::default()
            .resolve_with_env(Vec::new())
            .expect("valid");
        assert!(config.media.bucket().is_none());
    }

    #[test]
    fn the_media_bucket_is_layered_from_the_file_and_the_environment() {
        let (_dir, path) = file(
            "[media]\nbucket = \"switchboard-media\"\nendpoint = \"http://127.0.0.1:9000/\"\n\
             path_style = true\naccess_key_id = \"file-key\"\nsecret_access_key = \"file-secret\"\n",
        );
        let args = ServeArgs {
            config: Some(path.clone()),
            ..ServeArgs::default()
        };
        let bucket = args
            .resolve_with_env(Vec::new())
            .expect("valid")
            .media
            .bucket()
            .expect("a bucket");
        assert_eq!(bucket.bucket, "switchboard-media");
        assert_eq!(bucket.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(bucket.region, "us-east-1", "the default region");
        assert_eq!(bucket.addressing, switchboard_media::Addressing::Path);
        assert_eq!(
            bucket.credentials,
            Some(("file-key".to_owned(), "file-secret".to_owned()))
        );

        let args = ServeArgs {
            config: Some(path),
            ..ServeArgs::default()
        };
        let config = args
            .resolve_with_env(env(&[
                ("SWITCHBOARD_MEDIA__BUCKET", "from-env"),
                ("SWITCHBOARD_MEDIA__REGION", "eu-west-3"),
                ("SWITCHBOARD_MEDIA__PATH_STYLE", "false"),
                ("SWITCHBOARD_MEDIA__SECRET_ACCESS_KEY", "env-secret"),
            ]))
            .expect("valid");
        let bucket = config.media.bucket().expect("a bucket");
        assert_eq!(bucket.bucket, "from-env", "the environment wins");
        assert_eq!(bucket.region, "eu-west-3");
        assert_eq!(
            bucket.addressing,
            switchboard_media::Addressing::VirtualHosted
        );
        assert_eq!(
            bucket.credentials,
            Some(("file-key".to_owned(), "env-secret".to_owned()))
        );
        let debug = format!("{config:?} {bucket:?}");
        assert!(!debug.contains("env-secret"), "{debug}");
        assert!(!debug.contains("file-secret"), "{debug}");

        // Without a key pair, the machine's own credentials are used.
        let config = ServeArgs::default()
            .resolve_with_env(env(&[("SWITCHBOARD_MEDIA__BUCKET", "on-aws")]))
            .expect("valid");
        let bucket = config.media.bucket().expect("a bucket");
        assert_eq!(bucket.credentials, None);
        assert_eq!(bucket.endpoint, None);
    }

    #[test]
    fn an_outbox_claim_lasts_the_request_timeout_and_its_margin() {
        let config = ServeArgs::default()
            .resolve_with_env(Vec::new())
            .expect("valid");
        assert_eq!(
            config.sms.claim(),
            switchboard_carriers::DEFAULT_TIMEOUT + Duration::from_secs(60)
        );
        let (_dir, path) = file("[sms]\nrequest_timeout_ms = 2000\nclaim_margin_ms = 500\n");
        let args = ServeArgs {
            config: Some(path),
            ..ServeArgs::default()
        };
        let config = args.resolve_with_env(Vec::new()).expect("valid");
        assert_eq!(config.sms.claim(), Duration::from_millis(2500));
        for bad in ["0", "300001", "soon"] {
            let message = error(
                ServeArgs::default(),
                &[("SWITCHBOARD_SMS__CLAIM_MARGIN_MS", bad)],
            );
            assert!(
                message.contains("sms.claim_margin_ms")
                    && message.contains("SWITCHBOARD_SMS__CLAIM_MARGIN_MS"),
                "{bad:?}: {message}"
            );
        }
    }

    #[test]
    fn bad_media_settings_are_named() {
        for (name, value, expected) in [
            (
                "BUCKET",
                "Upper_Case",
                "media.bucket: expected a bucket name",
            ),
            ("BUCKET", "ab", "media.bucket: expected a bucket name"),
            ("BUCKET", "-leading", "media.bucket: expected a bucket name"),
            (
                "ENDPOINT",
                "s3.example.com",
                "media.endpoint: expected an http(s) URL",
            ),
            (
                "ENDPOINT",
                "ftp://s3.example.com",
                "media.endpoint: expected an http(s) URL",
            ),
            ("PATH_STYLE", "yes", "media.path_style: "),
        ] {
            let variable = format!("SWITCHBOARD_MEDIA__{name}");
            let message = error(
                ServeArgs::default(),
                &[
                    ("SWITCHBOARD_MEDIA__BUCKET", "fine"),
                    (variable.as_str(), value),
                ],
            );
            assert!(
                message.contains(expected) && message.contains(&variable),
                "{name}={value:?}: {message}"
            );
        }
        let message = error(
            ServeArgs::default(),
            &[
                ("SWITCHBOARD_MEDIA__BUCKET", "fine"),
                ("SWITCHBOARD_MEDIA__ACCESS_KEY_ID", "key"),
            ],
        );
        assert!(
            message.contains("access_key_id and secret_access_key go together"),
            "{message}"
        );
        let message = error(
            ServeArgs::default(),
            &[("SWITCHBOARD_MEDIA__ENDPOINT", "http://127.0.0.1:9000")],
        );
        assert!(message.contains("bucket is missing"), "{message}");
        let message = error(ServeArgs::default(), &[("SWITCHBOARD_MEDIA__BUCKIT", "x")]);
        assert!(
            message.contains("media.buckit: unknown key (SWITCHBOARD_MEDIA__BUCKIT)"),
            "{message}"
        );
    }

    #[test]
    fn debug_output_redacts_the_demo_password() {
        let config = flags(&["--demo-password", "hunter2-demo"])
            .resolve_with_env(Vec::new())
            .expect("valid");
        assert_eq!(
            config.demo_password.as_ref().map(Secret::expose),
            Some("hunter2-demo")
        );
        let debug = format!("{config:?}");
        assert!(!debug.contains("hunter2-demo"), "{debug}");
        assert!(debug.contains("<redacted>"), "{debug}");
    }
}

//! The real `switchboard` binary, started on a loopback port with a
//! temporary data directory and stopped when the test ends; or, for time
//! rules, the same server started in-process with a clock the test drives.
//!
//! The store is SQLite in the data directory, or, when
//! `SWITCHBOARD_TEST_BACKEND=postgres`, a fresh database of its own on the
//! PostgreSQL server `SWITCHBOARD_TEST_POSTGRES` names (made once per data
//! directory, so a restarted server finds its data again).

use super::{Answer, Client, PASSWORD, answer};
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use switchboard::clock::{Clock, ManualClock, SystemClock};
use switchboard::config::{Config, Secret};

pub struct Server {
    /// The server process; `None` when it runs in-process.
    child: Option<Child>,
    /// The server's clock, when it runs in-process.
    pub clock: Option<Arc<ManualClock>>,
    pub base: String,
    pub data_dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
}

impl Server {
    /// A fresh server with the demo organization (extensions 101–105, ids 1–5).
    pub fn start() -> Self {
        let temp = tempfile::tempdir().expect("temp dir");
        let data_dir = temp.path().to_path_buf();
        let mut s = Self::start_on(&data_dir, "127.0.0.1:0");
        s._temp = Some(temp);
        s
    }

    /// Starts the server on an existing data directory (for restarts).
    pub fn start_on(data_dir: &Path, listen: &str) -> Self {
        Self::start_with(data_dir, listen, &[])
    }

    /// [`Server::start_on`] with more `SWITCHBOARD_*` variables, e.g. for
    /// a section of the configuration.
    pub fn start_with(data_dir: &Path, listen: &str, env: &[(String, String)]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args([
                "serve",
                "--listen",
                listen,
                "--demo",
                "--demo-password",
                PASSWORD,
            ])
            .arg("--data-dir")
            .arg(data_dir)
            .args(database_url_args(data_dir))
            .env("SWITCHBOARD_LOG", "warn")
            .envs(env.iter().map(|(name, value)| (name, value)))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start switchboard");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let base = loop {
            let line = lines
                .next()
                .expect("server exited before listening")
                .expect("read stdout");
            if let Some(url) = line.strip_prefix("listening on ") {
                break url.trim().to_owned();
            }
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Self {
            child: Some(child),
            clock: None,
            base,
            data_dir: data_dir.to_path_buf(),
            _temp: None,
        }
    }

    /// A fresh server with the demo organization, running in this process
    /// on a [`ManualClock`] that starts at the current time.
    pub async fn in_process() -> Self {
        Self::in_process_with(|_| {}).await
    }

    /// [`Server::in_process`] with some settings changed by `configure`.
    pub async fn in_process_with(configure: impl FnOnce(&mut Config)) -> Self {
        let temp = tempfile::tempdir().expect("temp dir");
        let clock = Arc::new(ManualClock::new(SystemClock.now()));
        let mut config = Config {
            listen: "127.0.0.1:0".parse().expect("address"),
            data_dir: temp.path().to_path_buf(),
            demo: true,
            demo_password: Some(Secret::new(PASSWORD.to_owned())),
            database_url: database_url(temp.path()).map(|url| url.parse().expect("a database URL")),
            ..Config::default()
        };
        configure(&mut config);
        let running = switchboard::start(config, clock.clone())
            .await
            .expect("start the server in-process");
        Self {
            child: None,
            clock: Some(clock),
            base: format!("http://{}", running.addr),
            data_dir: temp.path().to_path_buf(),
            _temp: Some(temp),
        }
    }

    /// The clock of an in-process server.
    pub fn clock(&self) -> &ManualClock {
        self.clock.as_deref().expect("an in-process server")
    }

    fn child(&mut self) -> &mut Child {
        self.child.as_mut().expect("a server process")
    }

    pub fn addr(&self) -> String {
        self.base.trim_start_matches("http://").to_owned()
    }

    pub async fn sign_in(&self, extension: &str) -> Client {
        self.sign_in_to("demo", extension, PASSWORD).await
    }

    pub async fn sign_in_to(&self, org: &str, extension: &str, password: &str) -> Client {
        let signed = self.sign_in_answer(org, extension, password).await;
        assert_eq!(signed.status, 200, "sign-in of {org}/{extension} failed");
        Client {
            http: super::http(),
            base: self.base.clone(),
            token: signed.body["token"].as_str().expect("token").to_owned(),
            id: signed.body["extension"]["id"].as_i64().expect("id"),
        }
    }

    /// Signs in and returns the whole answer (token, CSRF token, headers),
    /// whatever it is.
    pub async fn sign_in_answer(&self, org: &str, extension: &str, password: &str) -> Answer {
        let res = super::http()
            .post(format!("{}/api/v1/auth/sign-in", self.base))
            .json(&json!({"organization": org, "extension": extension, "password": password}))
            .send()
            .await
            .expect("sign-in request");
        answer(res).await
    }

    /// Runs `switchboard admin …` against this server's data directory.
    pub fn admin(&self, args: &[&str]) -> String {
        let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .arg("admin")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(database_url_args(&self.data_dir))
            .args(args)
            .output()
            .expect("run admin");
        assert!(
            out.status.success(),
            "admin {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn kill(&mut self) {
        let child = self.child();
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Waits for the server process to exit.
    pub fn wait(&mut self) -> std::process::ExitStatus {
        self.child().wait().expect("wait for the server")
    }

    /// Sends SIGTERM and returns at once; the caller watches the shutdown
    /// and waits for the exit.
    pub fn sigterm(&self) {
        let pid = self
            .child
            .as_ref()
            .expect("a server process")
            .id()
            .to_string();
        let status = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill -TERM");
        assert!(status.success());
    }
}

/// Whether the servers of this run store in PostgreSQL.
pub fn on_postgres() -> bool {
    std::env::var("SWITCHBOARD_TEST_BACKEND").is_ok_and(|b| b == "postgres")
}

/// The database of the server on `data_dir`: `None` for SQLite in the data
/// directory; on PostgreSQL a database made for it on first use, its URL
/// kept in the data directory.
pub fn database_url(data_dir: &Path) -> Option<String> {
    // A data directory that names its database keeps it, whatever the
    // backend of the run (the nodes of a cluster are on PostgreSQL always).
    let kept = data_dir.join("test-database-url");
    if let Ok(url) = std::fs::read_to_string(&kept) {
        return Some(url);
    }
    if !on_postgres() {
        return None;
    }
    let server = std::env::var("SWITCHBOARD_TEST_POSTGRES").expect(
        "SWITCHBOARD_TEST_BACKEND=postgres needs SWITCHBOARD_TEST_POSTGRES, the server's URL \
         (scripts/services start DIR prints it)",
    );
    let url = fresh_database(&server);
    std::fs::create_dir_all(data_dir).expect("data directory");
    std::fs::write(&kept, &url).expect("keep the database URL");
    Some(url)
}

/// Makes a new, empty database on the PostgreSQL server `server` (a URL
/// naming any database of it) and returns its URL.
pub fn fresh_database(server: &str) -> String {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("random numbers");
    let name = format!("it_{:016x}", u64::from_le_bytes(bytes));
    let made = Command::new("psql")
        .arg(server)
        .args(["-q", "-v", "ON_ERROR_STOP=1", "-c"])
        .arg(format!("CREATE DATABASE {name}"))
        .status()
        .expect("run psql (the PostgreSQL client)");
    assert!(made.success(), "cannot create the test database {name}");
    let (base, _) = server
        .rsplit_once('/')
        .expect("a URL that names a database");
    format!("{base}/{name}")
}

/// After a data directory was copied to `dir` with its server stopped: on
/// PostgreSQL, the copy gets a copy of the database too (a backup and its
/// restore); on SQLite the file was copied already.
pub fn copy_database(dir: &Path) {
    let kept = dir.join("test-database-url");
    let Ok(url) = std::fs::read_to_string(&kept) else {
        return;
    };
    let (base, source) = url.rsplit_once('/').expect("a URL that names a database");
    let copy = format!("{source}_copy");
    let made = Command::new("psql")
        .arg(&url)
        .args(["-q", "-v", "ON_ERROR_STOP=1", "-c"])
        .arg(format!("CREATE DATABASE {copy} TEMPLATE {source}"))
        .status()
        .expect("run psql (the PostgreSQL client)");
    assert!(made.success(), "cannot copy the test database {source}");
    std::fs::write(&kept, format!("{base}/{copy}")).expect("keep the copy's URL");
}

fn database_url_args(data_dir: &Path) -> Vec<String> {
    database_url(data_dir)
        .map(|url| vec!["--database-url".to_owned(), url])
        .unwrap_or_default()
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

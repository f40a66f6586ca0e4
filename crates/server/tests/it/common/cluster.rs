//! Several nodes of one deployment: real server processes, each with a
//! data directory of its own (so a name of its own) but the same
//! `secret.key`, on one fresh PostgreSQL database and one nats-server the
//! test starts on a free loopback port.
//!
//! These need PostgreSQL whatever `SWITCHBOARD_TEST_BACKEND` says, and fail
//! when `SWITCHBOARD_TEST_POSTGRES` is unset; the nats-server binary is
//! `SWITCHBOARD_TEST_NATS_SERVER` (default `/usr/sbin/nats-server`), and a
//! test that cannot start it fails.

use super::server::fresh_database;
use super::{PATIENCE, Server};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

/// A nats-server of the test's own, on a loopback port that stays the same
/// across [`NatsServer::stop`] and [`NatsServer::restart`].
pub struct NatsServer {
    port: u16,
    child: Option<Child>,
}

impl NatsServer {
    pub fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let mut server = Self { port, child: None };
        server.restart();
        server
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again) on its port; returns once its log says it
    /// accepts clients.
    pub fn restart(&mut self) {
        let binary = std::env::var("SWITCHBOARD_TEST_NATS_SERVER")
            .unwrap_or_else(|_| "/usr/sbin/nats-server".to_owned());
        let mut child = Command::new(&binary)
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start nats-server at {binary} ({e}); install it (Debian: nats-server) \
                     or set SWITCHBOARD_TEST_NATS_SERVER to its path"
                )
            });
        let stderr = child.stderr.take().expect("piped stderr");
        let (ready, is_ready) = mpsc::channel();
        // Reads the whole log, so that the server never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("Server is ready") {
                    let _ = ready.send(());
                }
            }
        });
        self.child = Some(child);
        assert!(
            is_ready.recv_timeout(PATIENCE).is_ok(),
            "nats-server at {binary} did not become ready on port {}",
            self.port
        );
    }

    /// Kills the server; nodes lose the bus until [`NatsServer::restart`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `n` nodes on one database and one NATS server.
pub struct Cluster {
    /// Dropped first: the processes stop before their directories go.
    nodes: Vec<Server>,
    pub nats: NatsServer,
    _dirs: Vec<tempfile::TempDir>,
}

impl Cluster {
    pub fn start(n: usize) -> Self {
        Self::start_with(n, &[])
    }

    /// [`Cluster::start`] with more `SWITCHBOARD_*` variables for every
    /// node. The first node creates the demo organization (extensions
    /// 101–105) and the secret key the others get a copy of.
    pub fn start_with(n: usize, env: &[(&str, &str)]) -> Self {
        let postgres = std::env::var("SWITCHBOARD_TEST_POSTGRES").unwrap_or_else(|_| {
            panic!(
                "the tests of several nodes need PostgreSQL: set SWITCHBOARD_TEST_POSTGRES to \
                 the server's URL (scripts/services start DIR prints it)"
            )
        });
        let database = fresh_database(&postgres);
        let nats = NatsServer::start();
        let mut env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        env.push(("SWITCHBOARD_BUS_URL".to_owned(), nats.url()));
        let mut nodes: Vec<Server> = Vec::with_capacity(n);
        let mut dirs = Vec::with_capacity(n);
        for _ in 0..n {
            let dir = tempfile::tempdir().expect("temp dir");
            std::fs::write(dir.path().join("test-database-url"), &database)
                .expect("keep the database URL");
            if let Some(first) = nodes.first() {
                std::fs::copy(
                    first.data_dir.join("secret.key"),
                    dir.path().join("secret.key"),
                )
                .expect("copy the secret key");
            }
            nodes.push(Server::start_with(dir.path(), "127.0.0.1:0", &env));
            dirs.push(dir);
        }
        Self {
            nodes,
            nats,
            _dirs: dirs,
        }
    }

    /// Node `i`, counted from 0.
    pub fn node(&self, i: usize) -> &Server {
        &self.nodes[i]
    }

    /// Kills node `i` with SIGKILL: no shutdown, no goodbye to its clients.
    pub fn kill(&mut self, i: usize) {
        self.nodes[i].kill();
    }
}

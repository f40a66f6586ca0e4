//! A local S3 server for tests: moto's `moto_server`, started on a free
//! loopback port and stopped when dropped.
//!
//! The executable is `SWITCHBOARD_TEST_MOTO` when set (`scripts/test` sets
//! it to the one in its Python virtual environment), else `moto_server` on
//! the `PATH`. A test that needs it and finds none fails, naming both: a
//! missing service is a failure, never a skipped test.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

use crate::{Addressing, BucketConfig};

/// The variable naming the `moto_server` executable.
pub const EXECUTABLE_VARIABLE: &str = "SWITCHBOARD_TEST_MOTO";

/// A running `moto_server`.
pub struct Moto {
    child: Child,
    endpoint: String,
}

impl Moto {
    /// Starts `moto_server` on a free port of 127.0.0.1 and waits until it
    /// listens. Panics, saying how to get it, when it cannot be started.
    pub fn start() -> Moto {
        let executable =
            std::env::var(EXECUTABLE_VARIABLE).unwrap_or_else(|_| "moto_server".to_owned());
        let mut child = Command::new(&executable)
            .args(["-H", "127.0.0.1", "-p", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| {
                panic!(
                    "cannot start the S3 test server {executable:?} ({error}): install moto[server] \
                     from PyPI (scripts/test does, in its virtual environment) and put moto_server \
                     on the PATH or name it in {EXECUTABLE_VARIABLE}"
                )
            });
        let Some(stderr) = child.stderr.take() else {
            panic!("moto_server's standard error was not captured");
        };
        // Werkzeug announces the port it bound on standard error, then logs
        // every request there.
        let mut lines = BufReader::new(stderr).lines();
        let mut seen = Vec::new();
        let endpoint = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(at) = line.find("Running on http://") {
                        let url = line[at + "Running on ".len()..].trim().to_owned();
                        break url;
                    }
                    seen.push(line);
                }
                Some(Err(_)) | None => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "{executable:?} exited before listening:\n{}",
                        seen.join("\n")
                    );
                }
            }
        };
        // Keep reading so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Moto { child, endpoint }
    }

    /// The server's URL, `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Creates the bucket `name` and returns the settings to reach it (path
    /// addressing, any key: moto checks no signatures).
    pub fn bucket(&self, name: &str) -> BucketConfig {
        let address = self.endpoint.trim_start_matches("http://");
        let mut stream = TcpStream::connect(address)
            .unwrap_or_else(|error| panic!("cannot reach moto at {address}: {error}"));
        let request = format!(
            "PUT /{name} HTTP/1.1\r\nHost: {address}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        let mut answer = String::new();
        let sent = stream
            .write_all(request.as_bytes())
            .and_then(|()| stream.read_to_string(&mut answer));
        if let Err(error) = sent {
            panic!("cannot create the bucket {name}: {error}");
        }
        assert!(
            answer.split_whitespace().nth(1) == Some("200"),
            "moto refused to create the bucket {name}: {answer}"
        );
        BucketConfig {
            bucket: name.to_owned(),
            endpoint: Some(self.endpoint.clone()),
            region: "us-east-1".to_owned(),
            credentials: Some(("testing".to_owned(), "testing".to_owned())),
            addressing: Addressing::Path,
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

//! A TCP listener a test can switch off and on (connections are then
//! refused, as by a carrier that is down), whose connections a handler can
//! cut without answering.

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use parking_lot::Mutex;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Lets one connection be cut from outside its task.
#[derive(Default)]
pub(crate) struct KillSwitch {
    killed: AtomicBool,
    reader: Mutex<Option<Waker>>,
}

impl KillSwitch {
    fn kill(&self) {
        self.killed.store(true, Ordering::SeqCst);
        if let Some(waker) = self.reader.lock().take() {
            waker.wake();
        }
    }

    fn is_killed(&self) -> bool {
        self.killed.load(Ordering::SeqCst)
    }
}

/// The connection a request came in on, as a handler sees it.
#[derive(Clone)]
pub(crate) struct Connection(Arc<KillSwitch>);

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Connection")
    }
}

impl Connection {
    /// Closes the connection: the answer being written is lost.
    pub(crate) fn cut(&self) {
        self.0.kill();
    }
}

impl Connected<IncomingStream<'_, SwitchableListener>> for Connection {
    fn connect_info(stream: IncomingStream<'_, SwitchableListener>) -> Self {
        stream.remote_addr().clone()
    }
}

/// Whether the stand-in listens, as asked and as done.
pub(crate) struct Switch {
    wanted: watch::Sender<bool>,
    actual: watch::Sender<bool>,
    connections: Mutex<Vec<Weak<KillSwitch>>>,
}

impl Switch {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            wanted: watch::Sender::new(true),
            actual: watch::Sender::new(true),
            connections: Mutex::new(Vec::new()),
        })
    }

    /// Closes the listening socket and every open connection; returns once
    /// new connections are refused.
    pub(crate) async fn stop(&self) {
        self.wanted.send_replace(false);
        let mut actual = self.actual.subscribe();
        let _ = actual.wait_for(|listening| !*listening).await;
    }

    /// Listens again on the same port; returns once connections are taken.
    pub(crate) async fn resume(&self) {
        self.wanted.send_replace(true);
        let mut actual = self.actual.subscribe();
        let _ = actual.wait_for(|listening| *listening).await;
    }

    fn cut_all(&self) {
        let mut connections = self.connections.lock();
        for switch in connections.drain(..) {
            if let Some(switch) = switch.upgrade() {
                switch.kill();
            }
        }
    }
}

pub(crate) struct SwitchableListener {
    addr: SocketAddr,
    socket: Option<TcpListener>,
    switch: Arc<Switch>,
    wanted: watch::Receiver<bool>,
}

impl SwitchableListener {
    pub(crate) async fn bind(switch: Arc<Switch>) -> io::Result<Self> {
        let socket = TcpListener::bind(("127.0.0.1", 0)).await?;
        Ok(Self {
            addr: socket.local_addr()?,
            socket: Some(socket),
            wanted: switch.wanted.subscribe(),
            switch,
        })
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Listener for SwitchableListener {
    type Io = Stream;
    type Addr = Connection;

    async fn accept(&mut self) -> (Stream, Connection) {
        loop {
            let Some(socket) = &self.socket else {
                let _ = self.wanted.wait_for(|listening| *listening).await;
                match TcpListener::bind(self.addr).await {
                    Ok(socket) => {
                        self.socket = Some(socket);
                        self.switch.actual.send_replace(true);
                    }
                    // The port is still held by closing sockets: a moment
                    // later it is free again.
                    Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
                }
                continue;
            };
            tokio::select! {
                accepted = socket.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    let switch = Arc::new(KillSwitch::default());
                    self.switch.connections.lock().push(Arc::downgrade(&switch));
                    let connection = Connection(Arc::clone(&switch));
                    return (Stream { inner: stream, switch }, connection);
                }
                _ = self.wanted.wait_for(|listening| !*listening) => {
                    self.socket = None;
                    self.switch.cut_all();
                    self.switch.actual.send_replace(false);
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Connection> {
        Ok(Connection(Arc::new(KillSwitch::default())))
    }
}

/// A TCP stream that fails once its connection is cut.
pub(crate) struct Stream {
    inner: TcpStream,
    switch: Arc<KillSwitch>,
}

impl AsyncRead for Stream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        *self.switch.reader.lock() = Some(cx.waker().clone());
        if self.switch.is_killed() {
            return Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.switch.is_killed() {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.switch.is_killed() {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

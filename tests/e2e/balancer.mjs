// A small round-robin load balancer for the two-node browser tests: each
// HTTP request and each WebSocket upgrade goes to the next node in turn, so
// one browser page talks to both nodes (signs in on one, loads its lists
// from the other, holds its WebSocket on either) as it would behind any
// load balancer without session affinity. Paths listed in `pinned` always
// go to the first node.

import http from 'node:http';
import net from 'node:net';

// Headers that describe one hop's connection, not the request: each side of
// the balancer sets its own.
const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization',
  'te', 'trailer', 'transfer-encoding', 'upgrade',
]);

function endToEnd(headers) {
  const named = new Set(String(headers.connection || '').split(',').map((h) => h.trim().toLowerCase()));
  const kept = {};
  for (const [name, value] of Object.entries(headers)) {
    if (!HOP_BY_HOP.has(name) && !named.has(name)) kept[name] = value;
  }
  return kept;
}

/**
 * Listens on 127.0.0.1:`port` (0: any free port). `setBackends(urls)`
 * names the nodes; `sent` counts what went to each, by URL, so that a test
 * run can show the load was spread.
 */
export async function startBalancer({ port = 0, pinned = [] } = {}) {
  let backends = [];
  let next = 0;
  const agents = new Map();
  const sockets = new Set();
  const sent = new Map();

  const pick = (url) => {
    if (!backends.length) return null;
    const path = new URL(url, 'http://x').pathname;
    const backend = pinned.some((prefix) => path === prefix || path.startsWith(`${prefix}/`))
      ? backends[0]
      : backends[next++ % backends.length];
    sent.set(backend.href, (sent.get(backend.href) || 0) + 1);
    return backend;
  };
  const agentFor = (backend) => {
    if (!agents.has(backend.href)) agents.set(backend.href, new http.Agent({ keepAlive: true }));
    return agents.get(backend.href);
  };
  const track = (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  };

  const server = http.createServer((req, res) => {
    const backend = pick(req.url);
    if (!backend) { res.writeHead(503); res.end(); return; }
    // Host stays the balancer's: the nodes compare a WebSocket's Origin
    // with it, and build no URL from it.
    const upstream = http.request({
      host: backend.hostname, port: backend.port, method: req.method, path: req.url,
      headers: endToEnd(req.headers), agent: agentFor(backend),
    }, (answer) => {
      res.writeHead(answer.statusCode, endToEnd(answer.headers));
      // Server-Sent Events must reach the page before the first event.
      res.flushHeaders();
      answer.pipe(res);
      answer.on('error', () => res.destroy());
    });
    upstream.on('error', () => {
      if (!res.headersSent) { res.writeHead(502); res.end(); } else res.destroy();
    });
    // A page that goes away (or a node that stops) ends the other side too.
    res.on('close', () => { if (!res.writableFinished) upstream.destroy(); });
    req.pipe(upstream);
  });
  server.on('connection', track);

  server.on('upgrade', (req, socket, head) => {
    const backend = pick(req.url);
    if (!backend) { socket.destroy(); return; }
    const upstream = net.connect(Number(backend.port), backend.hostname, () => {
      const lines = [`${req.method} ${req.url} HTTP/1.1`];
      for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
      upstream.write(`${lines.join('\r\n')}\r\n\r\n`);
      if (head?.length) upstream.write(head);
      upstream.pipe(socket);
      socket.pipe(upstream);
    });
    track(upstream);
    upstream.on('error', () => socket.destroy());
    socket.on('error', () => upstream.destroy());
    upstream.on('close', () => socket.destroy());
    socket.on('close', () => upstream.destroy());
  });

  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    sent,
    setBackends(urls) {
      backends = urls.map((u) => new URL(u));
      for (const agent of agents.values()) agent.destroy();
      agents.clear();
    },
    close: () => new Promise((resolve) => {
      for (const socket of sockets) socket.destroy();
      for (const agent of agents.values()) agent.destroy();
      server.close(() => resolve());
    }),
  };
}

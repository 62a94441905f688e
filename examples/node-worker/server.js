'use strict';
// A drain-safe single-request worker in Node.js, built-in modules only.
// It keeps the contract in docs/worker-contract.md; fastrollout.worker is the Python twin.
//
//   WORKER_VERSION, POD_NAME       what responses and metrics report (POD_NAME falls back to the hostname)
//   PORT, METRICS_PORT, HOST       worker port (default 8080), probe/metrics port (9090), bind address
//   WORKER_DRAIN_DELAY_SECONDS     keep accepting this long after SIGTERM (default 0: preStop covers it)
//   WORKER_DRAIN_DEADLINE_SECONDS  exit 124 if draining takes longer (default: FASTROLLOUT_DRAIN_SECONDS,
//                                  which the operator injects from the pod's grace period, else 590)
//   WORKER_HEADER_TIMEOUT_SECONDS  request line and headers must arrive within this (default 10)
//   WORKER_BODY_TIMEOUT_SECONDS    the body within this after them (default 60)
//   WORKER_CRASH_ON_START=1        exit 1 at once (failed-rollout tests)
const http = require('node:http');
const net = require('node:net');
const os = require('node:os');
const { setTimeout: sleep } = require('node:timers/promises');

const env = process.env;
const VERSION = env.WORKER_VERSION || 'dev';
const POD = env.POD_NAME || os.hostname();
const HOST = env.HOST || undefined; // undefined: all addresses, IPv4 and IPv6
const DRAIN_DELAY_MS = 1000 * Number(env.WORKER_DRAIN_DELAY_SECONDS || 0);
const DRAIN_DEADLINE_MS = 1000 * Number(env.WORKER_DRAIN_DEADLINE_SECONDS || env.FASTROLLOUT_DRAIN_SECONDS || 590);
const HEADER_TIMEOUT_MS = 1000 * Number(env.WORKER_HEADER_TIMEOUT_SECONDS || 10);
const BODY_TIMEOUT_MS = 1000 * Number(env.WORKER_BODY_TIMEOUT_SECONDS || 60);
const MAX_BODY = 64 * 1024 * 1024;
const EXIT_DEADLINE = 124;
const log = (msg) => console.error(`${new Date().toISOString()} ${msg}`);

if (process.argv.includes('--help') || process.argv.includes('-h')) {
  console.log('usage: node server.js\n\nA drain-safe single-request worker; configured by the environment variables at the top of this file.');
  process.exit(0);
}

if (env.WORKER_CRASH_ON_START === '1') {
  log('WORKER_CRASH_ON_START=1: exiting 1 on purpose');
  process.exit(1);
}

// The application's work. It must be asynchronous: a blocked event loop would also block the
// probe server below, and the kubelet would see a healthy, busy pod as dead.
async function handle(target) {
  let url;
  try {
    url = new URL(target, 'http://worker');
  } catch {
    return json(400, { error: 'malformed request target' });
  }
  const { pathname, searchParams: query } = url;
  if (pathname !== '/') return json(404, { error: 'not found', version: VERSION, pod: POD });
  const seconds = Number(query.get('sleep') ?? '0');
  if (!(seconds >= 0 && seconds <= 3600)) return json(400, { error: 'sleep must be 0..3600' });
  const started = Date.now() / 1000;
  if (seconds > 0) await sleep(seconds * 1000); // a 0 ms timer still costs a turn of at least 1 ms
  return json(200, { version: VERSION, pod: POD, sleep: seconds, started, finished: Date.now() / 1000 });
}

function json(status, payload) {
  return { status, type: 'application/json', body: JSON.stringify(payload) + '\n' };
}

// One request at a time. Node accepts connections whenever its event loop gets to them, so the
// waiting line lives here rather than in the kernel: requests wait, they are never refused or reset.
const queue = [];
let busy = false;
let draining = false;
const handled = new Map();

function serveNext() {
  // A client that left while queued gets no work done for it: skip to the next.
  while (queue.length > 0 && queue[0].req.socket.destroyed) queue.shift();
  if (busy || queue.length === 0) return;
  busy = true;
  const { req, res } = queue.shift();
  handle(req.url)
    .catch((err) => {
      log(`handler failed: ${err.stack}`);
      return { status: 500, type: 'text/plain', body: 'internal error\n' };
    })
    .then(({ status, type, body }) => {
      // Connection: close on every response: kube-proxy balances connections, so a kept-alive
      // connection would keep feeding a draining pod; one request per connection avoids that.
      res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body), Connection: 'close' });
      // Count before sending, so a client that has its answer already finds it in /metrics.
      handled.set(status, (handled.get(status) || 0) + 1);
      res.end(body);
      busy = false;
      serveNext();
    });
}

// Malformed and slow clients (docs/worker-contract.md, rule 8). Node's parser (llhttp) answers a
// malformed request 400 (431 for oversized headers) and closes; headersTimeout and requestTimeout
// answer 408 and close a client that has not sent its headers, or its whole request, in time. Their
// check runs every connectionsCheckingInterval, so a trickling client is cut within a second of its
// deadline. A request waits in the queue only once complete, so no slow client holds the slot.
const worker = http.createServer(
  {
    headersTimeout: HEADER_TIMEOUT_MS,
    requestTimeout: HEADER_TIMEOUT_MS + BODY_TIMEOUT_MS,
    connectionsCheckingInterval: Math.min(1000, HEADER_TIMEOUT_MS / 4),
  },
  (req, res) => {
    // One request per connection: a pipelined request after the first is never served, since the
    // connection closes after the first response (as in the Python worker).
    if (req.socket.fastrolloutSeen) return req.resume();
    req.socket.fastrolloutSeen = true;
    if (Number(req.headers['content-length'] || 0) > MAX_BODY) return refuse(res, 413, 'body too large');
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > MAX_BODY && !res.headersSent) refuse(res, 413, 'body too large');
    });
    req.resume(); // read (and drop) any body now, so a queued request is complete and never times out
    req.on('end', () => {
      if (res.headersSent) return;
      queue.push({ req, res });
      serveNext();
    });
  },
);
// Answer a client that half-closes after its request instead of dropping it (Python does the same).
worker.httpAllowHalfOpen = true;

function refuse(res, status, text) {
  res.writeHead(status, { 'Content-Type': 'text/plain', 'Content-Length': text.length + 1, Connection: 'close' });
  handled.set(status, (handled.get(status) || 0) + 1);
  res.end(text + '\n', () => res.socket && res.socket.destroy());
}

function escape(value) {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function metrics() {
  const p = 'fastrollout_worker';
  const lines = [
    `# HELP ${p}_requests_in_flight Requests being served now (at most 1).`,
    `# TYPE ${p}_requests_in_flight gauge`,
    `${p}_requests_in_flight ${busy ? 1 : 0}`,
    `# HELP ${p}_requests_total Responses sent, by HTTP status code.`,
    `# TYPE ${p}_requests_total counter`,
    ...[...handled].sort().map(([code, n]) => `${p}_requests_total{code="${code}"} ${n}`),
    `# HELP ${p}_version_info Always 1; labels name the worker's version and pod.`,
    `# TYPE ${p}_version_info gauge`,
    `${p}_version_info{version="${escape(VERSION)}",pod="${escape(POD)}"} 1`,
    `# HELP ${p}_draining 1 once a termination signal arrived.`,
    `# TYPE ${p}_draining gauge`,
    `${p}_draining ${draining ? 1 : 0}`,
    `# HELP ${p}_ready 1 while /readyz answers 200.`,
    `# TYPE ${p}_ready gauge`,
    `${p}_ready ${draining ? 0 : 1}`,
  ];
  return lines.join('\n') + '\n';
}

// Probes and scrapes on their own port, never queued behind the one request in flight.
const admin = http.createServer({ headersTimeout: 5000, requestTimeout: 10000, connectionsCheckingInterval: 1000 }, (req, res) => {
  const path = new URL(req.url, 'http://admin').pathname;
  const [status, type, body] =
    path === '/readyz' ? [draining ? 503 : 200, 'text/plain', draining ? 'draining\n' : 'ready\n']
    : path === '/livez' ? [200, 'text/plain', 'alive\n'] // stays 200 while draining
    : path === '/metrics' ? [200, 'text/plain; version=0.0.4; charset=utf-8', metrics()]
    : [404, 'text/plain', 'try /readyz, /livez or /metrics\n'];
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
});

function drain(signal) {
  if (draining) return;
  draining = true; // /readyz answers 503 from now on
  log(`${signal}: not ready; stop accepting in ${DRAIN_DELAY_MS / 1000}s`);
  setTimeout(() => {
    log(`drain deadline passed with work unfinished: exiting ${EXIT_DEADLINE}`);
    process.exit(EXIT_DEADLINE);
  }, DRAIN_DEADLINE_MS).unref();
  setTimeout(stopAccepting, DRAIN_DELAY_MS);
}

// Stop accepting only once the kernel's accept queue is empty: closing the listener resets every
// connection still queued there, and those are clients that reached us before we stopped. Node
// takes queued connections a few per event-loop turn, so wait for a quiet spell with no new one.
const QUIET_MS = 50;
let accepted = 0;
worker.on('connection', () => accepted++);

function stopAccepting() {
  const seen = accepted;
  setTimeout(() => (accepted === seen ? closeListener() : stopAccepting()), QUIET_MS);
}

function closeListener() {
  // net.Server's close, not http.Server's: since Node 19 the latter also destroys connections
  // that have not sent their request yet, and those are clients that reached us in good faith.
  net.Server.prototype.close.call(worker, () => {
    log('drained: exiting 0');
    process.exit(0);
  });
}

process.on('SIGTERM', drain);
process.on('SIGINT', drain);

worker.listen(Number(env.PORT ?? 8080), HOST, () => {
  admin.listen(Number(env.METRICS_PORT ?? 9090), HOST, () => {
    log(`worker listening port=${worker.address().port} metrics_port=${admin.address().port} version=${VERSION} pod=${POD}`);
  });
});

// The baseline of `tickwire load --target baseline`: a bare `ws` relay and echo server, to run the `connections`,
// `pairs` and `fanin` scenarios against in the same run as a Tickwire server, so that the ratio of the two isolates
// what the Tickwire server does for the protocol (authentication, validation, the durable store and its fsyncs,
// windows, acknowledgements, receipts). It is plain `ws` with the gateway's socket settings (no compression, the
// same maxPayload, subprotocol tickwire.v1 selected) and no protocol work at all:
//   - a connection is the session: no registration, no hello. `GET /v1/ws?name=<name>` registers the socket under
//     <name> (the load tool's userId) until it closes; a later connection with the same name replaces it.
//   - a text message is parsed as JSON only to read three fields: `to`, `id` and `type`.
//       `to` present: the message's bytes go unchanged to the socket registered under `to`; when it carries an `id`,
//                     the sender gets {"type":"send_ok","id":…} at once, or {"type":"error","id":…,"code":
//                     "NOT_CONNECTED"} when nobody is registered under `to` (a relay stores nothing).
//       `type` "ping" with an `id`: answered {"type":"pong","id":…}.
//       anything else (and binary messages): echoed back to the sender.
//   - WebSocket control pings are answered by `ws` itself (RFC 6455); nothing ever times out.
// The load tool's bare framing (load/peer.ts) sends the very `deliver` frame the recipient is to read, plus `to` and
// `id`, so that the client runs the same code for acknowledgements, deliveries and accounting as against Tickwire;
// receipts travel back the same way, from the recipient's peer.
//
// `tickwire load --baseline-server [--port N] [--host H]` runs it as its own process; it prints
// "bare ws relay serving on http://HOST:PORT (pid N)" when ready and stops on SIGTERM or SIGINT. GET /healthz
// answers 200. It authenticates nobody: it binds to loopback unless --allow-remote is given.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { UsageError } from '../bin/command.ts';
import { defaultLimits, WS_PATH, WS_SUBPROTOCOL } from '../spec/index.ts';
import { isLoopbackHost } from './addresses.ts';

/** The query parameter that names a connection. */
export const NAME_PARAM = 'name';
/** The scenarios that run against the relay: those that need no queue, no HTTP API and no registration. */
export const BASELINE_SCENARIOS: readonly string[] = ['connections', 'pairs', 'fanin'];

export interface BaselineServer {
  url: string;
  /** Connections registered under a name right now. */
  readonly named: number;
  close(): Promise<void>;
}

function textOf(data: RawData): string {
  return Buffer.isBuffer(data) ? data.toString('utf8') : Array.isArray(data) ? Buffer.concat(data).toString('utf8') : Buffer.from(data).toString('utf8');
}

/** Starts the relay in this process on host:port (port 0: any free port). */
export function startBaselineServer(options: { host?: string; port?: number } = {}): Promise<BaselineServer> {
  const host = options.host ?? '127.0.0.1';
  const named = new Map<string, WebSocket>();
  /** Every open socket, named or not, to end them on close() (the server keeps no client list: clientTracking). */
  const open = new Set<WebSocket>();
  const server: Server = createServer((req, res) => {
    if (req.url === '/healthz') res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok","server":"bare ws relay"}');
    else res.writeHead(404).end();
  });
  const wss = new WebSocketServer({
    server,
    path: WS_PATH,
    maxPayload: defaultLimits().maxFrameBytes,
    perMessageDeflate: false,
    clientTracking: false,
    handleProtocols: (protocols) => (protocols.has(WS_SUBPROTOCOL) ? WS_SUBPROTOCOL : false),
  });
  // `ws` matches `path` against the URL without its query string, so /v1/ws?name=… reaches this handler.
  wss.on('connection', (socket, request) => {
    const name = new URL(request.url ?? '/', 'http://relay').searchParams.get(NAME_PARAM) ?? undefined;
    if (name) named.set(name, socket);
    open.add(socket);
    socket.on('message', (data, isBinary) => {
      if (isBinary) return void socket.send(data, { binary: true });
      let frame: { to?: unknown; id?: unknown; type?: unknown };
      try {
        frame = JSON.parse(textOf(data)) as typeof frame;
      } catch {
        return void socket.send(data, { binary: false });
      }
      if (frame === null || typeof frame !== 'object') return void socket.send(data, { binary: false });
      const id = typeof frame.id === 'string' ? frame.id : undefined;
      if (typeof frame.to === 'string') {
        const target = named.get(frame.to);
        const delivered = target !== undefined && target.readyState === target.OPEN;
        if (delivered) target.send(data, { binary: false });
        if (id !== undefined) socket.send(delivered ? `{"type":"send_ok","id":${JSON.stringify(id)}}` : `{"type":"error","id":${JSON.stringify(id)},"code":"NOT_CONNECTED","message":"nobody is connected under that name; the relay stores nothing"}`);
        return;
      }
      if (frame.type === 'ping' && id !== undefined) return void socket.send(`{"type":"pong","id":${JSON.stringify(id)}}`);
      socket.send(data, { binary: false });
    });
    socket.on('close', () => {
      open.delete(socket);
      if (name !== undefined && named.get(name) === socket) named.delete(name);
    });
    socket.on('error', () => socket.terminate());
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      const { port } = server.address() as AddressInfo;
      resolve({
        url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
        get named() {
          return named.size;
        },
        close: () =>
          new Promise<void>((done) => {
            for (const socket of open) socket.terminate();
            wss.close();
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}

/** The body of `tickwire load --baseline-server`: resolves with the exit code once stopped by a signal. */
export async function runBaselineServer(args: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({ args, strict: true, options: { port: { type: 'string' }, host: { type: 'string' }, 'allow-remote': { type: 'boolean' } } }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const port = values.port ?? '0';
  if (!/^[0-9]+$/.test(port) || Number(port) > 65_535) throw new UsageError(`--port needs an integer in 0..65535 (got '${port}')`);
  const host = values.host ?? '127.0.0.1';
  if (!isLoopbackHost(host) && !values['allow-remote']) throw new UsageError(`${host} is not a loopback address; the relay authenticates nobody, so binding it elsewhere needs --allow-remote`);
  const server = await startBaselineServer({ host, port: Number(port) });
  console.log(`bare ws relay serving on ${server.url} (pid ${process.pid})`);
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  await server.close();
  return 0;
}

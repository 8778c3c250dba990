// A tiny, deliberately wrong Tickwire server for testing the conformance suite's failure path: it registers users,
// authenticates any hello, answers send with send_ok carrying the wrong messageId, and answers /healthz with 500.
// It lives in the test, outside the project's reference code, so the wall of test/walls.test.ts is untouched.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import { defaultLimits } from '../../spec/index.ts';

export interface FakeServer {
  url: string;
  close(): Promise<void>;
}

export async function startFakeServer(): Promise<FakeServer> {
  let users = 0;
  const http: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => {
      const json = (status: number, value: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
        res.end(JSON.stringify(value));
      };
      if (req.method === 'POST' && req.url === '/v1/accounts') {
        const parsed = JSON.parse(body) as { username: string };
        json(201, { userId: `fake${++users}`, username: parsed.username, deviceId: 1 });
      } else if (req.url === '/healthz') {
        json(500, { error: { code: 'INTERNAL_ERROR', message: 'deliberately unhealthy' } });
      } else {
        json(404, { error: { code: 'NOT_FOUND', message: 'no route' } });
      }
    });
  });
  const wss = new WebSocketServer({ noServer: true, handleProtocols: () => 'tickwire.v1' });
  http.on('upgrade', (req, socket, head) => wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req)));
  let sessions = 0;
  wss.on('connection', (ws) => {
    ws.on('message', (data) => {
      const frame = JSON.parse(data.toString()) as { type: string; id?: string; userId?: string; deviceId?: number; messageId?: string };
      if (frame.type === 'hello') {
        ws.send(JSON.stringify({ type: 'welcome', id: frame.id, sessionId: `s${++sessions}`, userId: frame.userId, deviceId: frame.deviceId, serverTime: Date.now(), limits: defaultLimits() }));
        ws.send(JSON.stringify({ type: 'queue_empty', lastSeq: 0 }));
      } else if (frame.type === 'send') {
        ws.send(JSON.stringify({ type: 'send_ok', id: frame.id, messageId: 'wrong-message-id', serverTime: Date.now(), duplicate: false }));
      }
      // Everything else, ping included, goes unanswered.
    });
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const { port } = http.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      for (const client of wss.clients) client.terminate();
      wss.close();
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}

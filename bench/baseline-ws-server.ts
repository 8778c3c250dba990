// The baseline of the server benchmark: a bare `ws` echo server with the same WebSocket settings as the Tickwire
// gateway (no compression, no client tracking, the same maxPayload, subprotocol tickwire.v1 selected) and nothing
// else: no authentication, no store, no JSON. Each text message goes straight back to its sender. Run as a child
// process by bench/server.ts; prints "baseline ws serving on http://127.0.0.1:PORT" when ready; SIGTERM stops it.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';

/** Same as the reference default of maxFrameBytes, so both servers refuse the same messages. */
const MAX_PAYLOAD = 262_144;
const SUBPROTOCOL = 'tickwire.v1';

const server = createServer((_req, res) => {
  res.writeHead(404).end();
});
const wss = new WebSocketServer({
  server,
  path: '/v1/ws',
  maxPayload: MAX_PAYLOAD,
  perMessageDeflate: false,
  clientTracking: false,
  handleProtocols: (protocols) => (protocols.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
});
wss.on('connection', (socket) => {
  socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary }));
  socket.on('error', () => socket.terminate());
});

server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  console.log(`baseline ws serving on http://127.0.0.1:${port}`);
});

const stop = () => {
  server.close();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

// Raw garbage below the frames: mutated and torn WebSocket opening handshakes (`handshake`), and bytes that are not
// HTTP at all, slow writers that send one byte at a time, and connections that never read (`tcp`).
import type { FuzzInput, Step } from '../input.ts';
import type { Rng } from '../random.ts';

/** The header lines of a standard upgrade request, editable before they are joined. */
function upgradeLines(key: string): Array<[string, string]> {
  return [
    ['Upgrade', 'websocket'],
    ['Connection', 'Upgrade'],
    ['Sec-WebSocket-Key', key],
    ['Sec-WebSocket-Version', '13'],
    ['Sec-WebSocket-Protocol', 'tickwire.v1'],
  ];
}

function requestText(method: string, target: string, version: string, headers: Array<[string, string]>): string {
  return `${method} ${target} ${version}\r\nHost: @{host}\r\n${headers.map(([n, v]) => `${n}: ${v}`).join('\r\n')}\r\n\r\n`;
}

const b64 = (text: string | Buffer) => (typeof text === 'string' ? Buffer.from(text, 'utf8') : text).toString('base64');

/** `handshake`: one mutated, torn or slow opening handshake on a raw TCP connection. */
export function handshakeInput(rng: Rng): FuzzInput {
  const key = rng.bytes(16).toString('base64');
  let method = 'GET';
  let target = '/v1/ws';
  let version = 'HTTP/1.1';
  const headers = upgradeLines(key);
  const names: string[] = [];
  const edit = rng.weighted<() => void>([
    [3, () => {
      const i = rng.int(0, headers.length - 1);
      names.push(`without ${headers[i]![0]}`);
      headers.splice(i, 1);
    }],
    [3, () => {
      const value = rng.pick(['', 'tickwire.v2', 'TICKWIRE.V1', 'x, tickwire.v1', 'tickwire.v1, tickwire.v1', 'tickwire.v1 ', 'tickwire', 'chat', ',,,']);
      headers[4] = ['Sec-WebSocket-Protocol', value];
      names.push(`subprotocol ${JSON.stringify(value)}`);
    }],
    [2, () => {
      const value = rng.pick(['8', '12', '14', '13, 8', '', 'x', '013']);
      headers[3] = ['Sec-WebSocket-Version', value];
      names.push(`version ${JSON.stringify(value)}`);
    }],
    [2, () => {
      const value = rng.pick(['', 'short', key.slice(0, -2), `${key}A`, Buffer.alloc(15).toString('base64'), Buffer.alloc(17).toString('base64'), '!!!!!!!!!!!!!!!!!!!!!!==']);
      headers[2] = ['Sec-WebSocket-Key', value];
      names.push(`key ${JSON.stringify(value)}`);
    }],
    [1, () => {
      headers[0] = ['Upgrade', rng.pick(['WebSocket', 'h2c', 'websocket, h2c', ''])];
      names.push(`Upgrade ${headers[0]![1]}`);
    }],
    [1, () => {
      headers[1] = ['Connection', rng.pick(['keep-alive, Upgrade', 'keep-alive', 'close', 'upgrade'])];
      names.push(`Connection ${headers[1]![1]}`);
    }],
    [2, () => {
      method = rng.pick(['POST', 'PUT', 'DELETE', 'HEAD', 'get']);
      names.push(`method ${method}`);
    }],
    [2, () => {
      target = rng.pick(['/v1/ws/', '/v1/WS', '/v1/ws?x=1', '/v1//ws', '/v1/ws%2F', '/ws', '/v1/ws#x']);
      names.push(`target ${target}`);
    }],
    [1, () => {
      version = rng.pick(['HTTP/1.0', 'HTTP/2.0', 'HTTP/1.2']);
      names.push(`version ${version}`);
    }],
    [1, () => {
      headers.push(['Sec-WebSocket-Protocol', rng.pick(['tickwire.v1', 'other'])]);
      names.push('repeated Sec-WebSocket-Protocol');
    }],
    [1, () => {
      headers.push(['Sec-WebSocket-Extensions', rng.pick(['permessage-deflate', 'permessage-deflate; client_max_window_bits', 'x-unknown'])]);
      names.push('extension offered');
    }],
    [2, () => names.push('unchanged')],
  ]);
  edit();
  const text = requestText(method, target, version, headers);
  const shape = rng.weighted<string>([[7, 'whole'], [2, 'torn'], [1, 'slow']]);
  if (shape === 'torn') {
    const cut = rng.int(1, text.length - 1);
    return { class: 'handshake', title: `torn at byte ${cut}: ${names.join(', ')}`, steps: [{ tcp: b64(text.slice(0, cut)) }, { wait: rng.pick([0, 5, 50]) }] };
  }
  if (shape === 'slow') return { class: 'handshake', title: `one byte at a time: ${names.join(', ')}`, steps: [{ slow: b64(text), gapMs: 1 }] };
  return { class: 'handshake', title: names.join(', '), steps: [{ tcp: b64(text) }] };
}

/** `tcp`: bytes that are not a well-formed request, slow writers and connections that never read. */
export function tcpInput(rng: Rng): FuzzInput {
  const scenarios: Array<readonly [number, () => { title: string; steps: Step[] }]> = [
    [3, () => {
      const bytes = rng.bytes(rng.size(2048) + 1);
      return { title: `${bytes.length} random bytes`, steps: [{ tcp: b64(bytes) }, { wait: 10 }] };
    }],
    [2, () => {
      const line = rng.pick(['GET / HTTP/1.1\r\n\r\n', 'GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n', 'GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n\r\n', 'POST /v1/accounts HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', '\r\n\r\n\r\n', 'GET /healthz HTTP/1.1\nHost: x\n\n', 'GET  /healthz  HTTP/1.1\r\n\r\n', 'GET /healthz HTTP/9.9\r\n\r\n', 'G\u00c9T /healthz HTTP/1.1\r\n\r\n', 'GET /healthz HTTP/1.1\r\nHost: x\r\nX: \u0000\r\n\r\n', 'GET /healthz HTTP/1.1\r\nHost: x\r\n Folded: y\r\n\r\n', `GET /${'a'.repeat(70_000)} HTTP/1.1\r\nHost: x\r\n\r\n`, 'CONNECT /v1/devices HTTP/1.1\r\nHost: x\r\n\r\n', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n']);
      return { title: `malformed request ${JSON.stringify(line).slice(0, 60)}`, steps: [{ tcp: b64(line) }, { wait: 10 }] };
    }],
    [2, () => {
      const text = `GET /healthz HTTP/1.1\r\nHost: @{host}\r\n\r\n`;
      return { title: 'GET /healthz one byte at a time', steps: [{ slow: b64(text), gapMs: rng.pick([0, 1, 2]) }] };
    }],
    [1, () => {
      const body = '{"username":"x","device":{}}';
      const text = `POST /v1/accounts HTTP/1.1\r\nHost: @{host}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
      return { title: 'a POST one byte at a time', steps: [{ slow: b64(text), gapMs: 1 }] };
    }],
    [2, () => {
      const count = rng.pick([50, 200, 1000]);
      const one = 'GET /healthz HTTP/1.1\r\nHost: @{host}\r\n\r\n';
      return { title: `${count} pipelined requests, never reading the answers`, steps: [{ stopReading: true }, { tcp: b64(one.repeat(count)) }, { wait: 20 }] };
    }],
    [2, () => {
      const pings = rng.pick([100, 500, 2000]);
      return { title: `a session that never reads, sent ${pings} pings`, steps: [{ upgrade: true, hello: true }, { stopReading: true }, ...Array.from({ length: pings }, (_, i): Step => ({ text: `{"type":"ping","id":"p${i}"}` })), { wait: 50 }] };
    }],
    [1, () => ({ title: 'a connection that sends nothing', steps: [{ wait: rng.pick([1, 20, 100]) }] })],
    [1, () => {
      const declared = rng.pick([100, 10_000]);
      const text = `POST /v1/accounts HTTP/1.1\r\nHost: @{host}\r\nContent-Type: application/json\r\nContent-Length: ${declared}\r\n\r\n{"user`;
      return { title: `a body shorter than its Content-Length (${declared}), then the close`, steps: [{ tcp: b64(text) }, { wait: 5 }] };
    }],
    [1, () => ({ title: 'random bytes after a valid upgrade', steps: [{ upgrade: true, hello: rng.chance(0.5) }, { tcp: b64(rng.bytes(rng.int(1, 300))) }, { wait: 20 }] })],
  ];
  const { title, steps } = rng.weighted(scenarios)();
  return { class: 'tcp', title, steps };
}

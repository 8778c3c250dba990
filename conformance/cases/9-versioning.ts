// Section 9.9 of PROTOCOL.md: which subprotocol the server selects when a client offers several versions. Which
// versions a server implements is read from its answers: a version it accepts when offered alone is one it
// implements (tickwire.v1 always is: it serves /v1/). Versions count from 1, so tickwire.v0 names none.
import { WireError } from '../../reference-client/wire/connection.ts';
import type { ConformanceCase } from '../case.ts';
import type { CaseContext } from '../context.ts';
import { must } from '../expect.ts';

/** tickwire.v1 … tickwire.v9: the versions the cases offer. */
const VERSIONS = Array.from({ length: 9 }, (_, i) => `tickwire.v${i + 1}`);

const versionOf = (protocol: string) => Number(/^tickwire\.v(\d+)$/.exec(protocol)?.[1] ?? NaN);

/** The subprotocol the server selects when offered `protocols`; undefined when it refuses the upgrade. */
async function selected(ctx: CaseContext, protocols: string[]): Promise<string | undefined> {
  let protocol: string;
  try {
    const session = await ctx.open({ protocols, label: 'version' });
    protocol = session.conn.socket.protocol;
    await session.close();
  } catch (error) {
    if (error instanceof WireError && error.code === 'REFUSED') return undefined;
    // The WebSocket client fails the handshake when the server selects a subprotocol that was not offered, or none.
    if (error instanceof WireError && error.code === 'HANDSHAKE') must.fail('VER-6', `one of [${protocols.join(', ')}] selected`, error.message, `offering [${protocols.join(', ')}]`);
    throw error;
  }
  return protocol;
}

/** The versions the server implements among tickwire.v1 … v9, each offered alone. */
async function implementedVersions(ctx: CaseContext): Promise<string[]> {
  const implemented = ['tickwire.v1'];
  for (const version of VERSIONS.slice(1)) if ((await selected(ctx, [version])) === version) implemented.push(version);
  ctx.note(`the server implements ${implemented.join(', ')}`);
  return implemented;
}

export const cases: ConformanceCase[] = [
  {
    id: '9.9/selects-an-offered-version',
    requirements: ['VER-6', 'VER-1'],
    level: 'must',
    title: 'offered several subprotocols, the server selects one it implements among them; a tickwire.v1 connection speaks version 1',
    async run(ctx) {
      const implemented = await implementedVersions(ctx);
      const offers = [
        ['tickwire.v0', 'tickwire.v1'],
        ['tickwire.v1', 'tickwire.v9'],
        ['tickwire.v9', 'tickwire.v1'],
        ['tickwire.v1', 'tickwire.v2', 'tickwire.v0'],
      ];
      for (const offer of offers) {
        const protocol = await selected(ctx, offer);
        must.hold(protocol !== undefined && offer.includes(protocol) && implemented.includes(protocol), 'VER-6', `one of [${offer.join(', ')}] that the server implements (${implemented.join(', ')})`, protocol ?? 'the upgrade refused', `offering [${offer.join(', ')}]`);
      }
      // A connection on which tickwire.v1 was selected from several offers follows version 1.
      const user = await ctx.user();
      const device = user.devices[0]!;
      const session = await ctx.open({ protocols: ['tickwire.v1', 'tickwire.v0'], label: device.label });
      must.equal(session.conn.socket.protocol, 'tickwire.v1', 'VER-6', 'offering [tickwire.v1, tickwire.v0]');
      must.frameType(await session.hello(device, { id: 'h-v1' }), 'welcome', 'VER-1', 'hello on a tickwire.v1 connection');
      must.frameType(await session.request({ type: 'ping', id: 'p-v1' }), 'pong', 'VER-1', 'ping on a tickwire.v1 connection');
      session.sendRaw({ type: 'teleport', id: 't-v1' });
      must.errorFrame(await session.next('error', 'VER-1', (e) => e.id === 't-v1'), 'UNKNOWN_FRAME_TYPE', 'VER-1', 't-v1', 'a frame type version 1 does not define');
    },
  },
  {
    id: '9.9/selects-the-highest-version',
    requirements: ['VER-7'],
    level: 'should',
    title: 'offered several versions it implements, the server selects the highest, in whatever order they are offered',
    async run(ctx) {
      const implemented = await implementedVersions(ctx);
      const highest = implemented.reduce((a, b) => (versionOf(b) > versionOf(a) ? b : a));
      for (const offer of [VERSIONS, [...VERSIONS].reverse()]) {
        must.equal(await selected(ctx, offer), highest, 'VER-7', `offering [${offer.join(', ')}]`);
      }
    },
  },
];

// The WebSocket side of the server: owns the 'upgrade' event for GET /v1/ws, creates one Connection per accepted
// socket, and wires the store's and the HTTP side's events to the live sessions (delivery wake-ups, device removal,
// prekeys_low). shutdown() ends every session with SERVER_RESTART [KAL-13].
import type { Server, IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import type { ServerContext } from '../context.ts';
import type { DeviceAddress, StoreEvent } from '../store/store.ts';
import { WS_SUBPROTOCOL } from '../../spec/index.ts';
import { PresenceService } from '../presence.ts';
import { DeliveryMemory } from '../delivery/memory.ts';
import { Connection, type ConnectionServices } from './connection.ts';
import { writerThresholds } from './frame-writer.ts';
import { checkUpgrade, refuseUpgrade } from './handshake.ts';
import { ProtocolError } from '../errors.ts';
import { SessionRegistry } from './registry.ts';
import { sessionMetrics } from './session-metrics.ts';

export interface Gateway {
  /** Authenticated sessions open now. */
  sessionCount(): number;
  /** Stops accepting upgrades, ends every session with SERVER_RESTART (1012), waits for in-flight store work. */
  shutdown(): Promise<void>;
}

export interface GatewayOptions {
  /** Called on every successful hello, so that the HTTP side can report the device's lastSeenAt [IDN-23]. */
  onAuthenticated?: (device: DeviceAddress, at: number) => void;
}

export function attachGateway(server: Server, ctx: ServerContext, options: GatewayOptions = {}): Gateway {
  const limits = ctx.config.limits;
  const wss = new WebSocketServer({
    noServer: true,
    // [TRN-21] A message over maxFrameBytes closes the connection with 1009 before it is read whole.
    maxPayload: limits.maxFrameBytes,
    perMessageDeflate: false,
    clientTracking: false,
    // [TRN-15] [VER-6] Select tickwire.v1; checkUpgrade has already refused requests that do not offer it.
    handleProtocols: (protocols) => (protocols.has(WS_SUBPROTOCOL) ? WS_SUBPROTOCOL : false),
  });
  // [TRN-18] [ERR-1] Upgrade requests that pass checkUpgrade but that `ws` still refuses (a repeated or malformed
  // Sec-WebSocket-Protocol list, an Upgrade header listing more than websocket) get the protocol's 400, not the
  // library's plain-text one.
  wss.on('wsClientError', (_error, socket) => refuseUpgrade(socket, { error: new ProtocolError('BAD_REQUEST', 'not a valid WebSocket upgrade request') }));
  const connections = new Set<Connection>();
  const memory = new DeliveryMemory();
  // The registry and presence refer to each other: transitions go registry → presence, lookups presence → registry.
  const lookup = {
    isOnline: (userId: string) => registry.isOnline(userId),
    sessionsOf: (userId: string) => registry.sessionsOf(userId),
  };
  const presence = new PresenceService<Connection>({ store: ctx.store, limits, now: ctx.now }, lookup);
  const registry: SessionRegistry<Connection> = new SessionRegistry<Connection>({
    online: (userId) => presence.userOnline(userId),
    offline: (userId) => presence.userOffline(userId),
  });
  const services: ConnectionServices = {
    ctx,
    registry,
    presence,
    memory,
    metrics: sessionMetrics(ctx.metrics, () => registry.size),
    thresholds: writerThresholds(ctx.config),
    onAuthenticated: options.onAuthenticated,
    onClosed: (connection) => connections.delete(connection),
  };
  let accepting = true;

  const deviceRemoved = (device: DeviceAddress): void => {
    memory.forget(device);
    // [IDN-29] A session of the device (or a hello for it still being decided) ends.
    for (const connection of connections) if (connection.concerns(device)) connection.deviceRemoved();
  };
  const onStoreEvent = (event: StoreEvent): void => {
    // [DLV-9] Items enqueued while the session is open are delivered without any client action.
    if (event.type === 'enqueued') registry.get(event.device)?.wake(event.lastSeq);
    else deviceRemoved(event.device);
  };
  const onPrekeysLow = (device: DeviceAddress, remaining: number): void => registry.get(device)?.prekeysLow(remaining);
  const unsubscribe = ctx.store.subscribe(onStoreEvent);
  ctx.hub.on('device-removed', deviceRemoved);
  ctx.hub.on('prekeys-low', onPrekeysLow);

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const refusal = checkUpgrade(req, accepting);
    if (refusal) {
      ctx.log.debug('ws.upgrade_refused', { code: refusal.error.code, path: req.url });
      refuseUpgrade(socket, refusal);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      if (!accepting) {
        ws.terminate();
        return;
      }
      connections.add(new Connection(ws, services, req.socket.remoteAddress ?? 'unknown'));
    });
  };
  server.on('upgrade', onUpgrade);

  return {
    sessionCount: () => registry.size,
    async shutdown(): Promise<void> {
      accepting = false;
      const open = [...connections];
      for (const connection of open) connection.shutdown();
      // Wait for the close handshakes and for store operations already started, within the grace period.
      let timer: NodeJS.Timeout | undefined;
      const grace = new Promise<void>((resolve) => (timer = setTimeout(resolve, ctx.config.shutdownGraceMs)));
      await Promise.race([Promise.all(open.map((connection) => connection.settled())), grace]);
      clearTimeout(timer);
      for (const connection of connections) connection.terminate();
      unsubscribe();
      ctx.hub.off('device-removed', deviceRemoved);
      ctx.hub.off('prekeys-low', onPrekeysLow);
      server.off('upgrade', onUpgrade);
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}

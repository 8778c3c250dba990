// The WebSocket side of the server: owns the 'upgrade' event for GET /v1/ws, creates one Connection per accepted
// socket, and wires the store's and the HTTP side's events to the live sessions (delivery wake-ups, device removal,
// prekeys_low). The session bus (cluster/bus.ts) carries what other processes of the service must hear of, and what
// they tell this one: replacements, presence, typing, hub events [DPL-1]. shutdown() ends every session with
// SERVER_RESTART [KAL-13], after answering the requests already received [DPL-3].
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
import { SessionClaims } from './claims.ts';
import { sessionMetrics } from './session-metrics.ts';
import type { BusHandlers, SessionBus } from '../cluster/bus.ts';
import { LocalBus } from '../cluster/local-bus.ts';

export interface Gateway {
  /** Resolves once the session bus works; the server listens only then. */
  ready: Promise<void>;
  /** Authenticated sessions open now. */
  sessionCount(): number;
  /** Stops accepting upgrades, ends every session with SERVER_RESTART (1012), waits for in-flight store work. */
  shutdown(): Promise<void>;
}

export interface GatewayOptions {
  /** Called on every successful hello, so that the HTTP side can report the device's lastSeenAt [IDN-23]. */
  onAuthenticated?: (device: DeviceAddress, at: number) => void;
  /** The session bus shared with the other processes of the service; a LocalBus (one process) by default. */
  bus?: SessionBus;
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
  const bus = options.bus ?? new LocalBus(ctx.now);
  const memory = new DeliveryMemory((device, seq) => bus.markDelivered(device, seq));
  const registry = new SessionRegistry<Connection>();
  const claims = new SessionClaims<Connection>(bus, registry);
  const presence = new PresenceService<Connection>({ store: ctx.store, limits, now: ctx.now, bus }, registry);
  const services: ConnectionServices = {
    ctx,
    registry,
    claims,
    deliveredMark: (device) => bus.deliveredMark(device),
    presence,
    memory,
    metrics: sessionMetrics(ctx.metrics, () => registry.size),
    thresholds: writerThresholds(ctx.config),
    onAuthenticated: options.onAuthenticated,
    onClosed: (connection) => connections.delete(connection),
  };
  let accepting = true;
  /** [DPL-3] How long a session that is shutting down may take to answer the requests it already received. */
  const drainMs = Math.floor(ctx.config.shutdownGraceMs / 2);

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
  // The hub's events come from this process's HTTP API; the session they concern may live on any process.
  const onHubDeviceRemoved = (device: DeviceAddress): void => bus.deviceRemoved(device);
  const onPrekeysLow = (device: DeviceAddress, remaining: number): void => bus.prekeysLow(device, remaining);
  const handlers: BusHandlers = {
    replace: (device, claim) => claims.replace(device, claim),
    presence: (state) => presence.transition(state),
    typing: (to, from, state) => presence.deliverTyping(to, from, state),
    prekeysLow: (device, remaining) => registry.get(device)?.prekeysLow(remaining),
    deviceRemoved,
    resync: () => {
      presence.resync().catch((error: unknown) => ctx.log.warn('bus.resync_failed', { error }));
    },
    lost: () => {
      // The service released this process's claims: its sessions end so that their clients reconnect and claim again.
      ctx.log.warn('bus.lost', { sessions: connections.size });
      for (const connection of [...connections]) connection.shutdown(drainMs);
    },
  };
  const unsubscribe = ctx.store.subscribe(onStoreEvent);
  ctx.hub.on('device-removed', onHubDeviceRemoved);
  ctx.hub.on('prekeys-low', onPrekeysLow);
  const ready = bus.start(handlers);
  // A failure is the server's to report (it awaits `ready`); this only keeps it from being an unhandled rejection.
  ready.catch(() => undefined);

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
    ready,
    sessionCount: () => registry.size,
    async shutdown(): Promise<void> {
      accepting = false;
      const open = [...connections];
      for (const connection of open) connection.shutdown(drainMs);
      // Wait for the close handshakes and for store operations already started, within the grace period.
      let timer: NodeJS.Timeout | undefined;
      const grace = new Promise<void>((resolve) => (timer = setTimeout(resolve, ctx.config.shutdownGraceMs)));
      await Promise.race([Promise.all(open.map((connection) => connection.settled())), grace]);
      clearTimeout(timer);
      for (const connection of connections) connection.terminate();
      // Terminated sockets report their close (and release their claims) a moment later.
      const left = [...connections];
      if (left.length > 0) {
        await Promise.race([Promise.all(left.map((connection) => connection.settled())), new Promise<void>((resolve) => setTimeout(resolve, 1000).unref())]);
      }
      unsubscribe();
      ctx.hub.off('device-removed', onHubDeviceRemoved);
      ctx.hub.off('prekeys-low', onPrekeysLow);
      server.off('upgrade', onUpgrade);
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      // The claims of the closed sessions are released before the process leaves the service [PRS-2].
      await bus.close().catch((error: unknown) => ctx.log.warn('bus.close_failed', { error }));
    },
  };
}

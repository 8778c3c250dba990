// The metrics of the WebSocket side, registered once per server on ctx.metrics. Names follow the registry's rules:
// snake_case, `tickwire_` prefix, unit suffix; latencies in seconds on LATENCY_BUCKETS.
import type { Counter, Histogram, Metrics } from '../context.ts';
import { LATENCY_BUCKETS } from '../metrics.ts';

export interface SessionMetrics {
  framesIn: Counter;
  framesOut: Counter;
  errors: Counter;
  messagesAccepted: Counter;
  itemsDelivered: Counter;
  ephemeralDropped: Counter;
  ackLatency: Histogram;
  sendLatency: Histogram;
  deliveryLatency: Histogram;
  deliverBatch: Histogram;
}

/** Deliver frames carry 1..maxDeliverBatch (at most 256) items. */
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256];

export function sessionMetrics(metrics: Metrics, sessionCount: () => number): SessionMetrics {
  metrics.gauge('tickwire_ws_sessions', 'Authenticated WebSocket sessions open now', sessionCount);
  return {
    framesIn: metrics.counter('tickwire_ws_frames_received_total', 'WebSocket data messages received, by frame type'),
    framesOut: metrics.counter('tickwire_ws_frames_sent_total', 'WebSocket frames sent, by frame type'),
    errors: metrics.counter('tickwire_ws_errors_total', 'WebSocket error frames sent, by error code'),
    messagesAccepted: metrics.counter('tickwire_messages_accepted_total', 'Sends accepted (durable), by duplicate'),
    itemsDelivered: metrics.counter('tickwire_items_delivered_total', 'Queue items written in deliver frames, by kind and redelivery'),
    ephemeralDropped: metrics.counter('tickwire_ws_ephemeral_dropped_total', 'Presence and typing pushes dropped on a congested connection'),
    ackLatency: metrics.histogram('tickwire_ack_latency_seconds', 'Time from the first delivery of an item on a session to its acknowledgement', LATENCY_BUCKETS),
    sendLatency: metrics.histogram('tickwire_send_durable_latency_seconds', 'Time from receiving a send to its durable acceptance', LATENCY_BUCKETS),
    deliveryLatency: metrics.histogram('tickwire_delivery_latency_seconds', 'Time from the acceptance of a message to its first delivery on a session (includes time the device spent offline)', LATENCY_BUCKETS),
    deliverBatch: metrics.histogram('tickwire_deliver_batch_items', 'Items per deliver frame', BATCH_BUCKETS),
  };
}

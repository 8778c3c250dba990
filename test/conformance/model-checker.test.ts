// The delivery checker of the model-based property on hand-written histories: clean ones (including every
// redelivery the spec allows), and one or more per anomaly, each reported by name with the requirements it violates.
import t, { type Test } from 'tap';
import type { MessageItem, ReceiptItem } from '../../spec/index.ts';
import { ANOMALIES, ANOMALY_NAMES, check, formatAnomalies, outstanding, type Anomaly, type AnomalyName } from '../../conformance/model/checker.ts';
import type { DeviceInfo, History, HistoryEvent, NewEvent } from '../../conformance/model/history.ts';

const DEVICES: DeviceInfo[] = [
  { label: 'a1', user: 'a', userId: 'ua', deviceId: 1 },
  { label: 'a2', user: 'a', userId: 'ua', deviceId: 2 },
  { label: 'b1', user: 'b', userId: 'ub', deviceId: 1 },
  { label: 'b2', user: 'b', userId: 'ub', deviceId: 2 },
];
const address = (label: string) => {
  const d = DEVICES.find((x) => x.label === label)!;
  return { userId: d.userId, deviceId: d.deviceId };
};
const body = (messageId: string, device: string) => Buffer.from(`${messageId} for ${device}`).toString('base64');
const SERVER_TIME = 1_700_000_000_000;

/** A history written step by step; sessions are `<device>#<n>`. */
class Script implements History {
  readonly devices = DEVICES;
  readonly events: HistoryEvent[] = [];
  private at = 0;

  private push(event: NewEvent): this {
    this.events.push({ ...event, at: (this.at += 1) } as HistoryEvent);
    return this;
  }
  connect(session: string): this {
    return this.push({ kind: 'connect', device: session.split('#')[0]!, session });
  }
  closed(session: string): this {
    return this.push({ kind: 'closed', device: session.split('#')[0]!, session, code: 1000 });
  }
  /** `from` (on `session`) sends `messageId` to user `to`, one envelope per device in `devices`. */
  send(session: string, id: string, messageId: string, to: string, devices: string[], resend = false): this {
    const envelopes = devices.map((device) => ({ device, type: 'ratchet' as const, body: body(messageId, device) }));
    return this.push({ kind: 'send', device: session.split('#')[0]!, session, id, messageId, to, envelopes, resend });
  }
  ok(session: string, id: string, messageId: string, duplicate = false, serverTime = SERVER_TIME): this {
    return this.push({ kind: 'send_ok', device: session.split('#')[0]!, session, id, messageId, serverTime, duplicate });
  }
  message(session: string, seq: number, from: string, messageId: string, extra: Partial<MessageItem> = {}): this {
    const device = session.split('#')[0]!;
    const item: MessageItem = { seq, kind: 'message', messageId, from: address(from), envelope: { type: 'ratchet', body: body(messageId, device) }, serverTime: SERVER_TIME, ...extra };
    return this.push({ kind: 'deliver', device, session, item });
  }
  receipt(session: string, seq: number, from: string, messageIds: string[], extra: Partial<ReceiptItem> = {}): this {
    const item: ReceiptItem = { seq, kind: 'receipt', status: 'delivered', from: address(from), messageIds: messageIds as [string, ...string[]], at: SERVER_TIME + 5, ...extra };
    return this.push({ kind: 'deliver', device: session.split('#')[0]!, session, item });
  }
  /** An ack followed by its ping; `pong` false leaves it unconfirmed. */
  ack(session: string, what: { upTo?: number; seqs?: number[] }, ping: string, pong = true): this {
    this.push({ kind: 'ack', device: session.split('#')[0]!, session, ...what, ping });
    return pong ? this.pong(session, ping) : this;
  }
  pong(session: string, id: string): this {
    return this.push({ kind: 'pong', device: session.split('#')[0]!, session, id });
  }
  restart(): this {
    return this.push({ kind: 'restart', how: 'crash' });
  }
  restarted(): this {
    return this.push({ kind: 'restarted' });
  }
}

/** a1 sends m1 to b1 (user b with only b1 in the envelopes), accepted. */
function sent(): Script {
  return new Script().connect('a1#1').connect('b1#1').send('a1#1', 's1', 'msg-a1-001', 'b', ['b1']).ok('a1#1', 's1', 'msg-a1-001');
}

/** The whole happy path of one message: delivered, acknowledged, receipt back and acknowledged. */
function complete(s: Script, extra: Partial<MessageItem> = {}): Script {
  return s.message('b1#1', 1, 'a1', 'msg-a1-001', extra).ack('b1#1', { seqs: [1] }, 'p1').receipt('a1#1', 1, 'b1', ['msg-a1-001']).ack('a1#1', { seqs: [1] }, 'p2');
}

const names = (anomalies: Anomaly[]) => anomalies.map((a) => a.name);
const covered = new Set<AnomalyName>();
function expectAnomaly(t: Test, history: History, name: AnomalyName, requirement: string, detail?: RegExp): Anomaly {
  const anomalies = check(history);
  const found = anomalies.find((a) => a.name === name);
  t.ok(found, `${name} reported (got ${formatAnomalies(anomalies).join('; ') || 'nothing'})`);
  t.same(anomalies.filter((a) => a.name !== name), [], 'and nothing else');
  if (found) {
    covered.add(name);
    t.ok(found.requirements.includes(requirement), `${name} cites ${requirement} (${found.requirements.join(', ')})`);
    for (const id of found.requirements) t.ok(ANOMALIES[name].requirements.includes(id), `${id} is among the requirements listed for ${name}`);
    if (detail) t.match(found.detail, detail);
  }
  return found!;
}

t.test('clean histories', async (t) => {
  t.test('one message, delivered, acknowledged, receipted', async (t) => {
    t.same(check(complete(sent())), []);
  });

  t.test('redelivery of an unacknowledged item, on the session and on a new one, flagged', async (t) => {
    const s = sent()
      .message('b1#1', 1, 'a1', 'msg-a1-001')
      .message('b1#1', 1, 'a1', 'msg-a1-001', { redelivered: true })
      .closed('b1#1')
      .connect('b1#2')
      .message('b1#2', 1, 'a1', 'msg-a1-001', { redelivered: true })
      .ack('b1#2', { upTo: 1 }, 'p1')
      .receipt('a1#1', 3, 'b1', ['msg-a1-001']);
    t.same(check(s), []);
  });

  t.test('a redelivery that crossed the ack (before its pong) is allowed', async (t) => {
    const s = sent().message('b1#1', 1, 'a1', 'msg-a1-001').ack('b1#1', { seqs: [1] }, 'p1', false).message('b1#1', 1, 'a1', 'msg-a1-001', { redelivered: true }).pong('b1#1', 'p1').receipt('a1#1', 1, 'b1', ['msg-a1-001']);
    t.same(check(s), []);
  });

  t.test('after a crash, acknowledged items may come back unflagged and receipts may double', async (t) => {
    const s = complete(sent())
      .restart()
      .connect('b1#2')
      .message('b1#2', 1, 'a1', 'msg-a1-001')
      .ack('b1#2', { seqs: [1] }, 'p3')
      .connect('a1#2')
      .receipt('a1#2', 2, 'b1', ['msg-a1-001']);
    t.same(check(s), []);
  });

  t.test('a pong that arrives while the restart is under way does not prove the removal survived it', async (t) => {
    const s = sent()
      .message('b1#1', 1, 'a1', 'msg-a1-001')
      .ack('b1#1', { seqs: [1] }, 'p1', false)
      .receipt('a1#1', 1, 'b1', ['msg-a1-001'])
      .restart()
      .pong('b1#1', 'p1')
      .restarted()
      .connect('b1#2')
      .message('b1#2', 1, 'a1', 'msg-a1-001')
      .ack('b1#2', { seqs: [1] }, 'p2');
    t.same(check(s), []);
  });

  t.test('a late frame of a replaced session is not held against the server', async (t) => {
    // b1#2 replaced b1#1 (hello before the ack); b1#1's last frame arrives after b1#2's pong.
    const s = sent().message('b1#1', 1, 'a1', 'msg-a1-001').connect('b1#2').message('b1#2', 1, 'a1', 'msg-a1-001', { redelivered: true }).ack('b1#2', { seqs: [1] }, 'p1').message('b1#1', 1, 'a1', 'msg-a1-001', { redelivered: true }).receipt('a1#1', 1, 'b1', ['msg-a1-001']);
    t.same(check(s), []);
  });

  t.test('a send without an answer that never arrived: outcome unknown, nothing lost', async (t) => {
    const s = new Script().connect('a1#1').send('a1#1', 's1', 'msg-a1-001', 'b', ['b1']).closed('a1#1');
    t.same(check(s), []);
  });

  t.test('an unconfirmed ack: no receipt owed, and the item is not lost', async (t) => {
    const s = sent().message('b1#1', 1, 'a1', 'msg-a1-001').ack('b1#1', { seqs: [1] }, 'p1', false).closed('b1#1');
    t.same(check(s), []);
  });

  t.test('sends on different connections with no send_ok in between may take either order', async (t) => {
    const s = new Script()
      .connect('a1#1')
      .connect('a1#2')
      .send('a1#1', 's1', 'msg-a1-001', 'b', ['b1'])
      .send('a1#2', 's1', 'msg-a1-002', 'b', ['b1'])
      .ok('a1#2', 's1', 'msg-a1-002')
      .ok('a1#1', 's1', 'msg-a1-001')
      .connect('b1#1')
      .message('b1#1', 1, 'a1', 'msg-a1-002')
      .message('b1#1', 2, 'a1', 'msg-a1-001')
      .ack('b1#1', { upTo: 2 }, 'p1')
      .receipt('a1#2', 1, 'b1', ['msg-a1-002', 'msg-a1-001']);
    t.same(check(s), []);
  });

  t.test('a resend answered duplicate: true with the original serverTime, enqueued once', async (t) => {
    const s = complete(sent().send('a1#1', 's2', 'msg-a1-001', 'b', ['b1'], true).ok('a1#1', 's2', 'msg-a1-001', true));
    t.same(check(s), []);
  });

  t.test('a message to one own other device, and a combined receipt', async (t) => {
    const s = new Script()
      .connect('a1#1')
      .connect('a2#1')
      .send('a1#1', 's1', 'msg-a1-001', 'a', ['a2'])
      .send('a1#1', 's2', 'msg-a1-002', 'a', ['a2'])
      .ok('a1#1', 's1', 'msg-a1-001')
      .ok('a1#1', 's2', 'msg-a1-002')
      .message('a2#1', 4, 'a1', 'msg-a1-001')
      .message('a2#1', 9, 'a1', 'msg-a1-002')
      .ack('a2#1', { upTo: 9 }, 'p1')
      .receipt('a1#1', 2, 'a2', ['msg-a1-001', 'msg-a1-002']);
    t.same(check(s), []);
  });
});

t.test('lost', async (t) => {
  t.test('accepted, never delivered', async (t) => {
    const found = expectAnomaly(t, sent(), 'lost', 'MSG-10', /never delivered to b1/);
    t.same(found.messageIds, ['msg-a1-001']);
    t.notOk(found.requirements.includes('DLV-39'), 'no crash, no DLV-39');
  });
  t.test('delivered, never acknowledged, and not delivered again on a new session', async (t) => {
    const s = sent().message('b1#1', 1, 'a1', 'msg-a1-001').closed('b1#1').connect('b1#2');
    expectAnomaly(t, s, 'lost', 'DLV-24', /never acknowledged/);
  });
  t.test('lost across a crash cites DLV-39', async (t) => {
    expectAnomaly(t, sent().restart().connect('b1#2'), 'lost', 'DLV-39');
  });
  t.test('one of two recipient devices never gets it', async (t) => {
    const s = new Script().connect('a1#1').send('a1#1', 's1', 'msg-a1-001', 'b', ['b1', 'b2']).ok('a1#1', 's1', 'msg-a1-001').connect('b1#1');
    complete(s);
    const found = expectAnomaly(t, s, 'lost', 'MSG-10');
    t.equal(found.device, 'b2');
  });
});

t.test('phantom', async (t) => {
  t.test('a message nobody sent', async (t) => {
    expectAnomaly(t, new Script().connect('b1#1').message('b1#1', 1, 'a1', 'msg-a1-009'), 'phantom', 'MSG-13', /never sent msg-a1-009/);
  });
  t.test('from an address outside the scenario', async (t) => {
    const s = new Script().connect('b1#1');
    s.events.push({ kind: 'deliver', at: 9, device: 'b1', session: 'b1#1', item: { seq: 1, kind: 'message', messageId: 'msg-x', from: { userId: 'zz', deviceId: 1 }, envelope: { type: 'ratchet', body: 'AA==' }, serverTime: 1 } });
    expectAnomaly(t, s, 'phantom', 'MSG-13', /address that sent nothing/);
  });
  t.test('delivered to a device it was not addressed to', async (t) => {
    const s = complete(sent()).connect('b2#1').message('b2#1', 1, 'a1', 'msg-a1-001').ack('b2#1', { upTo: 1 }, 'p9');
    expectAnomaly(t, s, 'phantom', 'DLV-5', /addressed to b1, not b2/);
  });
  t.test('with another body', async (t) => {
    const s = complete(sent(), { envelope: { type: 'ratchet', body: 'AAAA' } });
    expectAnomaly(t, s, 'phantom', 'MSG-13', /envelope differs/);
  });
  t.test('with another sender', async (t) => {
    const s = new Script().connect('a1#1').connect('a2#1').connect('b1#1').send('a1#1', 's1', 'msg-a1-001', 'b', ['b1']).ok('a1#1', 's1', 'msg-a1-001').message('b1#1', 1, 'a2', 'msg-a1-001');
    const anomalies = check(s);
    t.ok(anomalies.some((a) => a.name === 'phantom' && a.requirements.includes('MSG-13')), formatAnomalies(anomalies).join('; '));
  });
  t.test('with a serverTime other than the send_ok', async (t) => {
    expectAnomaly(t, complete(sent(), { serverTime: SERVER_TIME + 1 }), 'phantom', 'MSG-13', /serverTime/);
  });
  t.test('a delivered receipt before any acknowledgement', async (t) => {
    const s = sent().receipt('a1#1', 1, 'b1', ['msg-a1-001']).message('b1#1', 1, 'a1', 'msg-a1-001').ack('b1#1', { seqs: [1] }, 'p1');
    expectAnomaly(t, s, 'phantom', 'RCP-1', /had not acknowledged/);
  });
  t.test('a delivered receipt for a message never sent to that device', async (t) => {
    const s = complete(sent()).receipt('a1#1', 2, 'b2', ['msg-a1-001']);
    expectAnomaly(t, s, 'phantom', 'RCP-1', /never sent msg-a1-001 to b2/);
  });
  t.test('a read receipt nobody submitted', async (t) => {
    expectAnomaly(t, complete(sent()).receipt('a1#1', 2, 'b1', ['msg-a1-001'], { status: 'read' }), 'phantom', 'RCP-11');
  });
});

t.test('duplicate', async (t) => {
  t.test('delivered again on the same session after the pong that confirms its ack', async (t) => {
    const s = complete(sent()).message('b1#1', 1, 'a1', 'msg-a1-001', { redelivered: true });
    const found = expectAnomaly(t, s, 'duplicate', 'DLV-15', /after its ack was applied/);
    t.equal(found.device, 'b1');
  });
  t.test('delivered again on a later session', async (t) => {
    const s = complete(sent()).closed('b1#1').connect('b1#2').message('b1#2', 1, 'a1', 'msg-a1-001', { redelivered: true });
    expectAnomaly(t, s, 'duplicate', 'DLV-15');
  });
  t.test('one message under two seqs', async (t) => {
    const s = complete(sent()).message('b1#1', 2, 'a1', 'msg-a1-001').ack('b1#1', { seqs: [2] }, 'p3');
    const anomalies = check(s);
    // The second ack also owes a second receipt, which is not a separate fault: only the duplicate is reported.
    t.same(names(anomalies), ['duplicate'], formatAnomalies(anomalies).join('; '));
    t.ok(anomalies[0]!.requirements.includes('MSG-10'));
    covered.add('duplicate');
  });
  t.test('a resend accepted as a new message', async (t) => {
    const s = complete(sent().send('a1#1', 's2', 'msg-a1-001', 'b', ['b1'], true).ok('a1#1', 's2', 'msg-a1-001', false));
    expectAnomaly(t, s, 'duplicate', 'MSG-14', /answered duplicate: false/);
  });
  t.test('a resend answered with another serverTime', async (t) => {
    const s = complete(sent().send('a1#1', 's2', 'msg-a1-001', 'b', ['b1'], true).ok('a1#1', 's2', 'msg-a1-001', true, SERVER_TIME + 7));
    expectAnomaly(t, s, 'duplicate', 'MSG-14', /serverTime/);
  });
  t.test('a resend enqueued a second time', async (t) => {
    const s = complete(sent().send('a1#1', 's2', 'msg-a1-001', 'b', ['b1'], true).ok('a1#1', 's2', 'msg-a1-001', true)).message('b1#1', 2, 'a1', 'msg-a1-001').ack('b1#1', { seqs: [2] }, 'p3');
    const found = check(s).find((a) => a.name === 'duplicate');
    t.ok(found?.requirements.includes('MSG-14'), 'cites MSG-14');
  });
  t.test('two delivered receipts for one acknowledgement without a crash', async (t) => {
    const s = complete(sent()).receipt('a1#1', 2, 'b1', ['msg-a1-001']);
    expectAnomaly(t, s, 'duplicate', 'RCP-1', /2 delivered receipts/);
  });
});

t.test('reordered', async (t) => {
  const pipelined = () =>
    new Script()
      .connect('a1#1')
      .send('a1#1', 's1', 'msg-a1-001', 'b', ['b1'])
      .send('a1#1', 's2', 'msg-a1-002', 'b', ['b1'])
      .ok('a1#1', 's1', 'msg-a1-001')
      .ok('a1#1', 's2', 'msg-a1-002')
      .connect('b1#1');
  t.test('two sends on one connection, the later with the lower seq', async (t) => {
    const s = pipelined().message('b1#1', 1, 'a1', 'msg-a1-002').message('b1#1', 2, 'a1', 'msg-a1-001').ack('b1#1', { upTo: 2 }, 'p1').receipt('a1#1', 1, 'b1', ['msg-a1-001', 'msg-a1-002']);
    const found = expectAnomaly(t, s, 'reordered', 'DLV-31', /before msg-a1-002/);
    t.same(found.messageIds, ['msg-a1-001', 'msg-a1-002']);
  });
  t.test('a send after the send_ok of another, on another connection, with the lower seq', async (t) => {
    const s = new Script()
      .connect('a1#1')
      .send('a1#1', 's1', 'msg-a1-001', 'b', ['b1'])
      .ok('a1#1', 's1', 'msg-a1-001')
      .closed('a1#1')
      .connect('a1#2')
      .send('a1#2', 's1', 'msg-a1-002', 'b', ['b1'])
      .ok('a1#2', 's1', 'msg-a1-002')
      .connect('b1#1')
      .message('b1#1', 1, 'a1', 'msg-a1-002')
      .message('b1#1', 2, 'a1', 'msg-a1-001')
      .ack('b1#1', { upTo: 2 }, 'p1')
      .receipt('a1#2', 1, 'b1', ['msg-a1-001', 'msg-a1-002']);
    expectAnomaly(t, s, 'reordered', 'DLV-31', /after its send_ok/);
  });
  t.test('a session delivers an item for the first time after a higher seq', async (t) => {
    const s = pipelined().message('b1#1', 2, 'a1', 'msg-a1-002').message('b1#1', 1, 'a1', 'msg-a1-001').ack('b1#1', { upTo: 2 }, 'p1').receipt('a1#1', 1, 'b1', ['msg-a1-001', 'msg-a1-002']);
    expectAnomaly(t, s, 'reordered', 'DLV-7', /for the first time/);
  });
});

t.test('receipt-lost', async (t) => {
  t.test('an applied ack whose receipt never came', async (t) => {
    const s = sent().message('b1#1', 1, 'a1', 'msg-a1-001').ack('b1#1', { upTo: 1 }, 'p1');
    const found = expectAnomaly(t, s, 'receipt-lost', 'RCP-1', /no delivered receipt/);
    t.equal(found.device, 'a1');
    t.notOk(found.requirements.includes('RCP-5'));
  });
  t.test('acknowledged before a crash (unconfirmed), again after it, and still no receipt: RCP-5 first', async (t) => {
    const s = sent()
      .message('b1#1', 1, 'a1', 'msg-a1-001')
      .ack('b1#1', { seqs: [1] }, 'p1', false)
      .restart()
      .restarted()
      .connect('b1#2')
      .message('b1#2', 1, 'a1', 'msg-a1-001')
      .ack('b1#2', { seqs: [1] }, 'p2')
      .connect('a1#2');
    const found = expectAnomaly(t, s, 'receipt-lost', 'RCP-5', /and first at/);
    t.equal(found.requirements[0], 'RCP-5');
  });
  t.test('across a crash it cites RCP-5 and DLV-39', async (t) => {
    const s = sent().message('b1#1', 1, 'a1', 'msg-a1-001').ack('b1#1', { upTo: 1 }, 'p1').restart().connect('a1#2');
    const found = expectAnomaly(t, s, 'receipt-lost', 'RCP-5');
    t.ok(found.requirements.includes('DLV-39'));
  });
});

t.test('redelivery-flag', async (t) => {
  t.test('a second delivery without redelivered: true', async (t) => {
    const s = complete(sent().message('b1#1', 1, 'a1', 'msg-a1-001').closed('b1#1').connect('b1#2').message('b1#2', 1, 'a1', 'msg-a1-001').ack('b1#2', { upTo: 1 }, 'p0'));
    expectAnomaly(t, s, 'redelivery-flag', 'DLV-10', /without redelivered: true/);
  });
  t.test('after a crash the server may not know', async (t) => {
    const s = sent().message('b1#1', 1, 'a1', 'msg-a1-001').restart().connect('b1#2').message('b1#2', 1, 'a1', 'msg-a1-001').ack('b1#2', { upTo: 1 }, 'p0').connect('a1#2').receipt('a1#2', 1, 'b1', ['msg-a1-001']);
    t.same(check(s), []);
  });
});

t.test('seq-reused', async (t) => {
  const s = new Script()
    .connect('a1#1')
    .send('a1#1', 's1', 'msg-a1-001', 'b', ['b1'])
    .send('a1#1', 's2', 'msg-a1-002', 'b', ['b1'])
    .ok('a1#1', 's1', 'msg-a1-001')
    .ok('a1#1', 's2', 'msg-a1-002')
    .connect('b1#1')
    .message('b1#1', 1, 'a1', 'msg-a1-001')
    .restart()
    .connect('b1#2')
    .message('b1#2', 1, 'a1', 'msg-a1-002')
    .ack('b1#2', { upTo: 1 }, 'p1');
  const anomalies = check(s);
  const found = anomalies.find((a) => a.name === 'seq-reused');
  t.ok(found, formatAnomalies(anomalies).join('; '));
  t.same(found?.requirements, ['DLV-3']);
  t.same(found?.messageIds, ['msg-a1-001', 'msg-a1-002']);
  covered.add('seq-reused');
});

t.test('outstanding() is what a final drain waits for', async (t) => {
  t.same(names(outstanding(sent())), ['lost']);
  t.same(names(outstanding(sent().message('b1#1', 1, 'a1', 'msg-a1-001').ack('b1#1', { upTo: 1 }, 'p1'))), ['receipt-lost']);
  t.same(outstanding(complete(sent())), []);
  t.same(outstanding(new Script().connect('b1#1').message('b1#1', 1, 'a1', 'msg-a1-009')), [], 'a phantom is not waited for');
});

t.test('every anomaly is covered by a test above, and cites only server requirements of the spec', async (t) => {
  t.same(ANOMALY_NAMES.filter((name) => !covered.has(name)), []);
  const { requirement } = await import('../../spec/index.ts');
  for (const name of ANOMALY_NAMES) for (const id of ANOMALIES[name].requirements) t.ok(requirement(id)?.parties.includes('server'), `${name}: ${id}`);
});

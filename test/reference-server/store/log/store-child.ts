// Child process for the store's kill -9 test: registers two users (or reopens them), then sends numbered messages
// from alice to bob with many in flight, acknowledging some of bob's items as it goes, printing each number once the
// store has acknowledged the send as durable.
import { openLogStore } from '../../../../reference-server/store/log/log-store.ts';

const [dir, segmentBytes, checkpointEveryBytes] = process.argv.slice(2);
const store = await openLogStore(dir!, { segmentBytes: Number(segmentBytes), checkpointEveryBytes: Number(checkpointEveryBytes) });
const key = 'BQ' + 'A'.repeat(42);
const device = (name: string) => ({
  name,
  secretHash: '0'.repeat(64),
  registrationId: 1,
  identityKey: key,
  signedPreKey: { keyId: 1, publicKey: key, signature: 'A'.repeat(86) + '==' },
  oneTimePreKeys: [],
});
let alice = await store.findUserByUsername('alice');
let bob = await store.findUserByUsername('bob');
if (!alice) {
  await store.createAccount('alice', device('a'), Date.now());
  alice = await store.findUserByUsername('alice');
}
if (!bob) {
  await store.createAccount('bob', device('b'), Date.now());
  bob = await store.findUserByUsername('bob');
}
const from = { userId: alice!.userId, deviceId: 1 };
const to = bob!.userId;
const round = process.argv[5];
let next = 0;
let inFlight = 0;
process.stdout.write(`ready ${from.userId} ${to}\n`);
const pump = () => {
  while (inFlight < 64) {
    const n = next++;
    inFlight++;
    const body = Buffer.from(`r${round}-m${n}-`.padEnd(120, 'x')).toString('base64');
    void store
      .enqueueMessage({ from, messageId: `r${round}-m${String(n).padStart(8, '0')}`, to, envelopes: [{ deviceId: 1, type: 'ratchet', body }], serverTime: Date.now() }, 86_400_000, 10_000_000)
      .then(async (result) => {
        inFlight--;
        if (result.status === 'accepted') {
          process.stdout.write(`${n}\n`);
          // Acknowledge every third message of this round so that acks and receipts are in the log too.
          if (n % 3 === 0) await store.acknowledge({ userId: to, deviceId: 1 }, result.seqs.map((s) => s.seq), Date.now());
        }
        pump();
      });
  }
};
pump();

// Child process for the kill -9 test: appends numbered records as fast as it can, with many appends in flight,
// and prints each number once its append has resolved (that is, once the log said it is durable).
import { SegmentLog } from '../../../../reference-server/store/log/segment-log.ts';

const [dir, segmentBytes] = process.argv.slice(2);
const { log } = await SegmentLog.open(dir!, { segmentBytes: Number(segmentBytes) }, 0, () => {});
let next = 0;
let inFlight = 0;
const out: string[] = [];
const flushOut = () => {
  if (out.length > 0) process.stdout.write(out.splice(0).join(''));
};
setInterval(flushOut, 2).unref();
const pump = () => {
  while (inFlight < 64) {
    const n = next++;
    inFlight++;
    const payload = Buffer.alloc(100 + (n % 200), n % 251);
    payload.writeUInt32LE(n, 0);
    void log.append(1, payload).then(() => {
      inFlight--;
      out.push(`${n}\n`);
      // Write what is acknowledged before asking for more, so the parent never sees less than was durable.
      flushOut();
      pump();
    });
  }
};
process.stdout.write('ready\n');
pump();

// The segmented log over real files: append, replay, torn tails, corruption, rollover, group commit, and kill -9.
import t from 'tap';
import { spawn } from 'node:child_process';
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SegmentLog, segmentOf, type ReplayedRecord } from '../../../../reference-server/store/log/segment-log.ts';
import { StoreCorruptError } from '../../../../reference-server/store/errors.ts';

const freshDir = () => mkdtempSync(join(tmpdir(), 'tickwire-log-'));
const openLog = async (dir: string, segmentBytes?: number) => {
  const records: ReplayedRecord[] = [];
  const opened = await SegmentLog.open(dir, segmentBytes ? { segmentBytes } : {}, 0, (r) => records.push({ ...r, payload: Buffer.from(r.payload) }));
  return { ...opened, records };
};
const segmentFiles = (dir: string) => readdirSync(dir).filter((f) => f.endsWith('.twlog')).sort();

t.test('appended records replay in order after reopening', async (t) => {
  const dir = freshDir();
  const { log } = await openLog(dir);
  const lsns = await Promise.all(Array.from({ length: 100 }, (_, i) => log.append(i % 7, Buffer.from(`record ${i}`))));
  t.same([...lsns].sort((a, b) => a - b), lsns, 'LSNs grow in append order');
  await log.close();
  const again = await openLog(dir);
  t.equal(again.records.length, 100);
  t.same(again.records.map((r) => r.payload.toString()), Array.from({ length: 100 }, (_, i) => `record ${i}`));
  t.same(again.records.map((r) => r.type), Array.from({ length: 100 }, (_, i) => i % 7));
  t.same(again.records.map((r) => r.lsn), lsns);
  t.equal(again.report.truncated, undefined);
  const read = again.log.readRecord(lsns[42]!, again.records[42]!.size);
  t.equal(read.payload.toString(), 'record 42', 'readRecord finds a record by LSN');
  await again.log.close();
});

t.test('group commit: concurrent appends share syncs', async (t) => {
  const dir = freshDir();
  let syncs = 0;
  let covered = 0;
  const { log } = await SegmentLog.open(dir, { onSync: ({ records }) => { syncs++; covered += records; } }, 0, () => {});
  await Promise.all(Array.from({ length: 2000 }, (_, i) => log.append(1, Buffer.alloc(200, i % 256))));
  t.equal(covered, 2000, 'every record was covered by a sync');
  t.ok(syncs < 2000 / 4, `2000 concurrent appends took ${syncs} syncs`);
  await log.close();
});

t.test('a torn tail on the last segment is cut off; earlier records survive', async (t) => {
  for (const damage of ['short-header', 'short-body', 'bad-checksum', 'zeros'] as const) {
    const dir = freshDir();
    const { log } = await openLog(dir);
    for (let i = 0; i < 10; i++) await log.append(2, Buffer.from(`keep ${i}`));
    await log.close();
    const file = join(dir, segmentFiles(dir).at(-1)!);
    const goodSize = statSync(file).size;
    if (damage === 'short-header') appendFileSync(file, Buffer.from([9, 0, 0]));
    if (damage === 'short-body') appendFileSync(file, Buffer.from([50, 0, 0, 0, 1, 2, 3, 4, 1, 65]));
    if (damage === 'bad-checksum') {
      const { log: l2 } = await openLog(dir);
      await l2.append(2, Buffer.from('lost'));
      await l2.close();
      const bytes = readFileSync(file);
      bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 0xff;
      writeFileSync(file, bytes);
    }
    if (damage === 'zeros') appendFileSync(file, Buffer.alloc(4096));
    const again = await openLog(dir);
    t.equal(again.records.length, 10, `${damage}: the ten durable records are there`);
    t.ok(again.report.truncated, `${damage}: the report says the tail was cut`);
    t.equal(statSync(file).size, goodSize, `${damage}: the file is back to its last good size`);
    await again.log.append(2, Buffer.from('after repair'));
    await again.log.close();
    const third = await openLog(dir);
    t.equal(third.records.at(-1)!.payload.toString(), 'after repair', `${damage}: appends continue after the repair`);
    await third.log.close();
  }
});

t.test('segments roll over, and damage before the last segment is refused', async (t) => {
  const dir = freshDir();
  const { log } = await openLog(dir, 4096);
  for (let i = 0; i < 100; i++) await log.append(3, Buffer.alloc(300, i));
  const segments = log.listSegments();
  t.ok(segments.length > 5, `rolled into ${segments.length} segments`);
  await log.close();
  const again = await openLog(dir, 4096);
  t.equal(again.records.length, 100);
  t.equal(new Set(again.records.map((r) => segmentOf(r.lsn))).size, segments.length);
  await again.log.close();

  const second = join(dir, segmentFiles(dir)[1]!);
  const bytes = readFileSync(second);
  bytes[40] = bytes[40]! ^ 0x01;
  writeFileSync(second, bytes);
  await t.rejects(openLog(dir, 4096), StoreCorruptError, 'a damaged middle segment stops recovery');
  truncateSync(second, 2);
  await t.rejects(openLog(dir, 4096), StoreCorruptError, 'so does a middle segment without its magic');
});

t.test('deleting a sealed segment; replay from an LSN skips what came before', async (t) => {
  const dir = freshDir();
  const { log } = await openLog(dir, 4096);
  const lsns: number[] = [];
  for (let i = 0; i < 60; i++) lsns.push(await log.append(3, Buffer.alloc(300, i)));
  t.throws(() => log.deleteSegment(log.currentSegment), RangeError, 'the active segment cannot be deleted');
  const first = log.listSegments()[0]!;
  log.deleteSegment(first);
  t.notOk(log.listSegments().includes(first));
  await log.close();
  const from = lsns[30]!;
  const replayed: number[] = [];
  const { log: again } = await SegmentLog.open(dir, { segmentBytes: 4096 }, from, (r) => replayed.push(r.lsn));
  t.equal(replayed[0], from, 'replay starts at the requested LSN');
  t.same(replayed, lsns.slice(30));
  await again.close();
});

t.test('kill -9 during a burst: every acknowledged record is recovered, in order', async (t) => {
  const child = fileURLToPath(new URL('./append-child.ts', import.meta.url));
  const dir = freshDir();
  let acknowledged = -1;
  for (let round = 0; round < 3; round++) {
    const proc = spawn(process.execPath, ['--import', 'tsx', child, dir, String(256 * 1024)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let buffered = '';
    let roundMax = -1;
    let ready = false;
    proc.stdout.setEncoding('utf8');
    proc.stdout.on('data', (chunk: string) => {
      buffered += chunk;
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const line of lines) {
        if (line === 'ready') ready = true;
        else roundMax = Math.max(roundMax, Number(line));
      }
    });
    const exited = new Promise((resolve) => proc.on('exit', resolve));
    // Kill at a different point each round, once the child has acknowledged a good number of records.
    const target = 2000 * (round + 1);
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        if (ready && roundMax >= target) {
          clearInterval(timer);
          resolve();
        }
      }, 1);
    });
    proc.kill('SIGKILL');
    await exited;
    const { records, log, report } = await openLog(dir);
    await log.close();
    // Each round restarts numbering at 0, so check the records this round appended: the last `roundMax + 1` or more.
    const numbers = records.map((r) => r.payload.readUInt32LE(0));
    const lastZero = numbers.lastIndexOf(0);
    const thisRound = numbers.slice(lastZero);
    t.ok(thisRound.length >= roundMax + 1, `round ${round}: ${thisRound.length} records on disk, ${roundMax + 1} acknowledged`);
    t.same(thisRound.slice(0, roundMax + 1), Array.from({ length: roundMax + 1 }, (_, i) => i), `round ${round}: acknowledged records are all there, in order`);
    const intact = records.slice(lastZero).every((r) => r.payload.length === 100 + (r.payload.readUInt32LE(0) % 200));
    t.ok(intact, `round ${round}: every recovered record has its full payload`);
    t.comment(`round ${round}: killed after ${roundMax + 1} acknowledged; recovery ${JSON.stringify(report.truncated ?? 'clean')}`);
    acknowledged = roundMax;
  }
  t.ok(acknowledged > 0);
});

// The whole conformance suite against the reference server as a service of several processes on Redis (PROTOCOL.md
// 6.6): (a) one `serve --workers 3 --redis` behind one URL, and (b) two `serve --redis` instances on two ports, given to
// the suite as two --urls so that every case spreads its connections and HTTP requests over both. Each deployment has
// a redis-server of its own (append-only, fsync always), so the two runs go side by side without disturbing each
// other; each server gets the suite's built-in settings (BUILT_IN_SERVER_ARGS). The crash, graceful-restart and
// storage-fault cases run too: their commands call a control endpoint of this test, which SIGKILLs every process of
// the deployment and starts it again on the same ports, SIGTERMs and starts it again, or SIGSTOPs and SIGCONTs its
// redis-server.
import t from 'tap';
import { RedisServer } from '../reference-server/store/redis/redis-server.ts';
import { checkRun, CONCURRENCY, deploy, RUN_TIMEOUT_MS, runSuite, SEED } from './cluster-deployment.ts';

t.setTimeout(RUN_TIMEOUT_MS + 60_000);

t.test('the whole suite passes against three workers on Redis and against two instances sharing Redis', async (t) => {
  const [redisA, redisB] = await Promise.all([RedisServer.start(), RedisServer.start()]);
  t.teardown(() => Promise.all([redisA.dispose(), redisB.dispose()]));
  const [workers, instances] = await Promise.all([deploy(t, redisA, 1, ['--workers', '3']), deploy(t, redisB, 2, [])]);
  t.equal(instances.urls.length, 2);
  t.not(instances.urls[0], instances.urls[1], 'two instances on two ports');

  const [a, b] = await Promise.all([runSuite(t, workers), runSuite(t, instances)]);
  t.comment(`--workers 3: ${a.ms} ms; two instances: ${b.ms} ms (side by side, --concurrency ${CONCURRENCY})`);

  t.test('(a) one URL, three workers', async (t) => {
    checkRun(t, a);
    t.equal(a.report.url, workers.urls[0]);
    t.notOk('urls' in a.report, 'one URL: the report has no urls member');
  });

  t.test('(b) two URLs, two instances', async (t) => {
    checkRun(t, b);
    t.same(b.report.urls, instances.urls, 'the report lists every URL');
    t.equal(b.header, `tickwire conformance: ${b.report.summary.total} cases against one service at ${instances.urls.join(', ')}, seed ${SEED}`, 'the header names every URL');
  });
});

// The whole conformance suite against two `serve --redis redis+cluster://…` instances on a Redis Cluster of three
// masters (test/reference-server/store/redis/redis-cluster.ts: loopback, free ports, appendonly yes, appendfsync
// always), given to the suite as two --urls, with the crash, graceful-restart and storage-fault commands: a crash
// SIGKILLs both instances and starts them again; a fault SIGSTOPs every master, the heal SIGCONTs them.
// `npm run test:redis-cluster`, apart from test:cluster so that CI's run stays within its time.
import t from 'tap';
import { RedisCluster } from '../reference-server/store/redis/redis-cluster.ts';
import { checkRun, deploy, RUN_TIMEOUT_MS, runSuite } from './cluster-deployment.ts';

t.setTimeout(RUN_TIMEOUT_MS + 60_000);

t.test('the whole suite passes against two instances on a Redis Cluster of three masters', async (t) => {
  const cluster = await RedisCluster.start(3);
  t.teardown(() => cluster.dispose());
  const instances = await deploy(t, cluster, 2, []);
  t.equal(instances.urls.length, 2);
  const run = await runSuite(t, instances);
  t.comment(`two instances on a 3-master Redis Cluster: ${run.ms} ms`);
  checkRun(t, run);
  t.same(run.report.urls, instances.urls, 'the report lists every URL');
});

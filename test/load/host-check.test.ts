// `tickwire host-check`: the facts come from this host's /proc, the advice follows from them; load/tune-host.sh
// parses and refuses bad arguments (it is not run for real here: it changes sysctls).
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { advise, hostCheckCommand, readHostFacts, type HostFacts } from '../../load/host-check-command.ts';

const BIN = fileURLToPath(new URL('../../bin/tickwire.js', import.meta.url));
const TUNE = fileURLToPath(new URL('../../load/tune-host.sh', import.meta.url));

const roomy: HostFacts = {
  openFiles: { soft: 1_048_576, hard: 1_048_576 },
  nrOpen: 1_048_576,
  fileMax: 10_000_000,
  filesInUse: 1000,
  ephemeralPorts: { low: 10_000, high: 65_000 },
  somaxconn: 8192,
  tcpMaxSynBacklog: 8192,
  tcpMemPages: [1_000_000, 2_000_000, 3_000_000],
  tcpTwReuse: 1,
  cores: 8,
};

t.test('advice: what a 20,000-file hard limit forces, and nothing extra on a roomy host', async (t) => {
  const tight = advise({ ...roomy, openFiles: { soft: 1024, hard: 20_000 }, somaxconn: 128, tcpTwReuse: 0 }, 100_000);
  t.equal(tight.serverProcesses, 6, '100,000 sessions over 19,744 sockets per process');
  t.equal(tight.loadWorkers, 6);
  t.equal(tight.sourceAddresses, 100, 'about 1,000 connections per source address');
  t.match(tight.changes.join('\n'), /ulimit -n 20000/);
  t.match(tight.changes.join('\n'), /run 6 server processes/);
  t.match(tight.changes.join('\n'), /somaxconn=8192/);
  t.match(tight.changes.join('\n'), /tcp_tw_reuse=1/);
  const easy = advise(roomy, 100_000);
  t.equal(easy.serverProcesses, 1);
  t.same(easy.changes.filter((c) => !/source addresses/.test(c)), [], 'only the source-address plan');
  t.match(advise({ ...roomy, openFiles: { soft: 1024, hard: 4096 }, nrOpen: 4096 }, 100_000).changes.join('\n'), /fs\.nr_open/);
});

t.test('this host: facts from /proc, and the command prints them', async (t) => {
  const facts = readHostFacts();
  t.ok(facts.openFiles.hard === null || facts.openFiles.hard > 0);
  t.ok(facts.cores >= 1);
  const text = spawnSync(process.execPath, [BIN, 'host-check', '--connections', '50000'], { encoding: 'utf8' });
  t.equal(text.status, 0, text.stderr);
  t.match(text.stdout, /open files per process\s+soft \S+, hard \S+/);
  t.match(text.stdout, /For 50000 sessions on this host: \d+ server process/);
  const json = spawnSync(process.execPath, [BIN, 'host-check', '--json'], { encoding: 'utf8' });
  t.equal(json.status, 0);
  t.equal((JSON.parse(json.stdout) as { advice: { target: number } }).advice.target, 100_000);
  const bad = spawnSync(process.execPath, [BIN, 'host-check', '--connections', 'many'], { encoding: 'utf8' });
  t.equal(bad.status, 2);
  t.match(hostCheckCommand.help, /Usage: tickwire host-check/);
});

t.test('tune-host.sh is valid sh and refuses a bad target', async (t) => {
  t.equal(spawnSync('sh', ['-n', TUNE]).status, 0, 'parses');
  t.equal(spawnSync('sh', [TUNE, 'lots']).status, 2);
});

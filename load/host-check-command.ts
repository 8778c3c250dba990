// `tickwire host-check`: the limits of this host that cap how many WebSocket sessions one test can open, read from
// /proc, and what to change to reach a target. Connection-scale testing on one host meets, in turn: the per-process
// open-file limit (every socket is a file; the server and each load worker are one process each), the system-wide
// file limits, the ephemeral ports of one source address toward one destination (so the load tool spreads its
// connections over several loopback source addresses), the listen backlog (connection bursts), and TCP memory.
import { readFileSync } from 'node:fs';
import { UsageError, type Command } from '../bin/command.ts';

/** Connections the load tool keeps per source address: far below the ephemeral range, so the client kernel's port
 * search stays cheap (past a few thousand per address it costs more CPU than the server's work). */
export const CONNECTIONS_PER_ADDRESS = 1000;
/** Files a process needs beyond its sockets: the runtime, logs, the server's store. */
const FILE_HEADROOM = 256;

export interface HostFacts {
  openFiles: { soft: number | null; hard: number | null };
  nrOpen: number | null;
  fileMax: number | null;
  filesInUse: number | null;
  ephemeralPorts: { low: number; high: number } | null;
  somaxconn: number | null;
  tcpMaxSynBacklog: number | null;
  /** tcp_mem in pages: low, pressure, high. */
  tcpMemPages: [number, number, number] | null;
  tcpTwReuse: number | null;
  cores: number;
}

export interface Advice {
  target: number;
  serverProcesses: number;
  loadWorkers: number;
  sourceAddresses: number;
  /** Lines saying what blocks the target on this host and how to lift it; empty when nothing does. */
  changes: string[];
}

function read(path: string): string | null {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return null;
  }
}

function int(text: string | null): number | null {
  if (text === null || !/^-?\d+$/.test(text)) return null;
  return Number(text);
}

function ints(text: string | null): number[] | null {
  if (text === null) return null;
  const values = text.split(/\s+/).map(Number);
  return values.every(Number.isSafeInteger) ? values : null;
}

/** Reads the facts from /proc (Linux); a value the host does not expose is null. */
export function readHostFacts(): HostFacts {
  const limits = read('/proc/self/limits') ?? '';
  const files = /^Max open files\s+(\S+)\s+(\S+)/m.exec(limits);
  const limit = (text: string | undefined) => (text === undefined ? null : text === 'unlimited' ? Number.POSITIVE_INFINITY : int(text));
  const ports = ints(read('/proc/sys/net/ipv4/ip_local_port_range'));
  const mem = ints(read('/proc/sys/net/ipv4/tcp_mem'));
  const fileNr = ints(read('/proc/sys/fs/file-nr'));
  return {
    openFiles: { soft: limit(files?.[1]), hard: limit(files?.[2]) },
    nrOpen: int(read('/proc/sys/fs/nr_open')),
    fileMax: int(read('/proc/sys/fs/file-max')),
    filesInUse: fileNr?.[0] ?? null,
    ephemeralPorts: ports && ports.length === 2 ? { low: ports[0]!, high: ports[1]! } : null,
    somaxconn: int(read('/proc/sys/net/core/somaxconn')),
    tcpMaxSynBacklog: int(read('/proc/sys/net/ipv4/tcp_max_syn_backlog')),
    tcpMemPages: mem && mem.length === 3 ? [mem[0]!, mem[1]!, mem[2]!] : null,
    tcpTwReuse: int(read('/proc/sys/net/ipv4/tcp_tw_reuse')),
    cores: Number(read('/proc/cpuinfo')?.match(/^processor\s*:/gm)?.length ?? 1),
  };
}

/**
 * What reaching `target` sessions takes on a host with `facts`: how many server and load processes the per-process
 * file limit forces, how many source addresses, and which settings stand in the way.
 */
export function advise(facts: HostFacts, target: number): Advice {
  const changes: string[] = [];
  const perProcess = Math.max(1, (facts.openFiles.hard ?? 1024) - FILE_HEADROOM);
  const serverProcesses = Math.ceil(target / perProcess);
  const loadWorkers = Math.ceil(target / perProcess);
  const sourceAddresses = Math.ceil(target / CONNECTIONS_PER_ADDRESS);
  const soft = facts.openFiles.soft ?? 0;
  const hard = facts.openFiles.hard ?? 0;
  if (soft < Math.min(hard, target + FILE_HEADROOM)) {
    changes.push(`raise the soft open-file limit to the hard one (${hard}) in the shell that starts the server and the load tool: ulimit -n ${hard}`);
  }
  if (hard < target + FILE_HEADROOM) {
    const canRaise = facts.nrOpen !== null && facts.nrOpen >= target + FILE_HEADROOM;
    changes.push(
      `one process holds at most ${perProcess} sockets here (hard limit ${hard}): run ${serverProcesses} server processes (serve --workers, issue 8) and ${loadWorkers} load workers, or ` +
        (canRaise ? `raise the hard limit (as root: ulimit -Hn ${target + FILE_HEADROOM}, or LimitNOFILE= in a systemd unit, or /etc/security/limits.conf)` : `raise fs.nr_open to at least ${target + FILE_HEADROOM} first (sysctl -w fs.nr_open=${target + FILE_HEADROOM}), then the hard limit`),
    );
  }
  // Every loopback session is two sockets on this host: the client's and the server's.
  const sockets = 2 * target + (facts.filesInUse ?? 0);
  if (facts.fileMax !== null && facts.fileMax < sockets) changes.push(`fs.file-max is ${facts.fileMax}; ${sockets} files are needed for both ends on one host: sysctl -w fs.file-max=${2 * sockets}`);
  if (facts.ephemeralPorts) {
    const range = facts.ephemeralPorts.high - facts.ephemeralPorts.low + 1;
    if (range < CONNECTIONS_PER_ADDRESS * 2) changes.push(`the ephemeral port range has only ${range} ports: sysctl -w net.ipv4.ip_local_port_range="10000 65000"`);
    changes.push(`use ${sourceAddresses} loopback source addresses (--local-address 127.0.0.2-127.0.0.${1 + Math.min(254, sourceAddresses)}${sourceAddresses > 254 ? ', then 127.0.1.x' : ''}): about ${CONNECTIONS_PER_ADDRESS} connections each, well inside the ${range} ephemeral ports of one address`);
  }
  if (facts.somaxconn !== null && facts.somaxconn < 4096) changes.push(`net.core.somaxconn is ${facts.somaxconn}: a connection burst overflows the listen backlog; sysctl -w net.core.somaxconn=8192`);
  if (facts.tcpMaxSynBacklog !== null && facts.tcpMaxSynBacklog < 4096) changes.push(`net.ipv4.tcp_max_syn_backlog is ${facts.tcpMaxSynBacklog}: sysctl -w net.ipv4.tcp_max_syn_backlog=8192`);
  // tcp_mem counts buffered data, not sockets: idle sessions with empty buffers hardly touch it, so it caps the
  // throughput scenarios (megabytes in flight) rather than the session count. It is shown, not advised on.
  if (facts.tcpTwReuse !== null && facts.tcpTwReuse === 0) changes.push('net.ipv4.tcp_tw_reuse is 0: addresses in TIME_WAIT block the next run\'s ports; sysctl -w net.ipv4.tcp_tw_reuse=1 (the load tool also rotates source addresses)');
  return { target, serverProcesses, loadWorkers, sourceAddresses, changes };
}

function show(value: number | null): string {
  if (value === null) return 'unknown';
  return value === Number.POSITIVE_INFINITY ? 'unlimited' : String(value);
}

export function renderHostCheck(facts: HostFacts, advice: Advice): string {
  const lines = [
    'Host limits that cap connection scale',
    `  open files per process     soft ${show(facts.openFiles.soft)}, hard ${show(facts.openFiles.hard)}`,
    `  fs.nr_open                 ${show(facts.nrOpen)}   (the most a hard limit can be raised to)`,
    `  fs.file-max                ${show(facts.fileMax)}   (${show(facts.filesInUse)} in use)`,
    `  ephemeral ports            ${facts.ephemeralPorts ? `${facts.ephemeralPorts.low}-${facts.ephemeralPorts.high}` : 'unknown'}   (per source address and destination)`,
    `  net.core.somaxconn         ${show(facts.somaxconn)}`,
    `  tcp_max_syn_backlog        ${show(facts.tcpMaxSynBacklog)}`,
    `  tcp_mem (pages)            ${facts.tcpMemPages ? facts.tcpMemPages.join(' ') : 'unknown'}   (buffered data, not sockets)`,
    `  tcp_tw_reuse               ${show(facts.tcpTwReuse)}`,
    `  cores                      ${facts.cores}`,
    '',
    `For ${advice.target} sessions on this host: ${advice.serverProcesses} server process(es), ${advice.loadWorkers} load worker(s), ${advice.sourceAddresses} source address(es).`,
    ...(advice.changes.length === 0 ? ['Nothing on this host stands in the way.'] : advice.changes.map((c) => `  - ${c}`)),
    '',
    'load/tune-host.sh applies the sysctl and limit changes where you are allowed to (run it as root).',
  ];
  return `${lines.join('\n')}\n`;
}

const HELP = `Usage: tickwire host-check [--connections N] [--json]

Prints the limits of this host that cap how many WebSocket sessions one server and one load test can hold (open
files per process, fs.nr_open, fs.file-max, the ephemeral port range, somaxconn, the SYN backlog, TCP memory) and
what to change to reach N sessions (default 100000). Reads /proc; changes nothing (load/tune-host.sh does).

  --connections <n>   the target number of sessions (default 100000)
  --json              print the facts and the advice as JSON

Exit codes: 0 always after printing, 2 bad arguments.`;

export const hostCheckCommand: Command = {
  name: 'host-check',
  summary: 'show the host limits that cap connection scale, and what to change',
  help: HELP,
  async run(args: string[]): Promise<number> {
    let target = 100_000;
    let json = false;
    for (let i = 0; i < args.length; i++) {
      const arg = args[i]!;
      if (arg === '--json') json = true;
      else if (arg === '--connections') {
        const text = args[++i];
        if (text === undefined || !/^[1-9]\d*$/.test(text)) throw new UsageError(`--connections needs a positive integer (got '${text ?? ''}')`);
        target = Number(text);
      } else throw new UsageError(`unknown option ${arg}`);
    }
    const facts = readHostFacts();
    const advice = advise(facts, target);
    process.stdout.write(json ? `${JSON.stringify({ facts, advice }, (_k, v: unknown) => (v === Number.POSITIVE_INFINITY ? 'unlimited' : v), 2)}\n` : renderHostCheck(facts, advice));
    return 0;
  },
};

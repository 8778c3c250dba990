// What `--redis <url>` names: one Redis server, or a Redis Cluster by its seed nodes.
//
//   redis://host:port, rediss://host:port              one Redis (ioredis's URL syntax: user, password, database)
//   redis+cluster://host1:port1,host2:port2,...        a Redis Cluster; the nodes are seeds, the client learns the
//   rediss+cluster://[user:password@]host:port,...     rest of the cluster from them (CLUSTER SLOTS); rediss: TLS
//
// A cluster URL has no path (a cluster has only database 0) and no query. IPv6 seeds are written [::1]:7000. Kept
// free of ioredis so that the configuration can check a URL without loading the client.

export interface SeedNode {
  host: string;
  port: number;
}

export interface ClusterUrl {
  nodes: SeedNode[];
  username?: string;
  password?: string;
  tls: boolean;
}

const CLUSTER_URL = /^(rediss?)\+cluster:\/\/(?:([^@/]*)@)?([^/?#@]+)\/?$/;
const SINGLE_URL = /^rediss?:\/\/[^/\s]/;

export function isClusterUrl(url: string): boolean {
  return /^rediss?\+cluster:\/\//.test(url);
}

/** The seed nodes and credentials of a cluster URL; throws RangeError (saying what is wrong) for a bad one. */
export function parseClusterUrl(url: string): ClusterUrl {
  const match = CLUSTER_URL.exec(url);
  if (!match) throw new RangeError(`a cluster URL is redis+cluster://host:port[,host:port...] (got '${url}')`);
  const scheme = match[1]!;
  const userinfo = match[2];
  const nodes = match[3]!.split(',').map((text): SeedNode => {
    const node = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]+)):([0-9]{1,5})$/.exec(text.trim());
    const port = Number(node?.[3]);
    if (!node || port < 1 || port > 65535) throw new RangeError(`a cluster seed node is host:port (got '${text}' in '${url}')`);
    return { host: node[1] ?? node[2]!, port };
  });
  const out: ClusterUrl = { nodes, tls: scheme === 'rediss' };
  if (userinfo !== undefined && userinfo !== '') {
    const colon = userinfo.indexOf(':');
    const user = decodeURIComponent(colon < 0 ? userinfo : userinfo.slice(0, colon));
    if (user !== '') out.username = user;
    if (colon >= 0) out.password = decodeURIComponent(userinfo.slice(colon + 1));
  }
  return out;
}

/** Why `url` cannot name a Redis deployment, or undefined when it can. */
export function redisUrlProblem(url: string): string | undefined {
  if (isClusterUrl(url)) {
    try {
      parseClusterUrl(url);
      return undefined;
    } catch (error) {
      return (error as Error).message;
    }
  }
  return SINGLE_URL.test(url) ? undefined : `redisUrl must be a redis://, rediss:// or redis+cluster:// URL (got '${url}')`;
}

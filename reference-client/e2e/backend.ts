// Which implementation runs the expensive curve operations. noble (pure JavaScript) is the portable reference;
// node:crypto (OpenSSL) is a fast path for X25519 and for the Ed25519 equation inside XEdDSA verification, used
// when present. Tests check both give identical results. No module import is needed: Node ≥ 20.16 exposes
// process.getBuiltinModule, and elsewhere the fast path is simply absent.

export type NodeCrypto = typeof import('node:crypto');
export type BackendName = 'noble' | 'node';

function loadNodeCrypto(): NodeCrypto | undefined {
  const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  try {
    return proc?.getBuiltinModule?.('node:crypto') as NodeCrypto | undefined;
  } catch {
    return undefined;
  }
}

export const nodeCrypto: NodeCrypto | undefined = loadNodeCrypto();

let active: BackendName = nodeCrypto ? 'node' : 'noble';

/** Selects the backend; 'node' falls back to 'noble' where node:crypto is unavailable. Returns the one in force. */
export function setCryptoBackend(name: BackendName): BackendName {
  if (name !== 'noble' && name !== 'node') throw new RangeError(`unknown backend ${String(name)}`);
  active = name === 'node' && nodeCrypto ? 'node' : 'noble';
  return active;
}

export function cryptoBackend(): BackendName {
  return active;
}

export function base64Url(bytes: Uint8Array): string {
  let binary = '';
  for (let i = 0; i < bytes.length; i++) binary += String.fromCharCode(bytes[i]!);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

// Preloaded into server processes by the memory measurement only (node --expose-gc --import this file): SIGUSR2 runs
// a full garbage collection, so "memory per session" counts live objects rather than whatever garbage happened to be
// waiting for the next collection (at 10,000 sessions, one young generation of garbage is ±1.6 KB per session).
// Plain JavaScript so that it loads before any TypeScript loader; it touches nothing of the server.
process.on('SIGUSR2', () => {
  if (typeof globalThis.gc === 'function') {
    globalThis.gc();
    globalThis.gc();
  }
});

// Reads the server's Prometheus text from GET /metrics (the server is a black box; this is its operator interface).
export type Samples = Map<string, number>;

/** Every sample line `name{labels} value`, keyed by the text before the value. */
export async function scrape(baseUrl: string): Promise<Samples> {
  const response = await fetch(new URL('/metrics', baseUrl), { signal: AbortSignal.timeout(10_000) });
  const text = await response.text();
  const samples: Samples = new Map();
  if (response.status !== 200) return samples;
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const cut = line.lastIndexOf(' ');
    const value = Number(line.slice(cut + 1));
    if (Number.isFinite(value)) samples.set(line.slice(0, cut), value);
  }
  return samples;
}

/** The sum of every series of a metric (all label sets); undefined when the server does not expose it. */
export function total(samples: Samples, name: string): number | undefined {
  let sum: number | undefined;
  for (const [key, value] of samples) {
    if (key === name || key.startsWith(`${name}{`)) sum = (sum ?? 0) + value;
  }
  return sum;
}

/** Mean of a histogram over an interval: (Δsum / Δcount) between two scrapes. */
export function histogramMean(before: Samples, after: Samples, name: string): number | undefined {
  const dSum = (total(after, `${name}_sum`) ?? NaN) - (total(before, `${name}_sum`) ?? 0);
  const dCount = (total(after, `${name}_count`) ?? NaN) - (total(before, `${name}_count`) ?? 0);
  return dCount > 0 ? dSum / dCount : undefined;
}

export function delta(before: Samples, after: Samples, name: string): number | undefined {
  const a = total(after, name);
  return a === undefined ? undefined : a - (total(before, name) ?? 0);
}

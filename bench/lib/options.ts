// Command-line option parsing the benchmarks share (node:util's parseArgs gives strings; these give numbers).

/** A positive integer option (`--rate 2_000` allowed), or `fallback` when it was not given; RangeError otherwise. */
export function positive(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (!/^[1-9][0-9]*$/.test(value.replace(/_/g, ''))) throw new RangeError(`--${name} must be a positive integer (got '${value}')`);
  return Number(value.replace(/_/g, ''));
}

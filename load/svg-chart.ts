// A small SVG line chart for the HTML report (load/html-report.ts): linear axes with "nice" ticks, grid lines,
// axis labels, a legend, optional vertical markers (the run's phases), and one polyline per run of defined points
// (a null value breaks the line). The output is a self-contained <svg> element; every text in it is escaped.

/** Escapes text for HTML and SVG, in element content and in quoted attribute values alike. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export interface Series {
  name: string;
  /** [x, y] in data units; a null (or non-finite) y leaves a gap. */
  points: ReadonlyArray<readonly [number, number | null]>;
  color: string;
  dashed?: boolean;
  /** A dot per point, with its value as a tooltip (default: when the series has at most MARKER_LIMIT points). */
  dots?: boolean;
}

export interface Tick {
  value: number;
  label: string;
}

export interface Axis {
  label: string;
  min?: number;
  max?: number;
  /** Fixed ticks (the percentile axis); otherwise about five "nice" ones between min and max. */
  ticks?: Tick[];
  /** The label of a computed tick (default: compact decimal). */
  format?: (value: number) => string;
}

export interface LineChart {
  /** A stable name, set as data-chart on the <svg> (tests and styling find charts by it). */
  id: string;
  title: string;
  x: Axis;
  y: Axis;
  series: Series[];
  /** Vertical dashed lines at x, labelled (phases of the run). */
  markers?: Array<{ x: number; label: string }>;
  width?: number;
  height?: number;
}

/** Colours that stay apart for colour-blind readers (Okabe and Ito). */
export const PALETTE = ['#0072b2', '#d55e00', '#009e73', '#cc79a7', '#e69f00', '#56b4e9', '#000000'] as const;

/** Series with at most this many points get a marker per point, with its value as a tooltip. */
const MARKER_LIMIT = 60;
const MARGIN = { top: 12, right: 18, bottom: 62, left: 64 };
/** Rough width of one legend character at font-size 12, for laying the legend out without measuring text. */
const CHAR_WIDTH = 6.6;
const LEGEND_ROW = 16;
/** The same for the phase markers' labels (font-size 11), and how many rows of them fit before they reuse the first. */
const MARKER_CHAR_WIDTH = 6.1;
const MARKER_ROWS = 4;

/** Compact decimal labels: 1.5k, 2M, 0.25, 12. */
export function compact(value: number): string {
  const abs = Math.abs(value);
  if (abs >= 1e6) return `${trim(value / 1e6)}M`;
  if (abs >= 1e4) return `${trim(value / 1e3)}k`;
  return trim(value);
}

function trim(value: number): string {
  return String(Number(value.toPrecision(4)));
}

/** About `count` ticks covering [min, max] at a step of 1, 2, 2.5 or 5 times a power of ten. */
export function niceTicks(min: number, max: number, count = 5): { min: number; max: number; step: number; values: number[] } {
  if (!(max > min)) max = min + 1;
  const raw = (max - min) / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = ([1, 2, 2.5, 5, 10].find((m) => m * power >= raw) ?? 10) * power;
  const lo = Math.floor(min / step) * step;
  const hi = Math.ceil(max / step) * step;
  const values: number[] = [];
  for (let v = lo; v <= hi + step / 2; v += step) values.push(Number(v.toPrecision(12)));
  return { min: lo, max: hi, step, values };
}

function extent(values: number[]): [number, number] | undefined {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return lo <= hi ? [lo, hi] : undefined;
}

function round(n: number): string {
  return String(Math.round(n * 10) / 10);
}

/** Renders `chart` as one <svg> element. */
export function renderLineChart(chart: LineChart): string {
  const width = chart.width ?? 540;
  const height = chart.height ?? 280;
  const plotW = width - MARGIN.left - MARGIN.right;
  const plotH = height - MARGIN.top - MARGIN.bottom;
  const defined = (y: number | null): y is number => y !== null && Number.isFinite(y);
  const xs = chart.series.flatMap((s) => s.points.filter(([x, y]) => Number.isFinite(x) && defined(y)).map(([x]) => x));
  const ys = chart.series.flatMap((s) => s.points.map(([, y]) => y).filter(defined));

  const xRange = extent(xs) ?? [0, 1];
  const xTicks = chart.x.ticks ? undefined : niceTicks(chart.x.min ?? xRange[0], chart.x.max ?? xRange[1]);
  const xMin = chart.x.min ?? xTicks?.min ?? xRange[0];
  const xMax = chart.x.max ?? xTicks?.max ?? xRange[1];
  const yRange = extent(ys) ?? [0, 1];
  const yTicks = chart.y.ticks ? undefined : niceTicks(chart.y.min ?? Math.min(0, yRange[0]), chart.y.max ?? yRange[1]);
  const yMin = chart.y.min ?? yTicks?.min ?? yRange[0];
  const yMax = chart.y.max ?? yTicks?.max ?? yRange[1];
  const sx = (x: number) => MARGIN.left + ((x - xMin) / (xMax - xMin || 1)) * plotW;
  const sy = (y: number) => MARGIN.top + plotH - ((y - yMin) / (yMax - yMin || 1)) * plotH;
  const fx = chart.x.format ?? compact;
  const fy = chart.y.format ?? compact;
  const xTickList = (chart.x.ticks ?? xTicks!.values.map((value) => ({ value, label: fx(value) }))).filter((t) => t.value >= xMin && t.value <= xMax);
  const yTickList = (chart.y.ticks ?? yTicks!.values.map((value) => ({ value, label: fy(value) }))).filter((t) => t.value >= yMin && t.value <= yMax);

  // The legend: rows under the x-axis label, wrapping when a row runs out of width; extra rows make the chart taller.
  const legend: Array<{ series: Series; x: number; y: number }> = [];
  let lx = MARGIN.left;
  let ly = MARGIN.top + plotH + 52;
  for (const series of chart.series) {
    const w = 26 + series.name.length * CHAR_WIDTH + 14;
    if (lx + w > width && lx > MARGIN.left) {
      lx = MARGIN.left;
      ly += LEGEND_ROW;
    }
    legend.push({ series, x: lx, y: ly });
    lx += w;
  }
  const fullHeight = height + (ly - (MARGIN.top + plotH + 52));

  const out: string[] = [];
  out.push(`<svg class="chart" data-chart="${escapeHtml(chart.id)}" viewBox="0 0 ${width} ${fullHeight}" role="img" aria-label="${escapeHtml(chart.title)}">`);
  out.push(`<title>${escapeHtml(chart.title)}</title>`);
  out.push('<g class="grid">');
  for (const t of yTickList) out.push(`<line x1="${MARGIN.left}" x2="${MARGIN.left + plotW}" y1="${round(sy(t.value))}" y2="${round(sy(t.value))}"/>`);
  out.push('</g><g class="axis">');
  out.push(`<line x1="${MARGIN.left}" x2="${MARGIN.left}" y1="${MARGIN.top}" y2="${MARGIN.top + plotH}"/>`);
  out.push(`<line x1="${MARGIN.left}" x2="${MARGIN.left + plotW}" y1="${MARGIN.top + plotH}" y2="${MARGIN.top + plotH}"/>`);
  for (const t of xTickList) {
    const x = round(sx(t.value));
    out.push(`<line x1="${x}" x2="${x}" y1="${MARGIN.top + plotH}" y2="${MARGIN.top + plotH + 5}"/>`);
    out.push(`<text x="${x}" y="${MARGIN.top + plotH + 18}" text-anchor="middle">${escapeHtml(t.label)}</text>`);
  }
  for (const t of yTickList) {
    const y = round(sy(t.value));
    out.push(`<line x1="${MARGIN.left - 5}" x2="${MARGIN.left}" y1="${y}" y2="${y}"/>`);
    out.push(`<text x="${MARGIN.left - 8}" y="${y}" dy="0.32em" text-anchor="end">${escapeHtml(t.label)}</text>`);
  }
  out.push(`<text class="label" x="${MARGIN.left + plotW / 2}" y="${MARGIN.top + plotH + 36}" text-anchor="middle">${escapeHtml(chart.x.label)}</text>`);
  out.push(`<text class="label" transform="translate(14 ${MARGIN.top + plotH / 2}) rotate(-90)" text-anchor="middle">${escapeHtml(chart.y.label)}</text>`);
  out.push('</g>');

  // Marker labels go on the first row where they overlap no earlier label; near the right edge they end at the line.
  const rowEnds: number[] = [];
  for (const m of [...(chart.markers ?? [])].sort((a, b) => a.x - b.x)) {
    if (!(m.x >= xMin && m.x <= xMax)) continue;
    const x = sx(m.x);
    const w = m.label.length * MARKER_CHAR_WIDTH + 6;
    const toLeft = x + w > MARGIN.left + plotW;
    const start = toLeft ? x - w : x;
    let row = rowEnds.findIndex((end) => end <= start);
    if (row < 0) row = rowEnds.length < MARKER_ROWS ? rowEnds.length : 0;
    rowEnds[row] = Math.max(rowEnds[row] ?? 0, start + w);
    const label = `<text x="${round(x)}" y="${MARGIN.top + 2 + row * 13}" dx="${toLeft ? -3 : 3}" dy="0.8em"${toLeft ? ' text-anchor="end"' : ''}>${escapeHtml(m.label)}</text>`;
    out.push(`<g class="marker-line"><line x1="${round(x)}" x2="${round(x)}" y1="${MARGIN.top}" y2="${MARGIN.top + plotH}"/>${label}</g>`);
  }

  if (ys.length === 0) out.push(`<text class="empty" x="${MARGIN.left + plotW / 2}" y="${MARGIN.top + plotH / 2}" text-anchor="middle">no data</text>`);
  for (const s of chart.series) {
    const name = escapeHtml(s.name);
    const style = `stroke="${escapeHtml(s.color)}"${s.dashed ? ' stroke-dasharray="5 3"' : ''}`;
    out.push(`<g class="series">`);
    // One polyline per run of defined points; a lone point between gaps is a dot.
    let run: Array<[string, string]> = [];
    const flush = () => {
      if (run.length === 1) out.push(`<circle data-series="${name}" r="2.5" fill="${escapeHtml(s.color)}" cx="${run[0]![0]}" cy="${run[0]![1]}"/>`);
      else if (run.length > 1) out.push(`<polyline data-series="${name}" fill="none" stroke-width="1.8" ${style} points="${run.map(([x, y]) => `${x},${y}`).join(' ')}"/>`);
      run = [];
    };
    for (const [x, y] of s.points) {
      if (!Number.isFinite(x) || !defined(y)) flush();
      else run.push([round(sx(x)), round(sy(y))]);
    }
    flush();
    const shown = s.points.filter(([x, y]) => Number.isFinite(x) && defined(y));
    if (s.dots ?? (shown.length > 1 && shown.length <= MARKER_LIMIT)) {
      for (const [x, y] of shown) out.push(`<circle class="point" r="2" fill="${escapeHtml(s.color)}" cx="${round(sx(x))}" cy="${round(sy(y!))}"><title>${name}: ${escapeHtml(fy(y!))} at ${escapeHtml(fx(x))}</title></circle>`);
    }
    out.push('</g>');
  }

  out.push('<g class="legend">');
  for (const { series: s, x, y } of legend) {
    out.push(`<line x1="${round(x)}" x2="${round(x + 20)}" y1="${y}" y2="${y}" stroke-width="2.5" stroke="${escapeHtml(s.color)}"${s.dashed ? ' stroke-dasharray="5 3"' : ''}/>`);
    out.push(`<text x="${round(x + 26)}" y="${y}" dy="0.32em">${escapeHtml(s.name)}</text>`);
  }
  out.push('</g></svg>');
  return out.join('\n');
}

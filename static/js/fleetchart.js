// The fleet chart's geometry, as pure functions: a scaler timeline in, SVG path strings out.
// Coordinates are in a `width` x `height` box (y down); values hold until the next point.

/** The smallest of 1, 2, 5, 10, 20, 50, ... that is at least `value` (and at least 1). */
export function niceCeiling(value) {
  if (!(value > 1)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) if (step * power >= value) return step * power;
  return 10 * power;
}

/** Visible backlog plus messages in flight: the work the fleet has not finished. */
export const backlogOf = (point) => (Number(point.backlog) || 0) + (Number(point.in_flight) || 0);

const round = (n) => Math.round(n * 10) / 10;

/**
 * Paths for the points of `timeline` (oldest first, `t` in epoch seconds) that fall in the
 * `windowS` seconds ending at `endS` (default: the newest point). The point just before the
 * window still counts: its value holds into the window from its left edge.
 * Returns {workers, desired} step lines scaled to `workersMax`, {backlog, inFlight} step areas
 * scaled to `backlogMax` (default: a round number above the window's largest backlog), and the
 * scales used; every path is "" for an empty timeline.
 */
export function fleetPaths(timeline, { width, height, windowS, endS, workersMax, backlogMax }) {
  const points = (timeline ?? []).filter((p) => Number.isFinite(p?.t));
  const end = endS ?? points.at(-1)?.t ?? 0;
  const start = end - windowS;
  let first = 0;
  while (first + 1 < points.length && points[first + 1].t <= start) first += 1;
  const shown = points.slice(first).filter((p) => p.t <= end);

  const workerPeak = Math.max(0, ...shown.map((p) => Math.max(p.workers ?? 0, p.desired ?? 0)));
  const wMax = Math.max(1, workersMax ?? 0, workerPeak);
  const bMax = backlogMax ?? niceCeiling(Math.max(0, ...shown.map(backlogOf)));
  const scales = { workersMax: wMax, backlogMax: bMax, startS: start, endS: end };
  if (shown.length === 0) return { workers: "", desired: "", backlog: "", inFlight: "", ...scales };

  const x = (t) => round((Math.min(Math.max(t, start), end) - start) * (width / windowS));
  const y = (value, max) => round(height * (1 - Math.min(Math.max(value, 0), max) / max));
  const steps = (value, max) => shown.map((p) => [x(p.t), y(value(p), max)]);

  return {
    workers: stepLine(steps((p) => p.workers ?? 0, wMax), width),
    desired: stepLine(steps((p) => p.desired ?? p.workers ?? 0, wMax), width),
    backlog: stepArea(steps(backlogOf, bMax), width, height),
    inFlight: stepArea(steps((p) => Number(p.in_flight) || 0, bMax), width, height),
    ...scales,
  };
}

/** "M x0 y0 H x1 V y1 ..." through [x, y] steps, held to the right edge `width`. */
function stepLine(steps, width) {
  let [[cornerX, level]] = steps;
  let d = `M${cornerX} ${level}`;
  for (const [x, y] of steps.slice(1)) {
    if (y === level) continue;
    d += `H${x}V${y}`;
    [cornerX, level] = [x, y];
  }
  return cornerX < width ? `${d}H${width}` : d;
}

/** The step line's outline closed down to the baseline `height`: a fillable area. */
function stepArea(steps, width, height) {
  const line = stepLine(steps, width);
  return `M${steps[0][0]} ${height}V${steps[0][1]}${line.replace(/^M[^HV]*/, "")}V${height}Z`;
}

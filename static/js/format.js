// Pure formatting and arithmetic for the page: values in, values out, no DOM.

/** A model score (0..1) as a percentage for people: "82.4%", "<0.1%", "–" if not a number. */
export function formatPercent(score) {
  if (typeof score !== "number" || !Number.isFinite(score)) return "–";
  const percent = Math.min(Math.max(score, 0), 1) * 100;
  if (percent > 0 && percent < 0.1) return "<0.1%";
  return `${percent.toFixed(1)}%`;
}

/** The width of a confidence bar, in percent of its track, clamped to 0..100. */
export function barWidthPercent(score) {
  if (typeof score !== "number" || !Number.isFinite(score)) return 0;
  return Math.round(Math.min(Math.max(score, 0), 1) * 1000) / 10;
}

/** A duration: "4.2 s" under a minute, then "1:05" (m:ss), then "1:02:05" (h:mm:ss). */
export function formatElapsed(elapsedMs) {
  const ms = Math.max(0, Number(elapsedMs) || 0);
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const totalS = Math.floor(ms / 1000);
  const h = Math.floor(totalS / 3600);
  const m = Math.floor((totalS % 3600) / 60);
  const s = String(totalS % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

/** Images per second over `elapsedMs`; 0 before any time has passed. */
export function ratePerSecond(count, elapsedMs) {
  if (!(elapsedMs > 0) || !(count > 0)) return 0;
  return count / (elapsedMs / 1000);
}

/** A rate for the header: "3.4 img/s", or "12 img/s" once it is at least ten. */
export function formatRate(rate) {
  if (!(rate > 0) || !Number.isFinite(rate)) return "0.0 img/s";
  return rate >= 10 ? `${Math.round(rate)} img/s` : `${rate.toFixed(1)} img/s`;
}

/** "done/total", the header's progress. */
export function formatProgress(done, total) {
  return `${done}/${total}`;
}

/** "efficientnet_lite0 · worker-1 · batch 84 ms": which model and worker made a result
 * (" · cached" when the result cache answered with that classification). */
export function formatOrigin(result) {
  const parts = [result.model, result.worker];
  const inferenceMs = result.timings?.inference_ms;
  if (typeof inferenceMs === "number") parts.push(`batch\u00a0${Math.round(inferenceMs)}\u00a0ms`);
  if (result.cached === true) parts.push("cached");
  return parts.filter(Boolean).join(" · ");
}

/** Dollars for people: "$1.23", "$0.0042" (two significant digits under a cent), "–" if unknown. */
export function formatDollars(amount) {
  if (typeof amount !== "number" || !Number.isFinite(amount)) return "–";
  if (amount === 0) return "$0";
  if (amount < 0.0001) return "<$0.0001";
  if (amount < 0.01) return `$${amount.toPrecision(2)}`;
  return `$${amount.toFixed(2)}`;
}

/** A figure with at most one decimal, none from ten up: "2.4", "24", "–" if not a number. */
export function formatFigure(value) {
  if (typeof value !== "number" || !Number.isFinite(value)) return "–";
  return Math.abs(value) >= 10 ? String(Math.round(value)) : String(Math.round(value * 10) / 10);
}

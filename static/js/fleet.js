// The header's fleet chart: polls GET /v1/scaler every second while the page is visible and
// draws workers and backlog over time, with what the scaler measured (a worker's rate, a
// boot's time, each beside its configured guess), the cost so far and its last decisions.
// A 404 (a gateway without a scaler) hides it for good.

import { fleetPaths } from "./fleetchart.js";
import { formatDollars, formatFigure } from "./format.js";

export const POLL_MS = 1000;
export const RETRY_MS = 5000;
/** Chart box, in SVG user units; the SVG stretches it to the section's width. */
const WIDTH = 600;
const HEIGHT = 64;
const NARROW = "(max-width: 560px)";
/** Scale events listed, newest first. */
const DECISIONS_SHOWN = 3;

const SVG = "http://www.w3.org/2000/svg";

function el(tag, attributes = {}, text = "") {
  const element = tag.startsWith("svg:")
    ? document.createElementNS(SVG, tag.slice(4))
    : document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, value);
  if (text) element.textContent = text;
  return element;
}

function swatch(kind) {
  return el("span", { class: `fleet-key fleet-key--${kind}`, "aria-hidden": "true" });
}

/** The section's elements, built once: legend, axes and the SVG with its four paths. */
function build(section) {
  const legend = el("p", { class: "fleet-legend" });
  const workers = el("strong", { "data-testid": "fleet-workers" });
  const backlog = el("strong", { "data-testid": "fleet-backlog" });
  const inFlight = el("strong", { "data-testid": "fleet-in-flight" });
  const starting = el("span", { class: "fleet-starting", "data-testid": "fleet-starting" });
  const item = (...children) => {
    const span = el("span", { class: "fleet-item" });
    span.append(...children);
    return span;
  };
  legend.append(
    item(swatch("workers"), "workers ", workers),
    item(swatch("desired"), "desired"),
    item(swatch("backlog"), "backlog ", backlog),
    item(swatch("in-flight"), "in flight ", inFlight),
    starting,
  );

  const chart = el("div", { class: "fleet-chart", role: "img", "data-testid": "fleet-chart" });
  const svg = el("svg:svg", {
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
    preserveAspectRatio: "none",
    "aria-hidden": "true",
    focusable: "false",
  });
  const path = (cls) => el("svg:path", { class: cls, "vector-effect": "non-scaling-stroke" });
  const paths = {
    backlog: path("fleet-backlog-area"),
    inFlight: path("fleet-in-flight-area"),
    desired: path("fleet-desired-line"),
    workers: path("fleet-workers-line"),
  };
  svg.append(paths.backlog, paths.inFlight, paths.desired, paths.workers);
  const axis = (cls) => el("span", { class: `fleet-axis ${cls}`, "aria-hidden": "true" });
  const axes = {
    workersTop: axis("fleet-axis--lt"),
    backlogTop: axis("fleet-axis--rt"),
    since: axis("fleet-axis--lb"),
  };
  chart.append(svg, axes.workersTop, axes.backlogTop, axes.since, axis("fleet-axis--rb"));
  chart.lastChild.textContent = "now";

  const figures = el("p", { class: "fleet-legend fleet-figures", "data-testid": "fleet-figures" });
  const figure = (testId) => el("strong", { "data-testid": testId });
  const guess = () => el("span", { class: "fleet-guess" });
  const numbers = {
    rate: figure("fleet-rate"),
    rateGuess: guess(),
    boot: figure("fleet-boot"),
    bootGuess: guess(),
    cost: figure("fleet-cost"),
    costPer1000: figure("fleet-cost-per-1000"),
    scaledBy: el("span", { class: "fleet-item", "data-testid": "fleet-scaled-by" }),
  };
  figures.append(
    item("worker ", numbers.rate, numbers.rateGuess),
    item("boot ", numbers.boot, numbers.bootGuess),
    item("cost ", numbers.cost),
    item(numbers.costPer1000, " per 1,000 images"),
    numbers.scaledBy,
  );
  const decisions = el("ol", {
    class: "fleet-decisions",
    "data-testid": "fleet-decisions",
    "aria-label": "Last scaling decisions",
  });

  section.replaceChildren(legend, chart, figures, decisions);
  return { workers, backlog, inFlight, starting, chart, paths, axes, numbers, decisions };
}

/** One capacity figure: the measured value in `value`, the guess beside it in `guess`. */
function showEstimate(value, guess, estimate, unit) {
  const measured = estimate?.measured;
  const configured = estimate?.configured;
  if (typeof measured === "number") {
    value.textContent = `${formatFigure(measured)}\u00a0${unit}`;
    guess.textContent = typeof configured === "number" ? ` (guess ${formatFigure(configured)})` : "";
  } else {
    value.textContent = `${formatFigure(configured)}\u00a0${unit}`;
    guess.textContent = " (guess; not measured yet)";
  }
}

/** "14:02:07": a scale event's time, on the page's clock. */
function clock(t) {
  return new Date(t * 1000).toLocaleTimeString([], { hour12: false });
}

/** The last few scale events, newest first: time, from → to, why. */
function showDecisions(list, decisions) {
  const shown = (decisions ?? []).slice(-DECISIONS_SHOWN).reverse();
  list.replaceChildren(
    ...shown.map((decision) => {
      const entry = el("li", { class: "fleet-decision", "data-testid": "fleet-decision" });
      const time = el("time", { datetime: new Date(decision.t * 1000).toISOString() });
      time.textContent = clock(decision.t);
      const change = el("strong", {}, `${decision.from} → ${decision.to}`);
      const reason = el("span", { class: "fleet-reason" }, decision.reason);
      const figures = Object.entries(decision.figures ?? {})
        .map(([name, value]) => `${name} ${formatFigure(value)}`)
        .join(", ");
      if (figures) reason.title = figures;
      entry.append(time, " ", change, " ", reason);
      return entry;
    }),
  );
}

/** Draw one /v1/scaler answer. */
function render(parts, scaler, windowS) {
  const timeline = scaler.timeline ?? [];
  const drawn = fleetPaths(timeline, {
    width: WIDTH,
    height: HEIGHT,
    windowS,
    workersMax: scaler.max_workers,
  });
  for (const [key, element] of Object.entries(parts.paths)) element.setAttribute("d", drawn[key]);

  const workers = scaler.workers ?? 0;
  const desired = scaler.desired ?? workers;
  const backlog = scaler.backlog ?? 0;
  const inFlight = scaler.in_flight ?? 0;
  parts.workers.textContent = `${workers}/${desired}`;
  parts.backlog.textContent = String(backlog);
  parts.inFlight.textContent = String(inFlight);
  parts.starting.textContent = scaler.starting > 0 ? `${scaler.starting} starting` : "";
  parts.axes.workersTop.textContent = `${drawn.workersMax} workers`;
  parts.axes.backlogTop.textContent = `${drawn.backlogMax} queued`;
  parts.axes.since.textContent = `−${Math.round(windowS / 60)} min`;
  showEstimate(parts.numbers.rate, parts.numbers.rateGuess, scaler.capacity?.worker_rate_ips, "img/s");
  showEstimate(parts.numbers.boot, parts.numbers.bootGuess, scaler.capacity?.boot_s, "s");
  parts.numbers.cost.textContent = formatDollars(scaler.cost);
  parts.numbers.costPer1000.textContent = formatDollars(scaler.cost_per_1000);
  // Of several gateways one sizes the fleet; the others show what it does.
  parts.numbers.scaledBy.textContent =
    scaler.leader === false ? `scaled by gateway ${scaler.leader_id ?? "(none yet)"}` : "";
  showDecisions(parts.decisions, scaler.decisions);
  const max = scaler.max_workers == null ? "" : ` (at most ${scaler.max_workers})`;
  parts.chart.setAttribute(
    "aria-label",
    `Workers: ${workers} running of ${desired} desired${max}` +
      `${scaler.starting > 0 ? `, ${scaler.starting} starting` : ""}. ` +
      `Backlog: ${backlog} queued and ${inFlight} in flight. ` +
      `Chart of the last ${Math.round(windowS / 60)} minutes.`,
  );
}

/** Poll `api.getScaler` into `section` while the page is visible; stop for good on 404. */
export function startFleet(section, api, { pollMs = POLL_MS, retryMs = RETRY_MS } = {}) {
  if (!section) return;
  const narrow = window.matchMedia(NARROW);
  let parts = null;
  let last = null;
  let timer = null;
  let gone = false;
  let busy = false;

  const windowS = () => (narrow.matches ? 120 : 300);

  async function poll() {
    timer = null;
    if (gone || busy || document.visibilityState !== "visible") return;
    busy = true;
    const answer = await api.getScaler();
    busy = false;
    if (answer.status === 404) {
      gone = true;
      section.hidden = true;
      return;
    }
    if (answer.ok) {
      last = answer.scaler;
      parts ??= build(section);
      render(parts, last, windowS());
      section.hidden = false;
    }
    section.dataset.stale = String(!answer.ok);
    schedule(answer.ok ? pollMs : retryMs);
  }

  function schedule(ms) {
    if (timer === null && !gone && document.visibilityState === "visible") {
      timer = setTimeout(poll, ms);
    }
  }

  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") {
      schedule(0);
    } else if (timer !== null) {
      clearTimeout(timer);
      timer = null;
    }
  });
  narrow.addEventListener("change", () => parts && last && render(parts, last, windowS()));
  schedule(0);
}

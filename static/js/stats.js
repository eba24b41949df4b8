// The header's figures: done/total, elapsed time since the session's first upload, images/s.

import { formatElapsed, formatProgress, formatRate, ratePerSecond } from "./format.js";

const TICK_MS = 200;

/** The figures for a session state at `nowMs`; the clock is stopped once nothing is pending. */
export function summarize({ done, total, startedAtMs, stoppedAtMs }, nowMs) {
  const endMs = stoppedAtMs ?? nowMs;
  const elapsedMs = startedAtMs == null ? 0 : Math.max(0, endMs - startedAtMs);
  return {
    progress: formatProgress(done, total),
    elapsed: formatElapsed(elapsedMs),
    rate: formatRate(ratePerSecond(done, elapsedMs)),
  };
}

/** Session counters bound to the header's elements ({progress, elapsed, rate}). */
export function createStats(elements, now = () => performance.now()) {
  const state = { done: 0, total: 0, startedAtMs: null, stoppedAtMs: null };
  let timer = null;

  function render() {
    const figures = summarize(state, now());
    for (const [key, element] of Object.entries(elements)) element.textContent = figures[key];
  }

  function setTicking(on) {
    if (on && timer === null) timer = setInterval(render, TICK_MS);
    if (!on && timer !== null) {
      clearInterval(timer);
      timer = null;
    }
  }

  return {
    /** `count` more images in the session. */
    added(count) {
      state.total += count;
      state.stoppedAtMs = null;
      render();
    },
    /** An upload began: the clock starts at the session's first and runs while work is pending. */
    uploadStarted() {
      if (state.startedAtMs === null) state.startedAtMs = now();
      state.stoppedAtMs = null;
      setTicking(true);
      render();
    },
    /** One image reached a final state (classified or error). */
    finished() {
      state.done += 1;
      if (state.done >= state.total) {
        state.stoppedAtMs = now();
        setTicking(false);
      }
      render();
    },
    get done() {
      return state.done;
    },
    get total() {
      return state.total;
    },
    render,
  };
}

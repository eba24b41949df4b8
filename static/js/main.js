// Wiring: the file picker and drop zone feed the uploader; accepted jobs are followed over
// their WebSocket; each outcome updates its card, the header figures and the live region.

import { createAnnouncer } from "./announcer.js";
import * as api from "./api.js";
import { bindRequest, createCard, setStatus, showError, showResult } from "./cards.js";
import { startFleet } from "./fleet.js";
import { followJob } from "./jobstream.js";
import { createStats } from "./stats.js";
import { createUploader } from "./uploader.js";

const byTestId = (id) => document.querySelector(`[data-testid="${id}"]`);

const input = byTestId("file-input");
const dropzone = byTestId("dropzone");
const grid = byTestId("cards");
const emptyState = byTestId("empty");

const stats = createStats({
  progress: byTestId("done-count"),
  elapsed: byTestId("elapsed"),
  rate: byTestId("rate"),
});
const announcer = createAnnouncer(byTestId("announcer"), () => ({
  done: stats.done,
  total: stats.total,
}));

/** Items (one per image: {file, card, final}) by the request id the server gave them. */
const byRequest = new Map();

function settle(item, message) {
  if (item.final) return;
  item.final = true;
  stats.finished();
  announcer.say(`${item.file.name}: ${message}`);
}

function follow(items, job) {
  job.requests.forEach((ref, index) => {
    const item = items[index];
    bindRequest(item.card, ref.request_id, job.job_id);
    byRequest.set(ref.request_id, item);
    setStatus(item.card, "queued");
  });
  followJob(job, api, {
    result(result) {
      const item = byRequest.get(result.request_id);
      if (!item || item.final) return;
      showResult(item.card, result);
      settle(item, result.error ? `error, ${result.error}` : `classified as ${result.label}`);
    },
    missing(detail) {
      for (const item of items.filter((i) => !i.final)) {
        showError(item.card, detail);
        settle(item, `error, ${detail}`);
      }
    },
    settled() {},
  });
}

const uploader = createUploader(api, {
  uploading(items) {
    stats.uploadStarted();
    for (const item of items) setStatus(item.card, "uploading");
  },
  accepted: follow,
  refused(items, answer) {
    for (const item of items) {
      showError(item.card, answer.detail);
      settle(item, `error, ${answer.detail}`);
    }
  },
});

function addFiles(fileList) {
  const items = [...fileList].map((file) => ({ file, card: createCard(file), final: false }));
  if (items.length === 0) return;
  grid.append(...items.map((item) => item.card));
  emptyState.hidden = true;
  stats.added(items.length);
  announcer.say(`${items.length} image${items.length === 1 ? "" : "s"} added`);
  uploader.add(items);
}

input.addEventListener("change", () => {
  addFiles(input.files);
  input.value = ""; // so that choosing the same file again fires `change` again
});

// Files may be dropped anywhere on the page; the drop zone shows that they will be taken.
let dragDepth = 0;
const carriesFiles = (event) => [...(event.dataTransfer?.types ?? [])].includes("Files");

window.addEventListener("dragenter", (event) => {
  if (!carriesFiles(event)) return;
  event.preventDefault();
  dragDepth += 1;
  dropzone.classList.add("is-dragging");
});
window.addEventListener("dragover", (event) => {
  if (!carriesFiles(event)) return;
  event.preventDefault();
  event.dataTransfer.dropEffect = "copy";
});
window.addEventListener("dragleave", () => {
  dragDepth = Math.max(0, dragDepth - 1);
  if (dragDepth === 0) dropzone.classList.remove("is-dragging");
});
window.addEventListener("drop", (event) => {
  if (!carriesFiles(event)) return;
  event.preventDefault();
  dragDepth = 0;
  dropzone.classList.remove("is-dragging");
  addFiles(event.dataTransfer.files);
});

startFleet(byTestId("fleet"), api);

document.documentElement.dataset.ready = "true";

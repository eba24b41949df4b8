// The DOM of one image's card: thumbnail, name, status, and the label with its top 3.
// Cards only show what they are told; they hold no state beyond their elements.

import { barWidthPercent, formatOrigin, formatPercent } from "./format.js";

export const STATUS_TEXT = Object.freeze({
  waiting: "Waiting",
  uploading: "Uploading…",
  queued: "Queued",
  classified: "Classified",
  error: "Error",
});

export const TOP_SHOWN = 3;

function el(tag, attributes = {}, text = "") {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, value);
  if (text) element.textContent = text;
  return element;
}

/** A new card for `file`, status "waiting", its thumbnail from an object URL. */
export function createCard(file) {
  const card = el("li", { class: "card", "data-testid": "card", "data-status": "waiting" });
  const figure = el("div", { class: "thumb" });
  const image = el("img", {
    alt: "",
    "data-testid": "thumbnail",
    decoding: "async",
    loading: "lazy",
  });
  image.addEventListener("error", () => figure.classList.add("thumb--broken"), { once: true });
  image.src = URL.createObjectURL(file);
  figure.append(image);

  const body = el("div", { class: "card-body" });
  const head = el("div", { class: "card-head" });
  head.append(
    el("h3", { class: "card-name", "data-testid": "card-name", title: file.name }, file.name),
    el("span", { class: "status", "data-testid": "status" }, STATUS_TEXT.waiting),
  );
  body.append(
    head,
    el("p", { class: "label", "data-testid": "label", hidden: "" }),
    el("ol", { class: "top", "data-testid": "top", hidden: "", "aria-label": "Top predictions" }),
    el("p", { class: "error", "data-testid": "error", hidden: "" }),
    el("p", { class: "meta", "data-testid": "meta", hidden: "" }),
  );
  card.append(figure, body);
  return card;
}

function part(card, testid) {
  return card.querySelector(`[data-testid="${testid}"]`);
}

/** Set the card's status ("waiting", "uploading", "queued", "classified" or "error"). */
export function setStatus(card, status) {
  card.dataset.status = status;
  part(card, "status").textContent = STATUS_TEXT[status] ?? status;
}

/** Remember which request (and job) the card stands for. */
export function bindRequest(card, requestId, jobId) {
  card.dataset.requestId = requestId;
  card.dataset.jobId = jobId;
}

/** Show a worker's result: the label, the top 3 with bars, or the result's error. */
export function showResult(card, result) {
  if (result.error) return showError(card, result.error);
  setStatus(card, "classified");
  const label = part(card, "label");
  label.textContent = result.label;
  label.hidden = false;

  const top = part(card, "top");
  top.replaceChildren(...(result.top ?? []).slice(0, TOP_SHOWN).map(topItem));
  top.hidden = top.children.length === 0;

  const meta = part(card, "meta");
  meta.textContent = formatOrigin(result);
  meta.hidden = meta.textContent === "";
  return undefined;
}

function topItem({ label, score }) {
  const item = el("li", { class: "top-item", "data-testid": "top-item" });
  const bar = el("span", { class: "bar", "aria-hidden": "true" });
  const fill = el("span", { class: "bar-fill" });
  fill.style.width = `${barWidthPercent(score)}%`;
  bar.append(fill);
  item.append(
    el("span", { class: "top-label" }, label),
    el("span", { class: "top-score", "data-testid": "score" }, formatPercent(score)),
    bar,
  );
  return item;
}

/** Show an error (the server's detail text) on the card. */
export function showError(card, detail) {
  setStatus(card, "error");
  const error = part(card, "error");
  error.textContent = detail;
  error.hidden = false;
}

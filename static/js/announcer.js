// Status changes for screen readers, through one polite live region.
// Messages are gathered for a moment; a burst is read as one summary instead of a list.

export const FLUSH_MS = 800;
export const MAX_LISTED = 3;

/** What to read for the `messages` gathered since the last flush. */
export function announcement(messages, done, total) {
  if (messages.length === 0) return "";
  if (messages.length <= MAX_LISTED) return messages.join(". ");
  return `${messages.length} updates. ${done} of ${total} images done.`;
}

/** An announcer writing to `region` (an element with aria-live). */
export function createAnnouncer(region, progress) {
  let pending = [];
  let timer = null;

  function flush() {
    timer = null;
    const { done, total } = progress();
    region.textContent = announcement(pending, done, total);
    pending = [];
  }

  return {
    say(message) {
      pending.push(message);
      timer ??= setTimeout(flush, FLUSH_MS);
    },
  };
}

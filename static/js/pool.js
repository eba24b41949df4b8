// Run async tasks with at most `limit` in flight; the rest wait their turn in order.

export function createPool(limit) {
  if (!(limit >= 1)) throw new RangeError(`pool limit must be at least 1, got ${limit}`);
  let running = 0;
  const waiting = [];

  function next() {
    while (running < limit && waiting.length > 0) {
      const { task, resolve, reject } = waiting.shift();
      running += 1;
      Promise.resolve()
        .then(task)
        .then(resolve, reject)
        .finally(() => {
          running -= 1;
          next();
        });
    }
  }

  return {
    /** Queue `task` (a function returning a promise); resolves with its result. */
    run(task) {
      return new Promise((resolve, reject) => {
        waiting.push({ task, resolve, reject });
        next();
      });
    },
    get active() {
      return running;
    },
    get pending() {
      return waiting.length;
    },
  };
}

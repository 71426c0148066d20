// Waiting on page state: poll with a deadline, and a deadline for any one
// call. (`page.waitForFunction` with an async predicate passes at once in
// playwright, hence this.)

/**
 * A call that does not finish in time fails the test with its name instead
 * of hanging it.
 * @template T
 * @param {Promise<T>} promise @param {string} what @param {number} [ms]
 * @returns {Promise<T>}
 */
export async function deadline(promise, what, ms = 30000) {
  /** @type {NodeJS.Timeout|undefined} */
  let timer;
  const late = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`${what} did not finish in ${ms} ms`)), ms); });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Polls `fn` until it returns a truthy value or the deadline passes. A poll
 * that throws counts as "not yet" (a page that is navigating cannot be
 * evaluated for a moment); the last error is reported at the deadline.
 * @template T
 * @param {() => Promise<T>} fn
 * @param {string} what
 * @param {number} [timeoutMs]
 * @returns {Promise<T>}
 */
export async function until(fn, what, timeoutMs = 30000) {
  // The monotonic clock: this VM's wall clock can step forward by seconds
  // (a door test's 20 s wait once ended 13.5 s into the whole test).
  const end = performance.now() + timeoutMs;
  let last;
  /** @type {unknown} */
  let error;
  while (performance.now() < end) {
    try {
      // A poll that never answers (a page stuck mid-navigation) must not
      // outlive the deadline either.
      last = await deadline(fn(), `a poll for ${what}`, Math.max(1000, end - performance.now()));
      error = undefined;
      if (last) return last;
    } catch (e) {
      error = e;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  const detail = error ? `last error: ${error}` : `last value: ${JSON.stringify(last)}`;
  throw new Error(`timed out waiting for ${what}; ${detail}`);
}

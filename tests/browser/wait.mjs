// Waiting on page state: poll with a deadline. (`page.waitForFunction` with
// an async predicate passes at once in playwright, hence this.)

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
  const end = Date.now() + timeoutMs;
  let last;
  /** @type {unknown} */
  let error;
  while (Date.now() < end) {
    try {
      last = await fn();
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

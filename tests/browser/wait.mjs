// Waiting on page state: poll with a deadline. (`page.waitForFunction` with
// an async predicate passes at once in playwright, hence this.)

/**
 * Polls `fn` until it returns a truthy value or the deadline passes.
 * @template T
 * @param {() => Promise<T>} fn
 * @param {string} what
 * @param {number} [timeoutMs]
 * @returns {Promise<T>}
 */
export async function until(fn, what, timeoutMs = 30000) {
  const end = Date.now() + timeoutMs;
  let last;
  while (Date.now() < end) {
    last = await fn();
    if (last) return last;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out waiting for ${what}; last value: ${JSON.stringify(last)}`);
}

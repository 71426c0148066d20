// The worker every encoded frame passes through (see frames.js). It takes
// streams both ways browsers hand them over: the `rtctransform` event of
// RTCRtpScriptTransform and an `attach` message carrying the streams of
// createEncodedStreams. For now each frame passes unchanged and is counted
// per stream; end-to-end encryption transforms it here.

/** @type {Map<string, {frames: number, bytes: number}>} */
const counters = new Map();

/**
 * @param {ReadableStream} readable @param {WritableStream} writable
 * @param {{id?: string}} [options]
 */
function pipe(readable, writable, options) {
  const id = options?.id ?? 'unnamed';
  const counter = counters.get(id) ?? { frames: 0, bytes: 0 };
  counters.set(id, counter);
  readable
    .pipeThrough(new TransformStream({
      transform(frame, controller) {
        counter.frames += 1;
        counter.bytes += frame.data.byteLength;
        controller.enqueue(frame);
      },
    }))
    .pipeTo(writable)
    // The pipe ends when its sender or receiver stops; nothing to do then.
    .catch(() => {});
}

const scope = /** @type {any} */ (self);

scope.onrtctransform = (/** @type {any} */ ev) => {
  const t = ev.transformer;
  pipe(t.readable, t.writable, t.options);
};

scope.onmessage = (/** @type {MessageEvent} */ ev) => {
  const m = ev.data;
  if (m?.op === 'attach') pipe(m.readable, m.writable, m.options);
  else if (m?.op === 'counters') scope.postMessage({ op: 'counters', counters: Object.fromEntries(counters) });
};

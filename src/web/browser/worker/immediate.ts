/**
 * A setImmediate for the worker, installed before the engine module reads it: the engine yields to the
 * host every 10 ms turn, and its fallback, setTimeout(0), is clamped to 4 ms once nested, which would
 * cost a third of the guest's time. A MessageChannel message is queued like any other task, so the
 * page's input messages still get their turn between slices.
 */
const scope = globalThis as { setImmediate?: (callback: () => void) => unknown };
if (scope.setImmediate === undefined) {
  const channel = new MessageChannel();
  const queue: (() => void)[] = [];
  channel.port1.onmessage = () => queue.shift()?.();
  scope.setImmediate = (callback: () => void) => {
    queue.push(callback);
    channel.port2.postMessage(null);
  };
}

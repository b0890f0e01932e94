/**
 * Yields to the event loop (a macrotask turn, so I/O callbacks and timers run) without the 1-4 ms
 * clamp of `setTimeout(0)`: a MessageChannel message is delivered on the next turn.
 */
const channel = new MessageChannel();
const waiters: (() => void)[] = [];
channel.port1.onmessage = () => waiters.shift()?.();
// Do not keep the process alive just for this channel.
// deno-lint-ignore no-explicit-any
(channel.port1 as any).unref?.();
// deno-lint-ignore no-explicit-any
(channel.port2 as any).unref?.();

/** Resolves on the next event-loop turn. */
export function yieldNow(): Promise<void> {
  return new Promise((resolve) => {
    waiters.push(resolve);
    channel.port2.postMessage(0);
  });
}

/**
 * yieldNow() that also keeps the process alive until the turn comes (the channel does not: a caller
 * waiting on it with nothing else pending would see Deno end the event loop under it).
 */
export async function nextTurn(): Promise<void> {
  const keepAlive = setTimeout(() => {}, 60_000);
  try {
    await yieldNow();
  } finally {
    clearTimeout(keepAlive);
  }
}

/** Resolves after `ms` milliseconds, or earlier when `wake` is signalled. */
export function sleep(ms: number, signal?: { promise: Promise<void> }): Promise<void> {
  return new Promise((resolve) => {
    const id = setTimeout(resolve, Math.max(0, ms));
    signal?.promise.then(() => {
      clearTimeout(id);
      resolve();
    });
  });
}

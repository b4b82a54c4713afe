import { setImmediate } from 'node:timers';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

// The process runs without --expose-gc: the flag, set now, gives `gc` to contexts made from here on.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/**
 * How many of the targets of `refs` are still alive after full collections. A WeakRef keeps its
 * target alive until the end of the turn that made or read it, so the collections come after a turn
 * of the event loop (Node's own setImmediate, which fake timers leave alone).
 */
export async function uncollected(refs: Iterable<WeakRef<object>>): Promise<number> {
  await new Promise((resolve) => setImmediate(resolve));
  gc();
  gc();
  let alive = 0;
  for (const ref of refs) if (ref.deref() !== undefined) alive++;
  return alive;
}

/** Bytes of live heap and array buffers, after full collections. */
export function liveBytes(): number {
  gc();
  gc();
  const memory = process.memoryUsage();
  return memory.heapUsed + memory.arrayBuffers;
}

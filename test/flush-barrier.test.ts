import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FlushBarrier } from '../src/flush-barrier.js';

describe('FlushBarrier', () => {
  it('resolves each flush once every record taken before it settled, and not before, in any order of settling', async () => {
    const op = fc.oneof(
      { arbitrary: fc.constant({ kind: 'take' as const, pick: 0 }), weight: 5 },
      { arbitrary: fc.constant({ kind: 'flush' as const, pick: 0 }), weight: 2 },
      { arbitrary: fc.record({ kind: fc.constant('settle' as const), pick: fc.nat() }), weight: 5 },
    );
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 400 }), async (ops) => {
        const barrier = new FlushBarrier();
        // Records unsettled, each with the epoch it was counted in and the order it was taken.
        const unsettled: { epoch: number; taken: number }[] = [];
        const flushes: { takenBefore: number; resolved: boolean }[] = [];
        let taken = 0;
        const check = async () => {
          await new Promise((resolve) => setImmediate(resolve)); // flushes resolve a moment later
          for (const flush of flushes) {
            const waitsFor = unsettled.some((r) => r.taken < flush.takenBefore);
            expect(flush.resolved).toBe(!waitsFor);
          }
        };
        for (const { kind, pick } of ops) {
          if (kind === 'take') {
            unsettled.push({ epoch: barrier.count(), taken: taken++ });
          } else if (kind === 'flush') {
            const flush = { takenBefore: taken, resolved: false };
            flushes.push(flush);
            void barrier.next().then(() => {
              flush.resolved = true;
            });
          } else if (unsettled.length > 0) {
            const [record] = unsettled.splice(pick % unsettled.length, 1);
            barrier.release(record!.epoch);
          }
          await check();
        }
        while (unsettled.length > 0) {
          barrier.release(unsettled.pop()!.epoch);
          await check();
        }
        expect(flushes.every((f) => f.resolved)).toBe(true);
      }),
      { numRuns: 200 },
    );
  });
});

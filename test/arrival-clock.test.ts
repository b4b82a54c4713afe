import { describe, expect, it } from 'vitest';
import { ArrivalClock, type Clock } from '../src/clock.js';

/** A clock that counts its readings and moves forward 1 ms at each. */
function countingClock(): Clock & { readonly readings: number } {
  let readings = 0;
  return {
    get readings() {
      return readings;
    },
    now: () => 1_000 + readings++,
    setTimeout: () => undefined,
    clearTimeout: () => {},
  };
}

describe('ArrivalClock', () => {
  it('answers up to 16 calls of one synchronous run with one reading, then reads again', () => {
    const clock = countingClock();
    const arrivals = new ArrivalClock(clock);
    const times = Array.from({ length: 40 }, () => arrivals.now());
    expect(clock.readings).toBe(3);
    expect(times.slice(0, 16)).toEqual(Array(16).fill(1_000));
    expect(times.slice(16, 32)).toEqual(Array(16).fill(1_001));
    expect(times.slice(32)).toEqual(Array(8).fill(1_002));
  });

  it('reads the clock again once the run of code has ended', async () => {
    const clock = countingClock();
    const arrivals = new ArrivalClock(clock);
    expect([arrivals.now(), arrivals.now()]).toEqual([1_000, 1_000]);
    await Promise.resolve();
    expect([arrivals.now(), arrivals.now()]).toEqual([1_001, 1_001]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(arrivals.now()).toBe(1_002);
    expect(clock.readings).toBe(3);
  });

  it('shares a reading with the microtasks queued before it, and with none queued after', async () => {
    const clock = countingClock();
    const arrivals = new ArrivalClock(clock);
    const times: number[] = [];
    queueMicrotask(() => {
      times.push(arrivals.now()); // reads, and queues the reading's end behind the next one
      queueMicrotask(() => times.push(arrivals.now()));
    });
    queueMicrotask(() => times.push(arrivals.now())); // queued before the reading: shares it
    await new Promise((resolve) => setImmediate(resolve));
    expect(times).toEqual([1_000, 1_000, 1_001]);
  });

  it('takes a later reading from elsewhere for the calls that share it, never an earlier one', () => {
    const clock = countingClock();
    const arrivals = new ArrivalClock(clock);
    expect(arrivals.now()).toBe(1_000);
    expect(arrivals.observe(1_500)).toBe(1_500);
    expect(arrivals.now()).toBe(1_500);
    expect(arrivals.observe(1_200)).toBe(1_500);
    expect(arrivals.now()).toBe(1_500);
    expect(clock.readings).toBe(1);
  });
});

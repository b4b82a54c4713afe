import { describe, expect, it } from 'vitest';
import type { Clock } from '../src/clock.js';
import { Dispatcher } from '../src/dispatcher.js';
import type { Sender } from '../src/sender.js';
import type { StreamPipeline } from '../src/stream-pipeline.js';

/** A clock that moves one millisecond every time it is read, and runs timers by hand. */
function creepingClock() {
  let now = 1_000;
  const timers: { at: number; fn: () => void }[] = [];
  const clock: Clock = {
    now: () => now++,
    setTimeout: (fn, ms) => {
      const timer = { at: now + ms, fn };
      timers.push(timer);
      return timer;
    },
    clearTimeout: (handle) => {
      const i = timers.indexOf(handle as (typeof timers)[number]);
      if (i >= 0) timers.splice(i, 1);
    },
  };
  const runNext = () => {
    timers.sort((a, b) => a.at - b.at);
    const timer = timers.shift();
    if (timer === undefined) return false;
    now = Math.max(now, timer.at);
    timer.fn();
    return true;
  };
  return { clock, timers, runNext };
}

describe('Dispatcher', () => {
  it('keeps a wake-up asked for from inside the pump even when the clock moved past it', () => {
    const { clock, timers, runNext } = creepingClock();
    let collects = 0;
    let dispatcher: Dispatcher | undefined;
    // A pipeline whose only shard is rate-limited: every collect sends nothing and asks to be woken
    // when the next token comes, which is already "now" by the time the dispatcher reads the clock.
    const pipeline = {
      tick: () => Number.POSITIVE_INFINITY,
      isDue: () => true,
      collect: (now: number) => {
        collects++;
        dispatcher!.wakeAt(now);
        return [];
      },
      nextSendBy: Number.POSITIVE_INFINITY,
      stream: { label: 's', streamName: 's', streamARN: undefined },
    } as unknown as StreamPipeline;
    const sender = { hasCapacity: true } as unknown as Sender;
    dispatcher = new Dispatcher(
      sender,
      clock,
      () => [pipeline],
      () => {},
    );
    dispatcher.wakeAt(0);
    for (let i = 0; i < 5; i++) expect(runNext()).toBe(true);
    // Each wake-up pumped once and asked for the next: the producer never stalls.
    expect(collects).toBe(5);
    expect(timers).toHaveLength(1);
  });
});

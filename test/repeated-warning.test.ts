import { describe, expect, it } from 'vitest';
import type { Clock } from '../src/clock.js';
import { REPEATED_WARNING_INTERVAL_MS, RepeatedWarning } from '../src/repeated-warning.js';
import { memoryLogger } from './support/memory-logger.js';

function setUp() {
  let now = 0;
  const clock: Clock = { now: () => now, setTimeout: () => undefined, clearTimeout: () => {} };
  const { logger, lines } = memoryLogger();
  const warning = new RepeatedWarning(logger, clock);
  const warnings = () => lines.filter((l) => l.level === 'warn').map((l) => [l.message, l.context]);
  return { warning, warnings, lines, advance: (ms: number) => (now += ms) };
}

describe('RepeatedWarning', () => {
  it('tells a different failure at once, and the same one again after a quiet minute with its count', () => {
    const { warning, warnings, lines, advance } = setUp();
    warning.warn('A', { n: 1 }, 'a failed');
    advance(1_000);
    warning.warn('A', { n: 2 }, 'a failed');
    warning.warn('A', { n: 3 }, 'a failed');
    advance(REPEATED_WARNING_INTERVAL_MS);
    warning.warn('A', { n: 4 }, 'a failed');
    warning.warn('B', { n: 5 }, 'b failed');
    expect(warnings()).toEqual([
      ['a failed', { n: 1 }],
      ['a failed (2 more failure(s) since the last warning)', { n: 4, untold: 2 }],
      ['b failed', { n: 5 }],
    ]);
    expect(lines.filter((l) => l.level === 'debug').map((l) => l.context)).toEqual([{ n: 2 }, { n: 3 }]);
  });

  it('holds back failures that alternate between two codes: each is told once, then once a minute in all', () => {
    const { warning, warnings, advance } = setUp();
    // One failure every 10 s for 3 minutes, the code switching each time.
    for (let i = 0; i < 18; i++) {
      warning.warn(i % 2 === 0 ? 'A' : 'B', {}, i % 2 === 0 ? 'a failed' : 'b failed');
      advance(10_000);
    }
    expect(warnings().map(([message]) => message)).toEqual([
      'a failed',
      'b failed',
      'b failed (5 more failure(s) since the last warning)',
      'b failed (5 more failure(s) since the last warning)',
    ]);
  });

  it('after clear(), the same failure is told at once, as new', () => {
    const { warning, warnings, advance } = setUp();
    warning.warn('A', {}, 'a failed');
    warning.warn('A', {}, 'a failed');
    warning.clear();
    advance(10);
    warning.warn('A', {}, 'a failed');
    expect(warnings()).toEqual([
      ['a failed', {}],
      ['a failed', {}],
    ]);
  });
});

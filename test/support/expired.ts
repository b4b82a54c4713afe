import { expect } from 'vitest';
import type { RecordFailedError } from '../../src/index.js';

/**
 * Every attempt of an expired record failed with `code`; the last may instead have been under way at
 * its TTL (`Unanswered`: its answer did not count).
 */
export function expectEachTryFailedWith(error: RecordFailedError, code: string): void {
  const codes = error.attempts.map((a) => a.errorCode);
  expect(codes.slice(0, -1).every((each) => each === code)).toBe(true);
  expect([code, 'Unanswered']).toContain(codes.at(-1));
}

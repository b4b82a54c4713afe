/**
 * The fault front's source of randomness. Faults are drawn from a seeded generator, never from
 * `Math.random`, so a failing chaos run can be replayed exactly by starting again with the same seed.
 */

/** A generator of uniform numbers in [0, 1). */
export type Random = () => number;

/**
 * mulberry32: a 32-bit generator, tiny and good enough to pick faults (not for cryptography).
 * The same seed always yields the same sequence.
 */
export function seededRandom(seed: number): Random {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

import { describe, expect, it } from 'vitest';
import { PartitionKeyCache, SKIPPED_FILLS } from '../src/key-cache.js';

/** What the producer does for each record: look the key up, and make an entry when not found. */
function entryFor(cache: PartitionKeyCache, key: string) {
  return cache.get(key) ?? cache.add(key, Buffer.byteLength(key));
}

describe('PartitionKeyCache', () => {
  it('hands out one entry per hot key', () => {
    const cache = new PartitionKeyCache(8);
    const first = ['a', 'b', 'c', 'd'].map((k) => entryFor(cache, k));
    for (let round = 0; round < 100; round++) {
      expect(['a', 'b', 'c', 'd'].map((k) => entryFor(cache, k))).toEqual(first);
      expect(entryFor(cache, 'a')).toBe(first[0]);
    }
  });

  it('stops looking keys up after a map of them found almost none, then tries again from empty', () => {
    const cache = new PartitionKeyCache(8);
    let n = 0;
    // A full map of keys never asked for again, then one more: the cache gives up on them.
    for (let i = 0; i <= 8; i++) entryFor(cache, `once-${n++}`);
    const unkept = entryFor(cache, 'again');
    expect(cache.get('again')).toBeUndefined();
    expect(entryFor(cache, 'again')).not.toBe(unkept);
    expect(entryFor(cache, 'again')).toMatchObject({ key: 'again', bytes: 5, hash: undefined });
    // SKIPPED_FILLS maps' worth of records pass without being kept, then keys are kept again.
    // (Three of them were the lookups of "again" above.)
    for (let i = 3; i < SKIPPED_FILLS * 8; i++) entryFor(cache, `once-${n++}`);
    const kept = entryFor(cache, 'hot');
    expect(cache.get('hot')).toBe(kept);
    expect(entryFor(cache, 'hot')).toBe(kept);
  });

  it('keeps looking while a third of lookups or more find their key', () => {
    const cache = new PartitionKeyCache(8);
    // Each key asked for twice, then never again: every second lookup finds it.
    for (let i = 0; i < 1000; i++) {
      const entry = entryFor(cache, `twice-${i}`);
      expect(entryFor(cache, `twice-${i}`)).toBe(entry);
    }
  });
});

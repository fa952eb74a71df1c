import { describe, expect, it } from 'vitest';
import { BoundedMap } from '../../../src/util/bounded-map.js';

describe('BoundedMap', () => {
  it('starts afresh when a new key comes to a full map', () => {
    const map = new BoundedMap<string, number>(2);
    map.set('a', 1).set('b', 2);
    map.set('c', 3);
    expect([...map]).toEqual([['c', 3]]);
  });

  it('updates a key it holds without dropping the others, full or not', () => {
    const map = new BoundedMap<string, number>(2);
    map.set('a', 1).set('b', 2).set('a', 10);
    expect([...map]).toEqual([
      ['a', 10],
      ['b', 2],
    ]);
  });
});

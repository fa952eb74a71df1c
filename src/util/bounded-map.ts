/**
 * A Map of at most `capacity` entries that starts afresh when full: for results of pure functions kept by
 * their input (a parse repeated on every request with the same text), where the entries in use come back
 * at once and bookkeeping per lookup would cost more than the rare refill.
 */
export class BoundedMap<K, V> extends Map<K, V> {
  constructor(private readonly capacity: number) {
    super();
  }

  override set(key: K, value: V): this {
    if (this.size >= this.capacity && !this.has(key)) this.clear();
    return super.set(key, value);
  }
}

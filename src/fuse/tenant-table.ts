// A table of tenants in shared memory: a region of an Int32Array that several threads use under a lock
// their owner holds. Each entry is [used, key, ...the owner's fields]. Open addressing with linear
// probing; an entry whose tenant holds nothing (its `busy` field is 0) is taken over in place by a new
// tenant, so probe chains never break and nothing needs deleting.

export const TENANT_KEY = 1;

export class TenantTable {
  /** Int32 words a table of `capacity` (a power of two) entries of `fields` owner fields takes. */
  static ints(capacity: number, fields: number): number {
    return capacity * (2 + fields);
  }

  private readonly stride: number;

  constructor(
    private readonly words: Int32Array,
    private readonly base: number,
    private readonly capacity: number,
    fields: number,
    /** Offset (from the entry) of the field that is 0 when the tenant holds nothing. */
    private readonly busy: number,
  ) {
    this.stride = 2 + fields;
  }

  /** The tenant's entry (the index of its first word), made if `create`; -1 if it has none, or if the
   * table is full of tenants that hold something. Keys are compared as 32-bit patterns. */
  find(tenant: number, create: boolean): number {
    const key = tenant | 0;
    const shift = 32 - Math.log2(this.capacity);
    let reusable = -1;
    for (
      let probe = 0, index = Math.imul(key, 0x9e3779b1) >>> shift;
      probe < this.capacity;
      probe++, index = (index + 1) & (this.capacity - 1)
    ) {
      const entry = this.base + index * this.stride;
      if (this.words[entry] === 0) {
        if (reusable < 0) reusable = entry;
        break;
      }
      if (this.words[entry + TENANT_KEY] === key) return entry;
      if (reusable < 0 && this.words[entry + this.busy] === 0) reusable = entry;
    }
    if (!create || reusable < 0) return -1;
    this.words.fill(0, reusable, reusable + this.stride);
    this.words[reusable] = 1;
    this.words[reusable + TENANT_KEY] = key;
    return reusable;
  }

  /** Calls `fn` with the entry of every tenant the table holds, whether or not it holds anything now. */
  forEach(fn: (entry: number) => void): void {
    for (let index = 0; index < this.capacity; index++) {
      const entry = this.base + index * this.stride;
      if (this.words[entry] !== 0) fn(entry);
    }
  }
}

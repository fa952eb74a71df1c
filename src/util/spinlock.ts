// A lock word in shared memory for critical sections of a few microseconds, shared by threads that
// block anyway (reader loops): spin once, then sleep in short Atomics.wait slices.

export function lockWord(words: Int32Array, index: number): void {
  while (Atomics.compareExchange(words, index, 0, 1) !== 0) Atomics.wait(words, index, 1, 1);
}

export function unlockWord(words: Int32Array, index: number): void {
  Atomics.store(words, index, 0);
  Atomics.notify(words, index, 1);
}

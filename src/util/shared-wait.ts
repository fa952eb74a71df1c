// A main thread that waits for reader threads to change a word of shared memory without waking up to
// look: an idle daemon then costs no CPU for it. The threads that change the word call Atomics.notify.

/** Resolves once `words[index]` differs from `from`, or a thread notifies on it (at once if it differs
 * now). Callers check again: a notify does not say what changed. */
export function whenChanged(words: Int32Array, index: number, from: number): Promise<void> {
  const wait = Atomics.waitAsync(words, index, from);
  return wait.async ? wait.value.then(() => undefined) : Promise.resolve();
}

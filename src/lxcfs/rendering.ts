// A rendering is copied into the reply, or the handle's snapshot, before its thread renders again, so one
// buffer per thread holds every rendering's bytes. Buffer.from() took each from Node's 8 kB pools, whose
// memory comes from malloc and, once the pool has outlived two young collections, goes back only at a
// full collection: the serving process's malloc heap grew by about 20 MB over its first 400,000 reads.
let renderingBytes = Buffer.allocUnsafe(16 * 1024);

/** The latin1 bytes of `text` (one per character), in this thread's rendering buffer. */
export function encodeRendering(text: string): Buffer {
  if (text.length > renderingBytes.length)
    renderingBytes = Buffer.allocUnsafe(Math.max(text.length, renderingBytes.length * 2));
  return renderingBytes.subarray(0, renderingBytes.write(text, 0, 'latin1'));
}

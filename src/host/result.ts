/**
 * Errors as values. Host facts are read on the synchronous FUSE request path,
 * where "the cgroup is gone" or "the caller has exited" are normal outcomes that
 * mean "serve the host's values", not exceptional ones.
 */
export interface Success<T> {
  readonly ok: true;
  readonly value: T;
}

export interface Failure {
  readonly ok: false;
  /** What went wrong, phrased so an operator can act on it. */
  readonly error: string;
}

export type Result<T> = Success<T> | Failure;

export function ok<T>(value: T): Success<T> {
  return { ok: true, value };
}

export function fail(error: string): Failure {
  return { ok: false, error };
}

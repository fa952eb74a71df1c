// Logging from a worker thread without loading pino there: records go to the thread that started the
// worker, which writes them with its own logger. pino costs each V8 isolate that loads it about 2.5 MB,
// and the reader threads log only limits, failures and debug traces.

/** The levels the shared code logs at, as pino names them. */
export type LogLevel = 'error' | 'warn' | 'info' | 'debug';

/** What code that runs in the reader threads logs through: pino's Logger satisfies it, and so does what
 * threadLog returns. */
export interface Log {
  error(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  info(fields: object, message: string): void;
  debug(fields: object, message: string): void;
  isLevelEnabled(level: LogLevel): boolean;
}

/** One record as a worker posts it. */
export interface LogRecord {
  level: LogLevel;
  fields: Record<string, unknown>;
  message: string;
}

/** pino's numbers for its level names (trace and silent included, as a configured level may be either). */
const LEVEL_VALUES: Record<string, number> = {
  trace: 10,
  debug: 20,
  info: 30,
  warn: 40,
  error: 50,
  fatal: 60,
  silent: Infinity,
};

/** A Log that posts each record at or above `level` through `post`, with `base` added to its fields. */
export function threadLog(level: string, base: Record<string, unknown>, post: (record: LogRecord) => void): Log {
  const threshold = LEVEL_VALUES[level] ?? LEVEL_VALUES.info!;
  const enabled = (at: LogLevel): boolean => LEVEL_VALUES[at]! >= threshold;
  const at =
    (recordLevel: LogLevel) =>
    (fields: object, message: string): void => {
      if (enabled(recordLevel)) post({ level: recordLevel, fields: { ...base, ...fields }, message });
    };
  return { error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug'), isLevelEnabled: enabled };
}

// What the reader threads tell the main thread (server.ts), and why they stop.

import type { LogRecord } from '../util/thread-log.js';
import type { InitInfo } from './session.js';

export type ReaderExit = 'sentinel' | 'refused' | 'unmounted' | 'aborted' | 'error';

export type ReaderMessage =
  | { type: 'ready' }
  | { type: 'init'; info: InitInfo }
  | { type: 'log'; record: LogRecord }
  | { type: 'exit'; reason: ReaderExit; detail?: string };

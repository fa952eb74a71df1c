// What the intake and reader threads tell the main thread (server.ts), and why they stop.

import type { LogRecord } from '../util/thread-log.js';
import type { InitInfo } from './session.js';

export const READER_EXITS = ['sentinel', 'refused', 'unmounted', 'aborted', 'error'] as const;
export type ReaderExit = (typeof READER_EXITS)[number];

export type ReaderMessage =
  | { type: 'ready' }
  | { type: 'init'; info: InitInfo }
  | { type: 'log'; record: LogRecord }
  | { type: 'exit'; reason: ReaderExit; detail?: string };

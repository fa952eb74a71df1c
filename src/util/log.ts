// Every lxcfs-ts process logs through this: pino, written synchronously to stdout (stderr for commands
// whose stdout is their answer) so that nothing is lost at exit. Started by systemd with stdout on the journal, each line starts with its syslog
// priority (<3> error ... <7> debug), which journald takes as the line's PRIORITY, and reads as one
// line a person can follow (`journalctl -u lxcfs-ts`, `-p err`). Elsewhere, and with --log-format json,
// the lines are pino's JSON.

import fs from 'node:fs';
import { pino, type Logger } from 'pino';

export const LOG_FORMATS = ['auto', 'text', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export interface LogSettings {
  level: string;
  /** auto: text on the journal, JSON elsewhere. */
  format: LogFormat;
}

/** pino's levels as syslog priorities: fatal crit, error err, warn warning, info info, debug and trace debug. */
function syslogPriority(level: number): number {
  if (level >= 60) return 2;
  if (level >= 50) return 3;
  if (level >= 40) return 4;
  if (level >= 30) return 6;
  return 7;
}

/** Whether fd is the journal stream systemd connected our stdout or stderr to (JOURNAL_STREAM names its
 * device and inode; a child whose output went elsewhere inherits the variable but not the stream). */
function isJournal(fd: LogFd, env: NodeJS.ProcessEnv = process.env): boolean {
  const match = /^(\d+):(\d+)$/.exec(env.JOURNAL_STREAM ?? '');
  if (!match) return false;
  try {
    const stat = fs.fstatSync(fd, { bigint: true });
    return stat.dev === BigInt(match[1]!) && stat.ino === BigInt(match[2]!);
  } catch {
    return false;
  }
}

const RECORD_KEYS = new Set(['level', 'time', 'msg', 'hostname']);

function fieldValue(value: unknown): string {
  if (typeof value === 'string') return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
  if (value !== null && typeof value === 'object' && 'message' in value && 'stack' in value)
    return JSON.stringify((value as Error).message);
  // The rest of a parsed JSON line: numbers, booleans, null, objects and arrays.
  return JSON.stringify(value);
}

/** One pino record as a line for people: the message, then its fields as key=value. */
export function humanLine(record: Record<string, unknown>): string {
  const fields = Object.entries(record)
    .filter(([key]) => !RECORD_KEYS.has(key))
    .map(([key, value]) => `${key}=${fieldValue(value)}`);
  return [typeof record.msg === 'string' ? record.msg : '', ...fields].join(' ');
}

/** The line journald gets for one of pino's JSON lines. */
function journalLine(json: string, text: boolean): string {
  const record = JSON.parse(json) as Record<string, unknown>;
  return `<${syslogPriority(Number(record.level))}>${text ? humanLine(record) : json.trimEnd()}\n`;
}

/** stdout, or stderr for commands whose stdout is their answer. */
export type LogFd = 1 | 2;

export function createLogger(settings: LogSettings, base: Record<string, unknown>, fd: LogFd = 1): Logger {
  const destination = pino.destination({ dest: fd, sync: true });
  const journal = isJournal(fd);
  if (!journal && settings.format !== 'text') return pino({ level: settings.level, base }, destination);
  const text = settings.format !== 'json';
  const write = journal
    ? (line: string) => journalLine(line, text)
    : (line: string) => humanLine(JSON.parse(line) as Record<string, unknown>) + '\n';
  return pino({ level: settings.level, base }, { write: (line: string) => destination.write(write(line)) });
}

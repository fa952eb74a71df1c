// The reader threads' logger: which records it posts, and what they carry.

import { describe, expect, it } from 'vitest';
import { threadLog, type LogRecord } from '../../../src/util/thread-log.js';

describe('threadLog', () => {
  it('posts the records at or above its level, with its base fields under theirs', () => {
    const posted: LogRecord[] = [];
    const log = threadLog('warn', { reader: 1 }, (record) => posted.push(record));
    log.debug({ a: 1 }, 'not posted');
    log.info({ a: 2 }, 'not posted either');
    log.warn({ a: 3 }, 'posted');
    log.error({ reader: 9 }, 'its own fields win');
    expect(posted).toEqual([
      { level: 'warn', fields: { reader: 1, a: 3 }, message: 'posted' },
      { level: 'error', fields: { reader: 9 }, message: 'its own fields win' },
    ]);
    expect([log.isLevelEnabled('debug'), log.isLevelEnabled('warn'), log.isLevelEnabled('error')]).toEqual([
      false,
      true,
      true,
    ]);
  });

  it('takes pino level names it does not log at (trace, silent)', () => {
    const posted: LogRecord[] = [];
    threadLog('trace', {}, (record) => posted.push(record)).debug({}, 'posted');
    threadLog('silent', {}, (record) => posted.push(record)).error({}, 'not posted');
    expect(posted.map((r) => r.message)).toEqual(['posted']);
  });
});

// The protocol engine against hand-built request buffers (no kernel): INIT negotiation, framing,
// replies that must never be sent, errno mapping and directory paging.

import { describe, expect, it } from 'vitest';
import { Errno, InitFlag, InitFlag2, MAX_BACKGROUND, NotifyPollWakeup, Op, READ_BUFFER_SIZE, WANTED_INIT_FLAGS } from '../../src/fuse/abi.js';
import { StaticTreeFileSystem, type DirNode } from '../../src/fuse/static-tree.js';
import { CONN_FIELDS, ConnField, Session, type InitInfo } from '../../src/fuse/session.js';
import { SnapshotStore } from '../../src/fuse/snapshots.js';

function makeSession(onInit?: (info: InitInfo) => void) {
  const children = new Map<string, DirNode['children'] extends Map<string, infer N> ? N : never>();
  for (let i = 0; i < 50; i++) children.set(`file-with-a-longish-name-${i}`, { kind: 'file', ino: 10 + i, render: () => Buffer.from(`content ${i}\n`) });
  const root: DirNode = { kind: 'dir', ino: 1, children };
  const conn = new Int32Array(new SharedArrayBuffer(CONN_FIELDS * 4));
  const session = new Session(new StaticTreeFileSystem(root, { staticMs: 1500, fileAttrMs: 250 }), new SnapshotStore(SnapshotStore.allocate()), {
    stopName: '.stop-secret',
    conn,
    onInit,
  });
  return { session, conn };
}

function request(opcode: number, nodeid: number, body: Buffer, unique = 42n, pid = 1234): Buffer {
  const buf = Buffer.alloc(40 + body.length);
  buf.writeUInt32LE(buf.length, 0);
  buf.writeUInt32LE(opcode, 4);
  buf.writeBigUInt64LE(unique, 8);
  buf.writeBigUInt64LE(BigInt(nodeid), 16);
  buf.writeUInt32LE(pid, 32);
  body.copy(buf, 40);
  return buf;
}

function initBody(major: number, minor: number, flags: number, flags2 = 0): Buffer {
  const body = Buffer.alloc(64);
  body.writeUInt32LE(major, 0);
  body.writeUInt32LE(minor, 4);
  body.writeUInt32LE(131072, 8);
  body.writeUInt32LE(flags >>> 0, 12);
  body.writeUInt32LE(flags2, 16);
  return body;
}

function call(session: Session, req: Buffer) {
  const out = Buffer.alloc(READ_BUFFER_SIZE);
  const length = session.handle(req, req.length, out);
  return { length, out, error: length ? 0 - out.readInt32LE(4) || 0 : undefined, unique: length ? out.readBigUInt64LE(8) : undefined };
}

describe('INIT', () => {
  it('accepts only the flags we want from what the kernel offers, never REQUEST_TIMEOUT, and caps the minor', () => {
    let seen: InitInfo | undefined;
    const { session, conn } = makeSession((info) => (seen = info));
    const reply = call(session, request(Op.INIT, 0, initBody(7, 45, 0x73fffffb, InitFlag2.HAS_RESEND | InitFlag2.REQUEST_TIMEOUT)));
    expect(reply.error).toBe(0);
    expect(reply.length).toBe(16 + 64);
    const body = reply.out.subarray(16);
    expect(body.readUInt32LE(0)).toBe(7);
    expect(body.readUInt32LE(4)).toBe(45);
    expect(body.readUInt32LE(12)).toBe((0x73fffffb & WANTED_INIT_FLAGS) >>> 0);
    expect(body.readUInt32LE(12) & InitFlag.INIT_EXT).toBe(0);
    expect(body.readUInt32LE(32)).toBe(0); // flags2: nothing, so no request timeout
    expect(body.readUInt32LE(20)).toBe(4096); // max_write
    expect(body.readUInt16LE(28)).toBe(32); // max_pages
    expect(body.readUInt16LE(16)).toBe(MAX_BACKGROUND); // max_background: RELEASEs are not held back
    expect(body.readUInt16LE(18)).toBe((MAX_BACKGROUND * 3) / 4); // congestion_threshold
    expect((seen?.flags2Offered ?? 0) & InitFlag2.HAS_RESEND).toBeTruthy();
    expect(Atomics.load(conn, ConnField.INITIALIZED)).toBe(1);
    expect(Atomics.load(conn, ConnField.MINOR)).toBe(45);
  });

  it('answers a newer kernel with its own minor, and a newer major with ours only', () => {
    const { session } = makeSession();
    expect(call(session, request(Op.INIT, 0, initBody(7, 99, 0))).out.readUInt32LE(16 + 4)).toBe(45);
    const newer = call(session, request(Op.INIT, 0, initBody(8, 0, 0)));
    expect(newer.out.readUInt32LE(16)).toBe(7);
    expect(newer.out.readUInt32LE(20)).toBe(0);
  });

  it('refuses kernels older than 7.31 with an error and says why', () => {
    let seen: InitInfo | undefined;
    const { session } = makeSession((info) => (seen = info));
    const reply = call(session, request(Op.INIT, 0, initBody(7, 30, 0).subarray(0, 16)));
    expect(reply.error).toBe(Errno.EPROTO);
    expect(reply.length).toBe(16);
    expect(session.stopReason).toBe('refused');
    expect(seen?.refused).toMatch(/7\.30 is older than the 7\.31/);
  });
});

describe('framing', () => {
  it('echoes the unique byte for byte, resend bit included', () => {
    const { session } = makeSession();
    const unique = (1n << 63n) | 10n;
    const reply = call(session, request(Op.GETATTR, 1, Buffer.alloc(16), unique));
    expect(reply.unique).toBe(unique);
    expect(reply.out.readUInt32LE(0)).toBe(reply.length);
    expect(reply.length).toBe(16 + 104);
  });

  it('never answers FORGET, BATCH_FORGET or INTERRUPT', () => {
    const { session } = makeSession();
    for (const op of [Op.FORGET, Op.BATCH_FORGET, Op.INTERRUPT]) expect(call(session, request(op, 1, Buffer.alloc(16))).length).toBe(0);
  });

  it('answers unknown and unimplemented opcodes ENOSYS, write-side ones EROFS, ioctl ENOTTY, with bare headers', () => {
    const { session } = makeSession();
    for (const op of [999, Op.FLUSH, Op.GETXATTR, Op.LISTXATTR, Op.POLL, Op.LSEEK, Op.STATX, Op.FSYNC]) {
      const reply = call(session, request(op, 1, Buffer.alloc(64)));
      expect([op, reply.error, reply.length]).toEqual([op, Errno.ENOSYS, 16]);
    }
    for (const op of [Op.WRITE, Op.SETATTR, Op.MKDIR, Op.CREATE, Op.UNLINK, Op.RENAME2, Op.SETXATTR, Op.FALLOCATE]) {
      expect([op, call(session, request(op, 1, Buffer.alloc(96))).error]).toEqual([op, Errno.EROFS]);
    }
    expect(call(session, request(Op.IOCTL, 10, Buffer.alloc(32))).error).toBe(Errno.ENOTTY);
  });

  it('answers a LOOKUP with entry and attr TTLs and the file type bits', () => {
    const { session } = makeSession();
    const reply = call(session, request(Op.LOOKUP, 1, Buffer.from('file-with-a-longish-name-3\0')));
    expect(reply.error).toBe(0);
    const body = reply.out.subarray(16);
    expect(Number(body.readBigUInt64LE(0))).toBe(13);
    expect(Number(body.readBigUInt64LE(16))).toBe(1); // entry_valid 1.5 s
    expect(body.readUInt32LE(32)).toBe(500_000_000);
    expect(body.readUInt32LE(36)).toBe(250_000_000); // attr_valid 0.25 s
    expect(body.readUInt32LE(40 + 60)).toBe(0o100444);
    expect(call(session, request(Op.LOOKUP, 1, Buffer.from('missing\0'))).error).toBe(Errno.ENOENT);
  });

  it('stops the reader on the stop name, and only in the root', () => {
    const { session } = makeSession();
    call(session, request(Op.LOOKUP, 13, Buffer.from('.stop-secret\0')));
    expect(session.stopReason).toBeUndefined();
    const reply = call(session, request(Op.LOOKUP, 1, Buffer.from('.stop-secret\0')));
    expect(reply.error).toBe(Errno.ENOENT);
    expect(session.stopReason).toBe('sentinel');
  });

  it('turns a throwing filesystem into EIO for that request only', () => {
    const fs = new StaticTreeFileSystem({ kind: 'dir', ino: 1, children: new Map([['boom', { kind: 'file', ino: 2, render: () => { throw new Error('bug'); } }]]) }, { staticMs: 1, fileAttrMs: 1 });
    const errors: unknown[] = [];
    const session = new Session(fs, new SnapshotStore(SnapshotStore.allocate()), { stopName: 'x', conn: new Int32Array(new SharedArrayBuffer(CONN_FIELDS * 4)), onHandlerError: (_op, _node, err) => errors.push(err) });
    const open = call(session, request(Op.OPEN, 2, Buffer.alloc(8)));
    const handle = open.out.readBigUInt64LE(16);
    const readBody = Buffer.alloc(40);
    readBody.writeBigUInt64LE(handle, 0);
    readBody.writeUInt32LE(4096, 16);
    expect(call(session, request(Op.READ, 2, readBody)).error).toBe(Errno.EIO);
    expect(errors).toHaveLength(1);
    expect(call(session, request(Op.GETATTR, 2, Buffer.alloc(16))).error).toBe(0);
  });

  it("hands the filesystem the caller's own tenant when the reader knows it, and 0 otherwise", () => {
    const seen: Array<number | undefined> = [];
    const fs = new StaticTreeFileSystem({ kind: 'dir', ino: 1, children: new Map([['f', { kind: 'file', ino: 2, render: (caller) => (seen.push(caller.tenant), Buffer.from('x')) }]]) }, { staticMs: 1, fileAttrMs: 1 });
    const session = new Session(fs, new SnapshotStore(SnapshotStore.allocate()), { stopName: 'x', conn: new Int32Array(new SharedArrayBuffer(CONN_FIELDS * 4)) });
    const out = Buffer.alloc(READ_BUFFER_SIZE);
    const open = request(Op.OPEN, 2, Buffer.alloc(8));
    session.handle(open, open.length, out, 4026532501, 4026532501);
    const readBody = Buffer.alloc(40);
    readBody.writeBigUInt64LE(out.readBigUInt64LE(16), 0);
    readBody.writeUInt32LE(4096, 16);
    const read = request(Op.READ, 2, readBody);
    session.handle(read, read.length, out, 4026532501, 4026532501);
    session.handle(read, read.length, out, 4026532501);
    expect(seen).toEqual([4026532501, 0]);
  });
});

describe('READDIR paging', () => {
  it('never splits a record and resumes at the offset it gave', () => {
    const { session } = makeSession();
    const names: string[] = [];
    let offset = 0n;
    for (let round = 0; round < 100; round++) {
      const body = Buffer.alloc(40);
      body.writeBigUInt64LE(offset, 8);
      body.writeUInt32LE(300, 16); // room for a handful of records
      const reply = call(session, request(Op.READDIR, 1, body));
      expect(reply.error).toBe(0);
      if (reply.length === 16) break;
      expect(reply.length - 16).toBeLessThanOrEqual(300);
      for (let at = 16; at < reply.length; ) {
        const nameLength = reply.out.readUInt32LE(at + 16);
        names.push(reply.out.toString('utf8', at + 24, at + 24 + nameLength));
        offset = reply.out.readBigUInt64LE(at + 8);
        at += (24 + nameLength + 7) & ~7;
      }
    }
    expect(names).toEqual(['.', '..', ...Array.from({ length: 50 }, (_, i) => `file-with-a-longish-name-${i}`)]);
  });
});

// Offsets as include/uapi/linux/fuse.h lays the structs out, written here by hand so that the codecs in
// abi.ts are checked against the header, not against themselves.
describe('reply layouts', () => {
  it('fills fuse_attr_out, fuse_open_out and fuse_statfs_out at the kernel offsets', () => {
    const { session } = makeSession();
    const attr = call(session, request(Op.GETATTR, 12, Buffer.alloc(16))).out.subarray(16, 16 + 104);
    expect(Number(attr.readBigUInt64LE(0))).toBe(0); // attr_valid 0.25 s: 0 s ...
    expect(attr.readUInt32LE(8)).toBe(250_000_000); // ... and 250 ms
    expect(Number(attr.readBigUInt64LE(16))).toBe(12); // ino
    expect(attr.readBigUInt64LE(16 + 24)).toBe(attr.readBigUInt64LE(16 + 40)); // atime = ctime
    expect(attr.readUInt32LE(16 + 60)).toBe(0o100444); // mode
    expect(attr.readUInt32LE(16 + 64)).toBe(1); // nlink
    expect(attr.readUInt32LE(16 + 80)).toBe(4096); // blksize
    const open = call(session, request(Op.OPEN, 12, Buffer.alloc(8)));
    expect(open.length).toBe(16 + 16);
    expect(open.out.readUInt32LE(16 + 8)).toBe(0x21); // DIRECT_IO | NOFLUSH
    const statfs = call(session, request(Op.STATFS, 1, Buffer.alloc(0))).out.subarray(16, 16 + 80);
    expect([statfs.readUInt32LE(40), statfs.readUInt32LE(44), statfs.readUInt32LE(48)]).toEqual([4096, 255, 4096]);
  });

  it('writes READDIRPLUS records as an entry_out then a dirent, the name at 152', () => {
    const { session } = makeSession();
    const body = Buffer.alloc(40);
    body.writeBigUInt64LE(2n, 8); // past `.` and `..`
    body.writeUInt32LE(4096, 16);
    const reply = call(session, request(Op.READDIRPLUS, 1, body));
    const record = reply.out.subarray(16);
    expect(Number(record.readBigUInt64LE(0))).toBe(10); // entry_out.nodeid
    expect(record.readUInt32LE(40 + 60)).toBe(0o100444); // entry_out.attr.mode
    expect(Number(record.readBigUInt64LE(128))).toBe(10); // dirent.ino
    expect(Number(record.readBigUInt64LE(128 + 8))).toBe(3); // dirent.off
    expect(record.readUInt32LE(128 + 16)).toBe('file-with-a-longish-name-0'.length);
    expect(record.readUInt32LE(128 + 20)).toBe(8); // DT_REG
    expect(record.toString('utf8', 152, 152 + 26)).toBe('file-with-a-longish-name-0');
    expect(Number(record.readBigUInt64LE((152 + 26 + 7) & ~7))).toBe(11); // the next record
  });
});

describe('WRITE, POLL and RELEASE hooks', () => {
  function hookedSession(pollable: boolean) {
    const seen: string[] = [];
    const root: DirNode = {
      kind: 'dir',
      ino: 1,
      children: new Map([
        ['plain', { kind: 'file' as const, ino: 2, render: () => Buffer.from('x') }],
        [
          'hooked',
          {
            kind: 'file' as const,
            ino: 3,
            render: () => Buffer.from('y'),
            handles: {
              write: (fh: number, offset: number, data: Buffer) => (seen.push(`write ${fh} ${offset} ${data.toString()}`), { written: data.length }),
              poll: (fh: number, kh: number, notify: boolean) => (seen.push(`poll ${fh} ${kh} ${notify}`), { revents: 0x2 }),
              release: (fh: number) => void seen.push(`release ${fh}`),
            },
          },
        ],
      ]),
    };
    const fs = new StaticTreeFileSystem(root, { staticMs: 1500, fileAttrMs: 250, pollable });
    const conn = new Int32Array(new SharedArrayBuffer(CONN_FIELDS * 4));
    return { session: new Session(fs, new SnapshotStore(SnapshotStore.allocate()), { stopName: '.stop', conn }), seen };
  }

  /** fuse_write_in: fh u64 @0, offset u64 @8, size u32 @16, write_flags @20, lock_owner @24, flags @32; data @40. */
  function writeBody(fh: number, offset: number, data: string): Buffer {
    const body = Buffer.alloc(40 + data.length);
    body.writeBigUInt64LE(BigInt(fh), 0);
    body.writeBigUInt64LE(BigInt(offset), 8);
    body.writeUInt32LE(data.length, 16);
    body.write(data, 40);
    return body;
  }

  /** fuse_poll_in: fh u64 @0, kh u64 @8, flags u32 @16, events u32 @20. */
  function pollBody(fh: number, kh: bigint, flags: number, events: number): Buffer {
    const body = Buffer.alloc(24);
    body.writeBigUInt64LE(BigInt(fh), 0);
    body.writeBigUInt64LE(kh, 8);
    body.writeUInt32LE(flags, 16);
    body.writeUInt32LE(events, 20);
    return body;
  }

  it('opens a hooked file for writing, answers WRITE with fuse_write_out, POLL with fuse_poll_out, and passes RELEASE on', () => {
    const { session, seen } = hookedSession(true);
    expect(call(session, request(Op.OPEN, 3, Buffer.from([2, 0, 0, 0, 0, 0, 0, 0]))).error).toBe(0); // O_RDWR
    expect(call(session, request(Op.OPEN, 2, Buffer.from([2, 0, 0, 0, 0, 0, 0, 0]))).error).toBe(Errno.EACCES);
    const wrote = call(session, request(Op.WRITE, 3, writeBody(7, 0, 'some 1 500000')));
    expect(wrote.length).toBe(16 + 8);
    expect(wrote.out.readUInt32LE(16)).toBe(13); // size
    expect(wrote.out.readUInt32LE(20)).toBe(0); // padding
    const polled = call(session, request(Op.POLL, 3, pollBody(7, 0x1_0000_0005n, 1, 0x2)));
    expect(polled.length).toBe(16 + 8);
    expect(polled.out.readUInt32LE(16)).toBe(0x2); // revents
    // A file without hooks is always ready: POLLIN|POLLOUT|POLLRDNORM|POLLWRNORM.
    expect(call(session, request(Op.POLL, 2, pollBody(8, 9n, 0, 0x1))).out.readUInt32LE(16)).toBe(0x145);
    expect(call(session, request(Op.WRITE, 2, writeBody(8, 0, 'x'))).error).toBe(Errno.EROFS);
    expect(call(session, request(Op.RELEASE, 3, Buffer.alloc(24, 0).fill(7, 0, 1))).length).toBe(16);
    expect(seen).toEqual(['write 7 0 some 1 500000', `poll 7 ${0x1_0000_0005} true`, 'release 7']);
  });

  it('answers POLL with ENOSYS when the tree is not pollable (the kernel then never asks again)', () => {
    const { session, seen } = hookedSession(false);
    const reply = call(session, request(Op.POLL, 3, pollBody(7, 5n, 1, 0x2)));
    expect(reply.error).toBe(Errno.ENOSYS);
    expect(reply.length).toBe(16);
    expect(seen).toEqual([]);
  });

  it('writes FUSE_NOTIFY_POLL as unique 0, code 1 in the error field, then kh', () => {
    const message = NotifyPollWakeup.message(0x1_0000_0005);
    expect(message.length).toBe(24);
    expect(message.readUInt32LE(0)).toBe(24);
    expect(message.readInt32LE(4)).toBe(1);
    expect(message.readBigUInt64LE(8)).toBe(0n);
    expect(message.readBigUInt64LE(16)).toBe(0x1_0000_0005n);
  });
});

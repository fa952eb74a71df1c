// What the daemon tells systemd (Type=notify), seen through a fake NOTIFY_SOCKET: a unix datagram
// socket this test listens on, answering systemd-notify's BARRIER=1 like systemd does (by closing the
// file descriptor that comes with it).

import { spawn } from 'node:child_process';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { Cleanup, startDaemon, upgradeDaemon } from '../helpers/processes.js';

const cleanup = new Cleanup();
afterAll(() => cleanup.run());

const LISTENER = `
import array, os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print('listening', flush=True)
while True:
    data, ancdata, flags, addr = s.recvmsg(4096, socket.CMSG_SPACE(16 * 4))
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds = array.array('i')
            fds.frombytes(payload[: len(payload) - (len(payload) % fds.itemsize)])
            for fd in fds: os.close(fd)
    text = data.decode()
    if text != 'BARRIER=1': print(text.replace('\\n', ' '), flush=True)
`;

it('reports READY with its main pid, RELOADING then READY around an upgrade, and STOPPING', async () => {
  const dir = cleanup.tempDir();
  const socketPath = path.join(dir, 'notify.sock');
  const listener = spawn('python3', ['-c', LISTENER, socketPath], { stdio: ['ignore', 'pipe', 'inherit'] });
  cleanup.own(listener);
  let heard = '';
  listener.stdout.on('data', (chunk: Buffer) => (heard += chunk.toString()));
  await new Promise<void>((resolve) => listener.stdout.once('data', () => resolve()));

  const mnt = path.join(dir, 'mnt');
  const daemon = await startDaemon(cleanup, ['-p', path.join(dir, 'pid'), mnt], mnt, { NOTIFY_SOCKET: socketPath });
  const waitFor = async (pattern: RegExp): Promise<void> => {
    const deadline = Date.now() + 10_000;
    while (!pattern.test(heard)) {
      if (Date.now() > deadline) throw new Error(`never heard ${pattern}; heard:\n${heard}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };
  await waitFor(new RegExp(`READY=1 MAINPID=${daemon.pid}`));
  await upgradeDaemon(path.join(dir, 'pid'));
  await waitFor(/RELOADING=1 MONOTONIC_USEC=\d+\n(.|\n)*READY=1\n/);
  expect(daemon.output()).toMatch(/"msg":"upgraded the serving process"/);
  expect((await daemon.stop()).code).toBe(0);
  await waitFor(/STOPPING=1/);
  const lines = heard.split('\n').filter((l) => l && l !== 'listening');
  expect(lines.map((l) => l.split(' ')[0])).toEqual(['READY=1', 'RELOADING=1', 'READY=1', 'STOPPING=1']);
}, 30_000);

// A PSI trigger poller for the tests of --enable-psi-poll (the host suite's and the v2 guest's): python3
// arms a trigger on a pressure file of our mount, in a simulated container (fresh pid and mount namespaces
// in cgroups the test made, our file bound over its own), and reports each poll() result.

import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { type Cleanup, TIME_SCALE } from './processes.js';

/**
 * A poller: python3 with select.poll on POLLPRI. `count` descriptors of `file` are opened O_RDWR and the
 * trigger is written to each, then it prints one line per descriptor of each poll result:
 * `<seconds since armed> <revents>` (one with revents 0: the poll timed out after `timeoutMs`). With
 * `rearm`, a descriptor that gets POLLERR is reopened and armed again (`armed N` each time); without, the
 * first POLLERR ends it. `busy` processes that only spin are forked once all are armed.
 */
const POLLER = `
import os, select, sys, time, errno
file, trigger, timeout_ms, rearm, busy, count = sys.argv[1], sys.argv[2].encode(), int(sys.argv[3]), sys.argv[4] == '1', int(sys.argv[5]), int(sys.argv[6])
armed = 0
def arm():
    global armed
    fd = os.open(file, os.O_RDWR)
    os.write(fd, trigger)
    armed += 1
    print('armed', armed, flush=True)
    return fd
fds = [arm() for _ in range(count)]
for _ in range(busy):
    if os.fork() == 0:
        while True: pass
p = select.poll()
for fd in fds: p.register(fd, select.POLLPRI)
start = time.monotonic()
while True:
    ready = p.poll(timeout_ms) or [(None, 0)]
    for fd, revents in ready:
        print('%.3f %d' % (time.monotonic() - start, revents), flush=True)
        if revents & select.POLLERR:
            if not rearm: sys.exit(0)
            p.unregister(fd); os.close(fd)
            p.register(arm(), select.POLLPRI); start = time.monotonic()
`;

export interface Poller {
  child: ChildProcess;
  lines: () => string[];
  /** Resolves with the first line matching `pattern` after `from` lines, or rejects after timeoutMs. */
  waitFor(pattern: RegExp, timeoutMs: number, from?: number): Promise<string>;
  /** poll results as [seconds, revents]. */
  results(): Array<[number, number]>;
}

/** Runs the poller on /proc/pressure/<resource> (cpu by default) of the lxcfs-ts mount `mnt`: in a container that joined the cgroup
 * directories `cgroups` when given (else on the host, on the mount's file), with `busy` busy loops beside it and
 * `count` triggers armed (1 by default). */
export function startPoller(
  cleanup: Cleanup,
  mnt: string,
  options: {
    cgroups?: string[];
    resource?: 'cpu' | 'io' | 'memory';
    busy?: number;
    trigger: string;
    timeoutMs: number;
    rearm?: boolean;
    count?: number;
  },
): Poller {
  const args = [
    options.trigger,
    String(options.timeoutMs),
    options.rearm ? '1' : '0',
    String(options.busy ?? 0),
    String(options.count ?? 1),
  ];
  const file = `proc/pressure/${options.resource ?? 'cpu'}`;
  let child: ChildProcess;
  if (options.cgroups) {
    const join = options.cgroups.map((cgroup) => `echo $$ > ${cgroup}/cgroup.procs`).join(' && ');
    // The poller is the container's pid 1: when it dies, so do its busy children (--kill-child: and it
    // dies with unshare).
    const inner = `mount --bind ${mnt}/${file} /${file} || exit 1\nexec python3 -c "$0" /${file} "$@"`;
    child = spawn(
      'sh',
      [
        '-c',
        `${join} && exec unshare --pid --fork --kill-child --mount --mount-proc --propagation private sh -c "$1" "$2" "$3" "$4" "$5" "$6" "$7"`,
        'sh',
        inner,
        POLLER,
        ...args,
      ],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
  } else {
    child = spawn('python3', ['-c', POLLER, path.join(mnt, file), ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  }
  cleanup.own(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const lines = (): string[] => stdout.split('\n').filter(Boolean);
  return {
    child,
    lines,
    results: () =>
      lines()
        .filter((line) => /^\d/.test(line))
        .map((line) => line.split(' ').map(Number) as [number, number]),
    async waitFor(pattern, timeoutMs, from = 0) {
      const deadline = Date.now() + timeoutMs * TIME_SCALE;
      for (;;) {
        const found = lines()
          .slice(from)
          .find((line) => pattern.test(line));
        if (found) return found;
        if (Date.now() > deadline || child.exitCode !== null) {
          throw new Error(
            `poller never printed ${pattern} within ${timeoutMs} ms; stdout:\n${stdout}\nstderr:\n${stderr}`,
          );
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },
  };
}

export const POLLPRI = 0x2;
export const POLLERR = 0x8;

/** Stops a poller and waits for it. */
export async function stopPoller(poller: Poller): Promise<void> {
  if (poller.child.exitCode !== null || poller.child.signalCode !== null) return;
  const exited = new Promise((resolve) => poller.child.once('exit', resolve));
  poller.child.kill('SIGKILL');
  await exited;
}

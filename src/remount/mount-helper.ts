// The one process per mount namespace that looks at and changes a container's mounts. Node cannot make
// the system calls this needs (setns, open_tree, move_mount, mount_setattr, umount2 of a file
// descriptor) without a native addon, and util-linux can only name mounts by path, which a container can
// redirect between the moment we read its mount table and the moment umount(8) resolves the path. So
// the work is done by a short Perl program run by the host's perl (perl-base, part of every Debian and
// Ubuntu system) through its `syscall` builtin:
// * It loads nothing after it has entered the container's mount namespace: from then on the filesystem
//   it would load from is the container's.
// * It reaches each mount by file descriptor: walked from the container's root one component at a time
//   without following any symlink, and accepted only if the kernel says the descriptor is on the very
//   mount (mount ID) that the mount table listed. Everything after that acts on the descriptor.
// * The new mount is a private clone of the live daemon's file, made on the host before entering the
//   namespace (so nothing of the container is used as a source), put beneath the dead mount; then the
//   dead mount is detached. A reader goes from ENOTCONN straight to its own values.
// * It never opens anything for reading or writing: O_PATH descriptors only, so no device or FIFO the
//   container points at is ever opened.

import { spawn } from 'node:child_process';

/** A dead mount as the namespace's mount table lists it. */
export interface HelperTarget {
  mountId: number;
  /** The file or directory of the lxcfs tree it shows, e.g. "/proc/meminfo". */
  root: string;
  /** Where it is mounted, inside the namespace. */
  mountPoint: string;
}

/** probe: whether the first target's connection answers (one target per device);
 * check: whether every target is still reachable as listed (a dry run);
 * heal: check, then replace every target with a clone of the live mount's file. */
export type HelperMode = 'probe' | 'check' | 'heal';

export interface HelperRequest {
  mode: HelperMode;
  /** The live mount on the host, and its device ("major:minor"). */
  mountpoint: string;
  device: string;
  targets: HelperTarget[];
  /** How long the helper may take: it starts no new target after that. */
  budgetMs: number;
  /** When it is killed if it has not finished (a FUSE request of a hung daemon can block it), counted
   * from when it has entered the namespace: until then it has touched no mount. */
  killAfterMs: number;
}

export type TargetResult =
  | { kind: 'ok' }
  | { kind: 'state'; state: 'live' | 'dead' }
  | { kind: 'refused'; why: string }
  | { kind: 'healed'; method: 'replaced' | 'stacked'; mountId: number }
  | { kind: 'failed'; why: string };

export interface HelperOutcome {
  /** Per target mount ID; a target without an entry was not reached. */
  results: Map<number, TargetResult>;
  /** Set when the helper could not start on the namespace at all (nothing changed). */
  fatal?: string;
  /** Set when the budget ran out: while checking (nothing changed) or while healing. */
  budgetRanOut?: 'checking' | 'healing';
  /** Set once every target of a heal was checked: from then on it may have changed something. */
  checked?: boolean;
  /** Set when it did not finish by killAfterMs and was killed. */
  killed?: boolean;
}

/** How long the helper may take to start and enter the namespace. */
const HELPER_START_MS = 60_000;

/** System call numbers and open(2) flags that differ between architectures. */
const ARCH: Record<string, Record<string, number>> = {
  x64: {
    setns: 308,
    umount2: 166,
    openat: 257,
    close: 3,
    fchdir: 81,
    statx: 332,
    clock_gettime: 228,
    O_DIRECTORY: 0x10000,
    O_NOFOLLOW: 0x20000,
  },
  arm64: {
    setns: 268,
    umount2: 39,
    openat: 56,
    close: 57,
    fchdir: 50,
    statx: 291,
    clock_gettime: 113,
    O_DIRECTORY: 0x4000,
    O_NOFOLLOW: 0x8000,
  },
};

// Protocol: stdin holds NUL-terminated fields: mode, mountpoint, device, budget in ms, then three per
// target (mount ID, root, mount point). stdout has "entered" once the helper is in the namespace, then
// one line per result:
//   ok ID | state ID live|dead | refused ID WHY | healed ID replaced|stacked NEWID | failed ID WHY
// "checked" once every target of a heal has passed the check, and at most one of: fatal WHY |
// budget checking|healing.
// Numbers given to syscall() must be numeric scalars (strings are passed as pointers), hence the "+ 0".
const SCRIPT = String.raw`
use strict;
my %nr = map { my ($k, $v) = split /=/; ($k, $v + 0) } @ARGV;
@INC = ();
$| = 1;
my ($AT_FDCWD, $AT_EMPTY_PATH, $FORCE_SYNC, $DONT_SYNC) = (-100, 0x1000, 0x2000, 0x4000);
my ($O_PATH, $O_CLOEXEC, $O_DIRECTORY, $O_NOFOLLOW) = (0x200000, 0x80000, $nr{O_DIRECTORY}, $nr{O_NOFOLLOW});
my ($OPEN_TREE_CLONE, $F_EMPTY, $T_EMPTY, $BENEATH) = (1, 0x4, 0x40, 0x200);
my ($CLONE_NEWNS, $MNT_DETACH, $MS_PRIVATE, $STATX_BASIC, $STATX_MNT_ID) = (0x20000, 2, 0x40000, 0x7ff, 0x1000);
my %DEAD = (103 => 1, 107 => 1, 111 => 1);   # ECONNABORTED, ENOTCONN, ECONNREFUSED
my ($EINVAL, $ENOSYS) = (22, 38);
# syscall() writes through string arguments, so none may be a (read-only) literal.
my ($EMPTY, $SLASH, $PROC) = ('', '/', '/proc');

my $input = do { local $/; <STDIN> };
my @f = split /\0/, $input, -1;
pop @f;
my ($mode, $mountpoint, $device, $budget) = splice @f, 0, 4;
my @targets;
while (@f >= 3) { my ($id, $root, $path) = splice @f, 0, 3; push @targets, { id => $id + 0, root => $root, path => $path }; }

sub now_ms { my $b = "\0" x 16; syscall($nr{clock_gettime}, 1, $b); my ($s, $ns) = unpack 'qq', $b; $s * 1000 + int($ns / 1000000) }
my $deadline = now_ms() + $budget;
sub fatal { print "fatal $_[0]\n"; exit 0 }
sub close_fd { syscall($nr{close}, $_[0] + 0) }
sub statx_of { my ($fd, $flags, $mask) = @_; my $b = "\0" x 256; syscall($nr{statx}, $fd, $EMPTY, $AT_EMPTY_PATH | $flags, $mask, $b) == 0 ? $b : undef }
sub mount_id_of { my $b = statx_of($_[0], $DONT_SYNC, $STATX_MNT_ID); defined $b ? unpack('Q', substr($b, 144, 8)) : undef }
sub device_of { my $b = statx_of($_[0], $DONT_SYNC, 0); defined $b ? join(':', unpack('LL', substr($b, 136, 8))) : '' }

# The mount on top at PATH, walked from this namespace's root without following any symlink.
sub open_path {
  my ($path) = @_;
  my @parts = grep { $_ ne '' } split m{/}, $path;
  return (undef, 'not a path below /') if !@parts || substr($path, 0, 1) ne '/';
  return (undef, 'a . or .. in the path') if grep { $_ eq '.' || $_ eq '..' } @parts;
  my $fd = syscall($nr{openat}, $AT_FDCWD, $SLASH, $O_PATH | $O_DIRECTORY | $O_CLOEXEC);
  return (undef, "cannot open the root directory: $!") if $fd < 0;
  for my $i (0 .. $#parts) {
    my $next = syscall($nr{openat}, $fd, $parts[$i], $O_PATH | $O_NOFOLLOW | $O_CLOEXEC | ($i < $#parts ? $O_DIRECTORY : 0));
    my $err = "$!";
    close_fd($fd);
    return (undef, "not reachable without following a symlink ($err at " . join('/', '', @parts[0 .. $i]) . ')') if $next < 0;
    $fd = $next;
  }
  return ($fd);
}

# The target's mount, by descriptor, if its path still leads to exactly that mount.
sub open_target {
  my ($t) = @_;
  my ($fd, $why) = open_path($t->{path});
  return (undef, $why) unless defined $fd;
  my $id = mount_id_of($fd);
  return ($fd) if defined $id && $id == $t->{id};
  close_fd($fd);
  return (undef, defined $id ? "the path now leads to another mount (ID $id), not the dead one (ID $t->{id})" : "statx: $!");
}

# Clones of the live mount's files, made in the host's namespace, private so that nothing mounted on
# them inside a container propagates anywhere.
my %clone;
if ($mode eq 'heal') {
  my %roots = map { $_->{root} => 1 } @targets;
  for my $root (sort keys %roots) {
    my $source = $root eq '/' ? $mountpoint : $mountpoint . $root;
    my $fd = syscall(428, $AT_FDCWD, $source, $OPEN_TREE_CLONE | $O_CLOEXEC);
    fatal($! + 0 == $ENOSYS ? 'this kernel has no open_tree(2) (Linux 5.2 or later is needed)' : "cannot clone $source: $!") if $fd < 0;
    fatal("$source is no longer the live mount (device " . device_of($fd) . ", not $device)") if device_of($fd) ne $device;
    my $attr = pack 'QQQQ', 0, 0, $MS_PRIVATE, 0;
    if (syscall(442, $fd, $EMPTY, $AT_EMPTY_PATH, $attr, 32) != 0) {
      fatal($! + 0 == $ENOSYS ? 'this kernel has no mount_setattr(2) (Linux 5.12 or later is needed)' : "cannot make the clone of $source private: $!");
    }
    $clone{$root} = $fd;
  }
}
my $host_proc = syscall($nr{openat}, $AT_FDCWD, $PROC, $O_PATH | $O_DIRECTORY | $O_CLOEXEC);
fatal("cannot open /proc: $!") if $host_proc < 0;
fatal("cannot enter the mount namespace: $!") if syscall($nr{setns}, 3, $CLONE_NEWNS) != 0;
# A descriptor of ours is reachable by path only through the host's procfs, from here relative.
fatal("cannot change to the host's /proc: $!") if syscall($nr{fchdir}, $host_proc) != 0;
print "entered\n";

if ($mode eq 'probe') {
  my $t = $targets[0];
  my ($fd, $why) = open_target($t);
  if (!defined $fd) { print "refused $t->{id} $why\n"; exit 0 }
  my $answered = defined statx_of($fd, $FORCE_SYNC, $STATX_BASIC);
  # Any answer other than a dead connection's came from a serving daemon.
  print "state $t->{id} ", (!$answered && $DEAD{$! + 0} ? 'dead' : 'live'), "\n";
  exit 0;
}

my @refused;
for my $t (@targets) {
  if (now_ms() > $deadline) { print "budget checking\n"; exit 0 }
  my ($fd, $why) = open_target($t);
  if (defined $fd) { close_fd($fd); print "ok $t->{id}\n" if $mode eq 'check' } else { push @refused, "refused $t->{id} $why\n" }
}
print @refused;
exit 0 if $mode eq 'check' || @refused;
print "checked\n";

my %attached;
sub source_for {
  my ($root) = @_;
  return delete $clone{$root} if exists $clone{$root};
  return syscall(428, $attached{$root}, $EMPTY, $OPEN_TREE_CLONE | $O_CLOEXEC | $AT_EMPTY_PATH);
}
for my $t (@targets) {
  if (now_ms() > $deadline) { print "budget healing\n"; exit 0 }
  my ($target, $why) = open_target($t);
  if (!defined $target) { print "failed $t->{id} changed while healing: $why\n"; exit 0 }
  my $new = source_for($t->{root});
  if ($new < 0) { print "failed $t->{id} cannot clone the live mount: $!\n"; exit 0 }
  $attached{$t->{root}} //= $new;
  my $method = 'stacked';
  if (syscall(429, $new, $EMPTY, $target, $EMPTY, $F_EMPTY | $T_EMPTY | $BENEATH) == 0) {
    # Ours is beneath the dead mount now. Detach the dead one, unless something was mounted over it
    # meanwhile: detaching would take that and ours with it.
    my ($top) = open_path($t->{path});
    my $top_id = defined $top ? mount_id_of($top) : undef;
    close_fd($top) if defined $top;
    if (defined $top_id && $top_id == $t->{id} && syscall($nr{umount2}, "self/fd/$target", $MNT_DETACH) == 0) {
      $method = 'replaced';
    } else {
      # A mount that cannot be detached (locked into a user namespace's mount namespace): cover it.
      my $cover = source_for($t->{root});
      if ($cover < 0 || syscall(429, $cover, $EMPTY, $target, $EMPTY, $F_EMPTY | $T_EMPTY) != 0) { print "failed $t->{id} cannot detach the dead mount nor cover it: $!\n"; exit 0 }
      $new = $cover;
    }
  } elsif ($! + 0 != $EINVAL || syscall(429, $new, $EMPTY, $target, $EMPTY, $F_EMPTY | $T_EMPTY) != 0) {
    # EINVAL: no mounting beneath (before Linux 6.5); then the new mount goes over the dead one.
    print "failed $t->{id} cannot mount the live file there: $!\n";
    exit 0;
  }
  close_fd($target);
  my ($now) = open_path($t->{path});
  my ($now_id, $new_id) = (defined $now ? mount_id_of($now) : -1, mount_id_of($new));
  close_fd($now) if defined $now;
  if ($now_id != $new_id) { print "failed $t->{id} after the bind, the path shows mount $now_id, not the new one ($new_id)\n"; exit 0 }
  print "healed $t->{id} $method $new_id\n";
}
`;

/** Runs the helper in the mount namespace open as `namespaceFd`. */
export function runMountHelper(namespaceFd: number, request: HelperRequest): Promise<HelperOutcome> {
  const numbers = ARCH[process.arch];
  if (!numbers)
    return Promise.resolve({ results: new Map(), fatal: `remount supports x64 and arm64 hosts, not ${process.arch}` });
  const outcome: HelperOutcome = { results: new Map() };
  return new Promise((resolve) => {
    // A minimal environment: no PERL5LIB or PERL5OPT can add code to the helper.
    const child = spawn('perl', ['-e', SCRIPT, ...Object.entries(numbers).map(([name, value]) => `${name}=${value}`)], {
      stdio: ['pipe', 'pipe', 'pipe', namespaceFd],
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const lines = stdout.split('\n');
      stdout = lines.pop()!;
      for (const line of lines) {
        if (line !== 'entered') record(outcome, line);
        else {
          clearTimeout(timer);
          timer = setTimeout(() => kill({ killed: true }), request.killAfterMs);
        }
      }
    });
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const kill = (why: { killed: true } | { fatal: string }): void => {
      // Not waited for: a request stuck in a dead FUSE daemon can keep it in D state.
      child.kill('SIGKILL');
      child.unref();
      resolve(Object.assign(outcome, why));
    };
    // Before it has entered the namespace it only starts (perl, on a loaded host or under emulation,
    // has taken more than the 5 s a probe may take), and has touched no mount: it gets longer.
    let timer = setTimeout(
      () => kill({ fatal: `the mount helper did not start within ${HELPER_START_MS / 1000} s` }),
      HELPER_START_MS,
    );
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({ ...outcome, fatal: `cannot run perl, which remount needs (Debian: perl-base): ${err.message}` });
    });
    child.on('close', (status) => {
      clearTimeout(timer);
      if (status !== 0 && !outcome.fatal)
        outcome.fatal = `the mount helper failed: ${stderr.trim().split('\n')[0] || `exit status ${status}`}`;
      resolve(outcome);
    });
    child.stdin!.on('error', () => {
      // The helper exited before reading everything; its output says why.
    });
    const fields = [
      request.mode,
      request.mountpoint,
      request.device,
      String(Math.max(0, Math.round(request.budgetMs))),
    ];
    for (const target of request.targets) fields.push(String(target.mountId), target.root, target.mountPoint);
    child.stdin!.end(fields.map((field) => field + '\0').join(''));
  });
}

function record(outcome: HelperOutcome, line: string): void {
  const [kind, id, ...rest] = line.split(' ');
  const detail = rest.join(' ');
  const results = outcome.results;
  switch (kind) {
    case 'ok':
      results.set(Number(id), { kind: 'ok' });
      break;
    case 'state':
      results.set(Number(id), { kind: 'state', state: detail === 'dead' ? 'dead' : 'live' });
      break;
    case 'refused':
      results.set(Number(id), { kind: 'refused', why: detail });
      break;
    case 'failed':
      results.set(Number(id), { kind: 'failed', why: detail });
      break;
    case 'healed':
      results.set(Number(id), {
        kind: 'healed',
        method: rest[0] === 'replaced' ? 'replaced' : 'stacked',
        mountId: Number(rest[1]),
      });
      break;
    case 'checked':
      outcome.checked = true;
      break;
    case 'fatal':
      outcome.fatal = [id, ...rest].join(' ');
      break;
    case 'budget':
      outcome.budgetRanOut = id === 'checking' ? 'checking' : 'healing';
      break;
  }
}

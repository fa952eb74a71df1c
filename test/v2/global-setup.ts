// Runs once before the v2 suite: refuses to run outside the guest (these tests make cgroups at the
// root of the hierarchy, turn on swap, attach loop devices) and says where the suite runs.
import fs from 'node:fs';
import os from 'node:os';

export default function setup(): void {
  if (process.env.V2VM_GUEST !== '1') {
    throw new Error('the v2 suite runs only inside the v2 guest: use `npm run test:v2` (scripts/v2vm/test-v2.sh)');
  }
  const controllers = fs.readFileSync('/sys/fs/cgroup/cgroup.controllers', 'utf8').trim();
  console.log(`v2 guest: Linux ${os.release()}, ${os.cpus().length} CPUs, ${Math.round(os.totalmem() / 2 ** 20)} MiB, cgroup2 controllers: ${controllers}`);
}

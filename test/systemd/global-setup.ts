// Runs once before the systemd suite: refuses to run outside the sdvm guest (the tests install a
// service, start and kill it, and uninstall it) and says where the suite runs.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';

export default function setup(): void {
  if (process.env.SDVM_GUEST !== '1' || fs.readFileSync('/proc/1/comm', 'utf8').trim() !== 'systemd') {
    throw new Error(
      'the systemd suite runs only inside the sdvm guest: use `npm run test:systemd` (scripts/sdvm/test-systemd.sh)',
    );
  }
  if (!process.env.SDVM_PACKAGE) throw new Error('SDVM_PACKAGE (the npm pack tarball to install) is not set');
  if (!process.env.SDVM_PREFIX_TAR)
    throw new Error('SDVM_PREFIX_TAR (the prefix install.sh --root staged, as a tar) is not set');
  const systemd = spawnSync('systemctl', ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0];
  console.log(
    `systemd guest: Linux ${os.release()}, ${systemd}, ${os.cpus().length} CPUs, ${Math.round(os.totalmem() / 2 ** 20)} MiB`,
  );
}

// The remount report as text for a person: one block per namespace, then one summary line.

import type { MountReport, NamespaceReport, RemountReport } from './remount.js';

function plural(count: number, word: string): string {
  return `${count} ${word}${count === 1 ? '' : 's'}`;
}

function describeNamespace(ns: NamespaceReport): string[] {
  const head = `${ns.namespace} (pid ${ns.pid})`;
  const of = (action: MountReport['action']): MountReport[] => ns.mounts.filter((mount) => mount.action === action);
  const live = ns.mounts.filter((mount) => mount.state === 'live').length;
  const hung = ns.mounts.filter((mount) => mount.state === 'hung').map((mount) => `  left alone, does not answer: ${mount.target}`);
  switch (ns.outcome) {
    case 'unchanged':
      return [`${head}: nothing to do (${live} live)`, ...hung];
    case 'not-healable': {
      const targets = of('not-healable').map((mount) => mount.target);
      return [
        `${head}: not healable: ${ns.reason}; left untouched: ${targets.join(', ')}`,
        `  fix: ${ns.fix}`,
        ...hung,
      ];
    }
    case 'would-heal':
      return [
        `${head}: would re-bind ${plural(of('would-rebind').length, 'mount')} from ${ns.lxcfsDir} with:`,
        ...ns.commands!.map((command) => `  ${command}`),
        ...hung,
      ];
    case 'healed':
    case 'failed': {
      if (ns.mounts.length === 0) return [`${head}: failed: ${ns.reason}; ${ns.fix}`];
      const rebound = of('rebound');
      return [
        `${head}: re-bound ${plural(rebound.length, 'mount')} from ${ns.lxcfsDir}${rebound.length ? ': ' + rebound.map((mount) => mount.target).join(', ') : ''}`,
        ...of('failed').map((mount) => `  failed: ${mount.target}: ${mount.error}`),
        ...hung,
      ];
    }
  }
}

export function formatReport(report: RemountReport): string {
  const lines = report.namespaces.flatMap(describeNamespace);
  const { namespaces, rebound, skipped, failed } = report.summary;
  const counts = `${plural(namespaces, 'namespace')} seen, ${plural(rebound, 'file')} ${report.dryRun ? 'would be re-bound' : 're-bound'}, ${skipped} skipped, ${failed} failed`;
  const unchanged = report.dryRun ? ' (dry run: nothing changed)' : rebound === 0 ? '; nothing changed' : '';
  lines.push(`remount: ${counts}${unchanged}`);
  return lines.join('\n') + '\n';
}

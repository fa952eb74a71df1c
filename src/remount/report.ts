// The remount report as text for a person: one block per namespace, then one summary line. Every target
// that was not healed is named, with the reason.

import type { MountReport, NamespaceReport, RemountReport } from './remount.js';

function plural(count: number, word: string): string {
  return `${count} ${word}${count === 1 ? '' : 's'}`;
}

function describeNamespace(ns: NamespaceReport): string[] {
  const head = `${ns.namespace} (pid ${ns.pid})`;
  const of = (action: MountReport['action']): MountReport[] => ns.mounts.filter((mount) => mount.action === action);
  const live = ns.mounts.filter((mount) => mount.state === 'live').length;
  const unanswered = ns.mounts
    .filter((mount) => mount.state === 'hung')
    .map((mount) => `  left alone, does not answer: ${mount.target}`);
  const unhealed = (action: MountReport['action']): string[] =>
    of(action).map((mount) => `  not healed: ${mount.target}: ${mount.error}`);
  switch (ns.outcome) {
    case 'unchanged':
      return [`${head}: nothing to do (${live} live)`, ...unanswered];
    case 'not-healable':
      return [`${head}: not healable: ${ns.reason}`, `  fix: ${ns.fix}`, ...unhealed('not-healable'), ...unanswered];
    case 'would-heal': {
      const planned = of('would-rebind').map((mount) => mount.target);
      return [`${head}: would re-bind ${plural(planned.length, 'mount')}: ${planned.join(', ')}`, ...unanswered];
    }
    case 'healed':
    case 'failed': {
      if (ns.mounts.length === 0) return [`${head}: failed: ${ns.reason}; ${ns.fix}`];
      const rebound = of('rebound').map((mount) => mount.target);
      const stacked = of('rebound').filter((mount) => mount.method === 'stacked').length;
      return [
        `${head}: re-bound ${plural(rebound.length, 'mount')}${rebound.length ? ': ' + rebound.join(', ') : ''}`,
        ...(stacked
          ? [
              `  ${stacked} of them on top of their dead mount, which could not be detached (Linux < 6.5, or a mount locked by a user namespace)`,
            ]
          : []),
        ...(ns.outcome === 'failed' ? [`  ${ns.reason}; fix: ${ns.fix}`, ...unhealed('failed')] : []),
        ...unanswered,
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

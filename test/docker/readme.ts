// The README's Docker recipes as the Docker suite runs them: read from README.md itself, so that the
// tests and the text cannot drift apart. The only changes made to a recipe are the ones a test host
// needs: /var/lib/ becomes a directory the test made (the host's /var/lib is not ours to mount on), and
// containers get `--network none` (no network exists for them).

import fs from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { REPO } from '../helpers/processes.js';
import type { Pod } from './kubernetes.js';

const README = fs.readFileSync(path.join(REPO, 'README.md'), 'utf8');

/** The README's code blocks in `language` (```sh, ```yaml). */
function codeBlocks(language: string): string[] {
  return [...README.matchAll(new RegExp('```' + language + '\\n([\\s\\S]*?)```', 'g'))].map((match) => match[1]!);
}

/** A block's commands: continuation lines joined, comments dropped (none of ours has a # in quotes). */
function commands(block: string): string[] {
  return block
    .replace(/\s*\\\n\s*/g, ' ')
    .split('\n')
    .map((line) => line.replace(/(^|\s)#\s.*$/, '').trim())
    .filter(Boolean);
}

/** The one block that has a line containing `marker`. */
function blockWith(marker: string, language = 'sh'): string {
  const blocks = codeBlocks(language).filter((block) => block.includes(marker));
  if (blocks.length !== 1)
    throw new Error(
      `README.md has ${blocks.length} ${language} blocks containing ${JSON.stringify(marker)}, expected 1`,
    );
  return blocks[0]!;
}

/** Rewrites a README command for this test host (see the top of this file). */
export function forTestHost(command: string, varLib: string): string {
  return command.replaceAll('/var/lib/', `${varLib}/`).replace(/\bdocker run /g, 'docker run --network none ');
}

/** Markers of the README's two recipes: lxcfs's usual one, and the one with the directory above. */
export const USUAL_RECIPE = '-v /var/lib/lxcfs:/var/lib/lxcfs:rslave --memory';
export const LEVEL_DOWN_RECIPE = '-v /var/lib/lxcfs-ts:/var/lib/lxcfs-ts:rslave';

export interface DockerRun {
  /** The whole command. */
  command: string;
  /** Everything between `docker run` and the image. */
  options: string[];
  image: string;
  args: string[];
}

/** Splits a `docker run` command without quotes or variables (the recipes are written that way). */
export function parseDockerRun(command: string): DockerRun {
  const words = command.split(/\s+/);
  const run = words.indexOf('run');
  if (words[0] !== 'docker' || run !== 1) throw new Error(`not a docker run command: ${command}`);
  const withValue = new Set([
    '-v',
    '--volume',
    '-m',
    '--memory',
    '--memory-swap',
    '--cpus',
    '--cpuset-cpus',
    '--name',
    '-e',
    '--network',
  ]);
  let i = run + 1;
  while (i < words.length && words[i]!.startsWith('-')) i += withValue.has(words[i]!) ? 2 : 1;
  return { command, options: words.slice(run + 1, i), image: words[i]!, args: words.slice(i + 1) };
}

/** The README's one `docker run` command that contains `marker` (its lines joined). */
export function dockerRecipe(marker: string): DockerRun {
  const runs = codeBlocks('sh')
    .flatMap(commands)
    .filter((command) => command.startsWith('docker run') && command.includes(marker));
  if (runs.length !== 1)
    throw new Error(
      `README.md has ${runs.length} docker run commands containing ${JSON.stringify(marker)}, expected 1`,
    );
  return parseDockerRun(runs[0]!);
}

export interface RecipeList {
  /** Shell lines that come before the docker commands (the array of -v flags). */
  prelude: string;
  /** The array's words. */
  flags: string[];
  /** The docker command lines, each one self-contained after the prelude. */
  lines: string[];
}

/** The README's "what the container sees" block: `lxcfs=(...)` and one docker command per line. */
export function recipeList(): RecipeList {
  const block = blockWith('lxcfs=(');
  const array = /^lxcfs=\(([\s\S]*?)\)$/m.exec(block);
  if (!array) throw new Error('README.md: the block with lxcfs=( has no one-array definition');
  const lines = commands(block.slice(array.index + array[0].length));
  return { prelude: array[0].replace(/\n\s*/g, ' '), flags: array[1]!.trim().split(/\s+/), lines };
}

/** The line of the list that contains `marker` (exactly one must). */
export function recipeLine(list: RecipeList, marker: string): string {
  const lines = list.lines.filter((line) => line.includes(marker));
  if (lines.length !== 1)
    throw new Error(`README.md: ${lines.length} recipe lines contain ${JSON.stringify(marker)}, expected 1`);
  return lines[0]!;
}

/** The README's one Pod manifest: the pod "as written" that the webhook section says needs no change. */
export function readmePod(): Pod {
  const pod = parse(blockWith('kind: Pod', 'yaml')) as Pod;
  if (pod.kind !== 'Pod') throw new Error(`README.md: the block with "kind: Pod" is a ${pod.kind}`);
  return pod;
}

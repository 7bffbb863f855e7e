// No Math.random in src/ for anything an adversary could learn from: V8's Math.random is xorshift128+,
// whose state a few outputs give away, so paths, guards, circuit ids and timers come from the CSPRNG
// (src/crypto/random.ts). The one exception simulates links for test networks only.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { test } from 'node:test';

const ROOT = join(import.meta.dirname, '..', '..');

/** Files allowed to use Math.random, with the reason beside each: none today. */
const ALLOWED = new Set<string>();

function sourceFiles(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) sourceFiles(p, out);
    else if (/\.(ts|js|mjs|cjs)$/.test(name)) out.push(p);
  }
  return out;
}

/** Lines of `code` that call or take Math.random, comments left out (they may name it to forbid it). */
export function mathRandomUses(code: string): number[] {
  const withoutComments = code
    .replace(/\/\*[\s\S]*?\*\//g, (c) => c.replace(/[^\n]/g, ' '))
    .replace(/(^|[^:'"`\\])\/\/.*$/gm, '$1');
  const lines: number[] = [];
  withoutComments.split('\n').forEach((line, i) => {
    if (/\bMath\s*(\.\s*random\b|\[\s*['"`]random['"`]\s*\])/.test(line)) lines.push(i + 1);
  });
  return lines;
}

test('the check finds Math.random however it is written, and not in comments', () => {
  assert.deepEqual(mathRandomUses('const r = opts.random ?? Math.random;'), [1]);
  assert.deepEqual(mathRandomUses('x\nlet id = (Math.random() * 0x7fffffff) >>> 0;'), [2]);
  assert.deepEqual(mathRandomUses("const f = Math['random'];\nconst g = Math . random ();"), [1, 2]);
  assert.deepEqual(mathRandomUses('// Math.random is predictable\n/* nor Math.random */ const a = 1;'), []);
  assert.deepEqual(mathRandomUses('const url = "http://x"; const r = Math.random();'), [1]);
});

test('no file in src/ uses Math.random outside the link simulation of test networks', () => {
  const found: string[] = [];
  for (const file of sourceFiles(join(ROOT, 'src'))) {
    const rel = relative(ROOT, file).split(sep).join('/');
    if (ALLOWED.has(rel)) continue;
    for (const line of mathRandomUses(readFileSync(file, 'utf8'))) found.push(`${rel}:${line}`);
  }
  assert.deepEqual(found, [], `use src/crypto/random.ts instead of Math.random at ${found.join(', ')}`);
});

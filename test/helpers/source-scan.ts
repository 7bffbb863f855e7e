// Reading src/ as text, for the tests that check what it may contain.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';

/** The repository's root, from a compiled test in dist/test/. */
export const ROOT = join(import.meta.dirname, '..', '..', '..');

/** Every non-test TypeScript file under src/, as its path from the root and its text. */
export function sourceFiles(dir = join(ROOT, 'src'), out: { rel: string; text: string }[] = []) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) sourceFiles(p, out);
    else if (name.endsWith('.ts') && !name.endsWith('.test.ts')) {
      out.push({ rel: relative(ROOT, p).split(sep).join('/'), text: readFileSync(p, 'utf8') });
    }
  }
  return out;
}

/** `code` with its comments blanked (line numbers kept): what prose names is not code. */
export function withoutComments(code: string): string {
  return code
    .replace(/\/\*[\s\S]*?\*\//g, (c) => c.replace(/[^\n]/g, ' '))
    .replace(/(^|[^:'"`\\])\/\/.*$/gm, '$1');
}

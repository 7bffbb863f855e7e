// Every error code thrown in src/ is in the catalogue (src/error-codes.ts), every catalogue code is
// thrown or matched somewhere, and docs/errors.md lists exactly the catalogue, area by area.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import {
  type AlliumCode,
  ERROR_AREAS,
  ERROR_CATALOGUE,
  ErrorCode,
  isAlliumCode,
} from '../src/error-codes.js';
import { ROOT, sourceFiles, withoutComments } from './helpers/source-scan.js';

/** Quoted ALLIUM_ names in src/ that are environment variables, not error codes. */
const ENV_NAMES = new Set(['ALLIUM_RUNTIME_FLAGS']);

/** Every quoted `ALLIUM_...` string in `code` ('...', "..." or a template without substitutions). */
export function quotedCodes(code: string): string[] {
  return [...withoutComments(code).matchAll(/(['"`])(ALLIUM_[A-Z0-9_]*)\1/g)].map((m) => m[2]);
}

/** The names of the classes that extend AlliumError (directly or not), from the text of src/. */
export function alliumErrorClasses(texts: string[]): Set<string> {
  const parent = new Map<string, string>();
  for (const t of texts) {
    for (const m of t.matchAll(/class\s+(\w+)\s+extends\s+(\w+)/g)) parent.set(m[1], m[2]);
  }
  const out = new Set<string>(['AlliumError']);
  for (let grew = true; grew; ) {
    grew = false;
    for (const [child, p] of parent) {
      if (out.has(p) && !out.has(child)) {
        out.add(child);
        grew = true;
      }
    }
  }
  return out;
}

/** The literal first arguments of `new X(` for each class X in `classes`: the codes thrown directly. */
export function constructedCodes(code: string, classes: Set<string>): string[] {
  const out: string[] = [];
  for (const m of withoutComments(code).matchAll(/new\s+(\w+)\s*\(\s*(['"`])([^'"`]*)\2/g)) {
    if (classes.has(m[1])) out.push(m[3]);
  }
  return out;
}

const files = sourceFiles();
const catalogueFile = 'src/error-codes.ts';

describe('the scan of src/', () => {
  test('finds quoted codes however they are quoted, and not in comments', () => {
    assert.deepEqual(quotedCodes(`throw new LinkError('ALLIUM_LINK_X', "m");`), ['ALLIUM_LINK_X']);
    assert.deepEqual(quotedCodes('a("ALLIUM_A"); b(`ALLIUM_B`);'), ['ALLIUM_A', 'ALLIUM_B']);
    assert.deepEqual(quotedCodes("// 'ALLIUM_C'\n/* 'ALLIUM_D' */ x('http://h'); // ALLIUM_E"), []);
    assert.deepEqual(quotedCodes('process.env.ALLIUM_LOG_LEVEL; "ALLIUM_VERSION is 1"'), []);
  });

  test('finds the codes given to AlliumError and its subclasses, not to other constructors', () => {
    const src = [
      'class A extends AlliumError {}',
      'class B extends A {}',
      'class C extends Error {}',
      "new B('NOT_ALLIUM', 'm'); new C('x'); new Error('plain'); new AlliumError(\n  'ALLIUM_Q', 'm')",
    ].join('\n');
    const classes = alliumErrorClasses([src]);
    assert.deepEqual([...classes].sort(), ['A', 'AlliumError', 'B']);
    assert.deepEqual(constructedCodes(src, classes), ['NOT_ALLIUM', 'ALLIUM_Q']);
  });

  test('sees the error classes of src/ (so the check below is not vacuous)', () => {
    const classes = alliumErrorClasses(files.map((f) => f.text));
    for (const c of ['LinkError', 'StreamError', 'DirectoryError', 'WireError', 'ConfigError']) {
      assert.ok(classes.has(c), `${c} not seen as an AlliumError`);
    }
  });
});

describe('the catalogue', () => {
  test('holds every code thrown or matched in src/', () => {
    const classes = alliumErrorClasses(files.map((f) => f.text));
    const missing: string[] = [];
    let seen = 0;
    for (const { rel, text } of files) {
      if (rel === catalogueFile) continue;
      for (const code of [...quotedCodes(text), ...constructedCodes(text, classes)]) {
        seen++;
        if (!isAlliumCode(code) && !ENV_NAMES.has(code)) missing.push(`${rel}: ${code}`);
      }
    }
    assert.ok(seen > 100, `only ${seen} codes seen in src/: the scan is broken`);
    assert.deepEqual(missing, [], 'add these codes to src/error-codes.ts, then run `npm run docs:errors`');
  });

  test('has no code that src/ never raises or matches', () => {
    const rest = files.filter((f) => f.rel !== catalogueFile).map((f) => f.text);
    const quoted = new Set(rest.flatMap(quotedCodes));
    const named = new Set(
      rest.flatMap((t) => [...withoutComments(t).matchAll(/\bErrorCode\.(\w+)/g)].map((m) => m[1])),
    );
    const unused = (Object.keys(ERROR_CATALOGUE) as AlliumCode[]).filter(
      (code) => !quoted.has(code) && !named.has(code.slice('ALLIUM_'.length)),
    );
    assert.deepEqual(unused, [], 'drop these codes from src/error-codes.ts, or raise them');
  });

  test('gives every code an area, a meaning and a remedy, each one table cell', () => {
    for (const [code, e] of Object.entries(ERROR_CATALOGUE)) {
      assert.match(code, /^ALLIUM_[A-Z0-9]+(_[A-Z0-9]+)*$/);
      assert.ok(Object.hasOwn(ERROR_AREAS, e.area), `${code}: area ${e.area}`);
      for (const text of [e.meaning, e.remedy]) {
        assert.ok(text.length > 5, `${code}: "${text}" says nothing`);
        assert.doesNotMatch(text, /[|\n]/, `${code}: "${text}" would break its table row`);
      }
    }
  });

  test('ErrorCode holds every code under its short name', () => {
    const codes = Object.keys(ERROR_CATALOGUE);
    assert.equal(Object.keys(ErrorCode).length, codes.length);
    for (const code of codes) assert.equal((ErrorCode as Record<string, string>)[code.slice(7)], code);
    assert.equal(ErrorCode.LINK_QUEUE, 'ALLIUM_LINK_QUEUE');
    assert.ok(!isAlliumCode('ALLIUM_NO_SUCH_CODE') && !isAlliumCode('toString'));
  });
});

describe('docs/errors.md', () => {
  const page = readFileSync(join(ROOT, 'docs', 'errors.md'), 'utf8');

  test('lists exactly the catalogue, area by area (run `npm run docs:errors` after changing it)', async () => {
    const script = await import(pathToFileURL(join(ROOT, 'scripts', 'errors-doc.mjs')).href);
    const tables: string = script.renderCodeTables(ERROR_AREAS, ERROR_CATALOGUE);
    assert.equal(page, script.withCodeTables(page, tables), 'docs/errors.md is not what the catalogue gives');
  });

  test('names every code once, with its meaning and remedy', () => {
    for (const [code, e] of Object.entries(ERROR_CATALOGUE)) {
      const rows = page.split('\n').filter((l) => l.startsWith(`| \`${code}\` |`));
      assert.equal(rows.length, 1, `${code} has ${rows.length} rows`);
      assert.equal(rows[0], `| \`${code}\` | ${e.meaning} | ${e.remedy} |`);
    }
    const documented = [...page.matchAll(/^\| `(ALLIUM_[A-Z0-9_]+)` \|/gm)].map((m) => m[1]);
    assert.deepEqual(
      documented.filter((c) => !isAlliumCode(c)),
      [],
      'codes documented but not in the catalogue',
    );
  });
});

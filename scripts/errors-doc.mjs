#!/usr/bin/env node
// Writes the code tables of docs/errors.md from the catalogue in src/error-codes.ts (built into
// dist/ first: `npm run docs:errors`). test/error-catalogue.test.ts fails when the page and the
// catalogue differ, so the page never lists a code the code base lacks, nor misses one.
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const BEGIN = '<!-- BEGIN codes: generated from src/error-codes.ts by `npm run docs:errors` -->';
export const END = '<!-- END codes -->';

/** The generated part of docs/errors.md: one section per area, one table row per code. */
export function renderCodeTables(areas, catalogue) {
  const out = [];
  for (const [area, title] of Object.entries(areas)) {
    const codes = Object.entries(catalogue).filter(([, e]) => e.area === area);
    if (codes.length === 0) continue;
    out.push(`## ${title}`, '', '| code | meaning | what to do |', '| --- | --- | --- |');
    for (const [code, e] of codes) out.push(`| \`${code}\` | ${e.meaning} | ${e.remedy} |`);
    out.push('');
  }
  return out.join('\n');
}

/** The page with its generated part replaced. */
export function withCodeTables(page, tables) {
  const start = page.indexOf(BEGIN);
  const end = page.indexOf(END);
  if (start < 0 || end < start) throw new Error(`docs/errors.md lacks the markers ${BEGIN} ... ${END}`);
  return `${page.slice(0, start + BEGIN.length)}\n\n${tables}\n${page.slice(end)}`;
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..');
  const { ERROR_AREAS, ERROR_CATALOGUE } = await import(
    pathToFileURL(join(root, 'dist', 'src', 'error-codes.js')).href
  );
  const file = join(root, 'docs', 'errors.md');
  const page = readFileSync(file, 'utf8');
  const next = withCodeTables(page, renderCodeTables(ERROR_AREAS, ERROR_CATALOGUE));
  if (next !== page) writeFileSync(file, next);
  console.log(`${file}: ${Object.keys(ERROR_CATALOGUE).length} codes${next === page ? ', unchanged' : ''}`);
}

#!/usr/bin/env node
// Mutation checks: each mutation in scripts/mutations.mjs breaks the code on purpose in one place (a
// text replacement in a source file), and the named test must then fail. A test that still passes
// against a broken variant cannot fail for that bug: the check reports it as SURVIVED.
//
// The source tree is never touched. For each mutation the compiled tree (dist/, from `npm run build`)
// is copied into a temporary folder, the mutated source file alone is compiled again into that copy
// (TypeScript's transpileModule, no type check), and the test runs there; processes a test starts
// (testnets) run the copy too. The folder is removed afterwards, whatever happened.
//
// Usage: node scripts/mutation-check.mjs [--only id,id,...] [--insuite] [--list] [--control] [--jobs N]
//   --only     run these mutations (default: all)
//   --insuite  run the few that test/mutation-checks.test.ts runs on every npm test (INSUITE)
//   --list     print the mutations and exit
//   --control  also run each test unmutated first, which must pass (proves the failure is the mutation's)
//   --jobs     mutations run at a time (default 1)
// Exit status: 0 when every mutation was caught; 1 when one survived or could not be applied.
import { spawn } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { INSUITE, MUTATIONS } from './mutations.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

function parseArgs(argv) {
  const opts = { only: null, list: false, control: false, jobs: 1 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--only') opts.only = argv[++i].split(',').filter(Boolean);
    else if (a === '--insuite') opts.only = [...INSUITE];
    else if (a === '--list') opts.list = true;
    else if (a === '--control') opts.control = true;
    else if (a === '--jobs') opts.jobs = Math.max(1, Number(argv[++i]));
    else throw new Error(`unknown argument ${a}`);
  }
  return opts;
}

function compilerOptions() {
  const file = join(ROOT, 'tsconfig.json');
  const { config, error } = ts.readConfigFile(file, ts.sys.readFile);
  if (error) throw new Error(ts.flattenDiagnosticMessageText(error.messageText, '\n'));
  return ts.parseJsonConfigFileContent(config, ts.sys, ROOT).options;
}

function sourceFiles(path) {
  const abs = join(ROOT, path);
  if (!existsSync(abs)) return [];
  if (!statSync(abs).isDirectory()) return [path];
  const out = [];
  for (const name of readdirSync(abs)) {
    const child = join(path, name);
    if (statSync(join(ROOT, child)).isDirectory()) out.push(...sourceFiles(child));
    else if (name.endsWith('.ts') && !name.endsWith('.test.ts') && !name.endsWith('.d.ts')) out.push(child);
  }
  return out;
}

function count(haystack, needle) {
  let n = 0;
  for (let i = haystack.indexOf(needle); i >= 0; i = haystack.indexOf(needle, i + 1)) n++;
  return n;
}

/**
 * Where an edit applies: `in` names a file or a folder (searched for the text, so a mutation
 * survives the code moving between files of that folder); the text must occur exactly once.
 */
function locate(edit) {
  const hits = sourceFiles(edit.in).filter(
    (f) => count(readFileSync(join(ROOT, f), 'utf8'), edit.search) > 0,
  );
  const total = hits.reduce((n, f) => n + count(readFileSync(join(ROOT, f), 'utf8'), edit.search), 0);
  if (total !== 1) {
    throw new Error(
      total === 0
        ? `the text to mutate is no longer in ${edit.in}: ${JSON.stringify(edit.search)} (update scripts/mutations.mjs)`
        : `the text to mutate occurs ${total} times in ${edit.in} (${hits.join(', ')}): make it unique`,
    );
  }
  return hits[0];
}

/** Copies dist/ into a fresh folder beside links to everything else, and writes the mutated modules. */
function prepare(mutation, options) {
  const dir = mkdtempSync(join(tmpdir(), 'allium-mutant-'));
  try {
    for (const name of readdirSync(ROOT)) {
      if (name === 'dist' || name === '.git') continue;
      symlinkSync(join(ROOT, name), join(dir, name));
    }
    cpSync(join(ROOT, 'dist'), join(dir, 'dist'), { recursive: true });
    const byFile = new Map();
    for (const edit of mutation.edits) {
      const file = locate(edit);
      const text = byFile.get(file) ?? readFileSync(join(ROOT, file), 'utf8');
      byFile.set(
        file,
        text.replace(edit.search, () => edit.replace),
      );
    }
    for (const [file, text] of byFile) {
      const out = transpile(file, text, options);
      const target = join(dir, 'dist', file.replace(/\.ts$/, '.js'));
      if (!existsSync(target)) throw new Error(`${relative(ROOT, target)} is not built: run npm run build`);
      writeFileSync(target, out);
    }
    return { dir, files: [...byFile.keys()] };
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

function transpile(file, text, options) {
  // One file on its own: an ES module as tsc makes it for this package ("type": "module"), untyped.
  const r = ts.transpileModule(text, {
    compilerOptions: {
      target: options.target,
      module: ts.ModuleKind.ES2022,
      esModuleInterop: options.esModuleInterop,
      sourceMap: false,
      declaration: false,
    },
    fileName: join(ROOT, file),
    reportDiagnostics: true,
  });
  const errors = (r.diagnostics ?? []).filter((d) => d.category === ts.DiagnosticCategory.Error);
  if (errors.length > 0) {
    const msg = errors.map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n')).join('; ');
    throw new Error(`the mutated ${file} does not compile: ${msg}`);
  }
  return r.outputText;
}

/** Runs one test file in `cwd`; resolves with its exit status, whether it timed out, and its output. */
function runTest(cwd, mutation) {
  const testFile = join('dist', mutation.test.replace(/\.ts$/, '.js'));
  const limitMs = mutation.timeoutMs ?? 120_000;
  const args = ['--test', '--test-reporter=tap', `--test-timeout=${limitMs}`];
  if (mutation.name) args.push(`--test-name-pattern=${mutation.name}`);
  args.push(testFile);
  return new Promise((resolve) => {
    // Not as a child of another test run (NODE_TEST_CONTEXT would make it report to a parent that
    // is not there, and run nothing).
    const env = { ...process.env };
    delete env.NODE_TEST_CONTEXT;
    const child = spawn(process.execPath, args, {
      cwd,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    let timedOut = false;
    // The runner's own timeout fails a hung test first; this one ends anything it left behind.
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {}
    }, limitMs + 30_000);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, timedOut, output });
    });
  });
}

/** The first failing test and the first line of its error, from TAP output. */
function firstFailure(output) {
  const lines = output.split('\n');
  const i = lines.findIndex((l) => /^\s*not ok \d+ - /.test(l) && !/^\s*not ok \d+ - \/.*\.js$/.test(l));
  if (i < 0) return null;
  const name = lines[i].replace(/^\s*not ok \d+ - /, '');
  const j = lines.slice(i + 1, i + 40).findIndex((l) => /^\s*error:/.test(l));
  if (j < 0) return name;
  let err = lines[i + 1 + j].trim().replace(/^error:\s*/, '');
  if (err === '|-' || err === '>-') err = (lines[i + 2 + j] ?? '').trim();
  return `${name} (${err.slice(0, 160)})`;
}

async function check(mutation, opts, options) {
  const started = Date.now();
  let prepared;
  try {
    prepared = prepare(mutation, options);
  } catch (err) {
    return { verdict: 'ERROR', detail: err.message, ms: Date.now() - started };
  }
  try {
    if (opts.control) {
      const plain = await runTest(ROOT, mutation);
      if (plain.status !== 0) {
        return { verdict: 'ERROR', detail: 'the test fails without the mutation', ms: Date.now() - started };
      }
    }
    const r = await runTest(prepared.dir, mutation);
    const ms = Date.now() - started;
    if (r.timedOut) return { verdict: 'ERROR', detail: 'the test run did not end', ms };
    const ran = Number(/^# tests (\d+)/m.exec(r.output)?.[1] ?? 0);
    if (ran === 0) return { verdict: 'ERROR', detail: `no test ran:\n${r.output.slice(-2000)}`, ms };
    if (r.status === 0)
      return { verdict: 'SURVIVED', detail: `${ran} test(s) passed against the broken code`, ms };
    const failure = firstFailure(r.output);
    if (!failure) {
      return {
        verdict: 'ERROR',
        detail: `the run failed without a failing test:\n${r.output.slice(-2000)}`,
        ms,
      };
    }
    if (mutation.expect && !new RegExp(mutation.expect).test(r.output)) {
      return { verdict: 'ERROR', detail: `failed, but not as expected (${mutation.expect}): ${failure}`, ms };
    }
    return { verdict: 'caught', detail: failure, ms };
  } finally {
    rmSync(prepared.dir, { recursive: true, force: true });
  }
}

const opts = parseArgs(process.argv.slice(2));
const ids = new Set(MUTATIONS.map((m) => m.id));
for (const id of opts.only ?? []) {
  if (!ids.has(id)) {
    console.error(`no mutation named ${id}; known: ${[...ids].join(', ')}`);
    process.exit(2);
  }
}
const chosen = MUTATIONS.filter((m) => !opts.only || opts.only.includes(m.id));
if (opts.list) {
  for (const m of chosen) console.log(`${m.id}: ${m.what} -> ${m.test}${m.name ? ` (${m.name})` : ''}`);
  process.exit(0);
}
if (!existsSync(join(ROOT, 'dist', 'src'))) {
  console.error('dist/ is missing: run npm run build first');
  process.exit(2);
}
const options = compilerOptions();
console.log(`mutation checks: ${chosen.length}`);
const results = [];
const queue = [...chosen];
await Promise.all(
  Array.from({ length: opts.jobs }, async () => {
    for (let m = queue.shift(); m; m = queue.shift()) {
      const r = await check(m, opts, options);
      results.push({ m, r });
      console.log(`${r.verdict.padEnd(8)} ${m.id} (${(r.ms / 1000).toFixed(1)} s): ${r.detail}`);
    }
  }),
);
const bad = results.filter(({ r }) => r.verdict !== 'caught');
console.log(`${results.length - bad.length} of ${results.length} mutations caught`);
process.exit(bad.length === 0 ? 0 : 1);

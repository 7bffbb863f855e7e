// No plain Error (nor TypeError, RangeError, ...) is made in src/ for a failure a user can meet
// (config, command line, library options, network input): those are AlliumErrors with a code from
// src/error-codes.ts, which a caller can match and docs/errors.md explains. Only internal invariant
// violations (our own bug, never the user's input) may stay plain, each listed here with its reason.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sourceFiles, withoutComments } from './helpers/source-scan.js';

/** The plain errors src/ may make: file, a piece of the line, and why it is not the user's. */
const ALLOWED: { file: string; line: string; reason: string }[] = [
  {
    file: 'src/core/exit-policy.ts',
    line: 'bad built-in prefix',
    reason: 'a prefix of the built-in table of special-purpose ranges does not parse: a bug in that table',
  },
  {
    file: 'src/relay/relay.ts',
    line: "new Error('no answer')",
    reason: 'the handshake pool answered a CREATE with neither keys nor an error: a bug in the pool',
  },
  {
    file: 'src/core/consensus-rule.ts',
    line: "new RangeError('lowMedian of no values')",
    reason:
      'its callers pass the entries of a listed relay or the votes of a majority, never none: a bug in the rule',
  },
  {
    file: 'src/net/http-server.ts',
    line: "new SyntaxError('a __proto__ key')",
    reason:
      "thrown inside JSON.parse's reviver and caught right there: the request gets ALLIUM_HTTP_BAD_JSON",
  },
  {
    file: 'src/net/http-server.ts',
    line: "new SyntaxError('a constructor.prototype key')",
    reason:
      "thrown inside JSON.parse's reviver and caught right there: the request gets ALLIUM_HTTP_BAD_JSON",
  },
];

const BUILT_IN_ERRORS =
  'Error|TypeError|RangeError|SyntaxError|ReferenceError|EvalError|URIError|AggregateError';

/** Lines of `code` that make a built-in error (`new Error(`, `TypeError(`, ...), comments left out. */
export function plainErrorLines(code: string): { line: number; text: string }[] {
  const re = new RegExp(`(^|[^\\w$.])(new\\s+)?(${BUILT_IN_ERRORS})\\s*\\(`);
  const out: { line: number; text: string }[] = [];
  withoutComments(code)
    .split('\n')
    .forEach((text, i) => {
      if (re.test(text)) out.push({ line: i + 1, text: text.trim() });
    });
  return out;
}

test('the check finds built-in errors however they are made, and not AlliumErrors or comments', () => {
  const lines = (s: string) => plainErrorLines(s).map((l) => l.line);
  assert.deepEqual(lines("throw new Error('x');"), [1]);
  assert.deepEqual(lines("a\nreject(new RangeError('x'));\nthrow TypeError('y');"), [2, 3]);
  assert.deepEqual(lines("cb(err ?? new Error('no answer'));"), [1]);
  assert.deepEqual(lines("throw new LinkError('ALLIUM_X', 'm'); x instanceof Error; f(): Error {}"), []);
  assert.deepEqual(lines("// throw new Error('old')\n/* new Error( */ statusForStreamError(e);"), []);
});

test('src/ makes no plain Error outside the short list of internal invariants', () => {
  const found: string[] = [];
  const used = new Set<number>();
  for (const { rel, text: code } of sourceFiles()) {
    for (const { line, text } of plainErrorLines(code)) {
      const allowed = ALLOWED.findIndex((a) => a.file === rel && text.includes(a.line));
      if (allowed >= 0) used.add(allowed);
      else found.push(`${rel}:${line}: ${text}`);
    }
  }
  assert.deepEqual(
    found,
    [],
    'throw an AlliumError subclass with a code from src/error-codes.ts (or, for a bug of our own, list it above with why)',
  );
  const stale = ALLOWED.filter((_, i) => !used.has(i)).map((a) => `${a.file}: ${a.line}`);
  assert.deepEqual(stale, [], 'allow-list entries that match nothing any more: remove them');
});

// Implements docs/configuration.md: `--config FILE` (JSON) for every role. The file's keys are the
// command's long options in camelCase (--data-dir -> "dataDir"); the schema is made from the command's
// own options, so the file and the flags can never drift apart. Values go through the same parsers as
// flags; flags given on the command line override the file.
import { readFileSync } from 'node:fs';
import { type Command, Option as CommanderOption, type Help, type Option } from 'commander';
import * as v from 'valibot';
import { AlliumError } from '../errors.js';

export class ConfigError extends AlliumError {}

/** Options a config file may not set (they are about the command line itself). */
const NOT_IN_FILE = new Set(['config', 'help', 'version']);

export function configOption(): Option {
  return new CommanderOption(
    '--config <file>',
    'read options from this JSON file (keys: the long options in camelCase, see docs/configuration.md); flags given here override it',
  );
}

/** The schema of a command's config file: one optional key per long option, nothing else. */
export function configSchema(cmd: Command) {
  const entries: Record<string, v.GenericSchema> = {};
  for (const opt of cmd.options) {
    const key = opt.attributeName();
    if (NOT_IN_FILE.has(key)) continue;
    let t: v.GenericSchema;
    if (opt.isBoolean() || opt.negate) t = v.boolean();
    else if (opt.argChoices) t = v.picklist(opt.argChoices);
    else t = v.union([v.string(), v.number()]);
    entries[key] = v.optional(t);
  }
  return v.strictObject(entries);
}

/** Edit distance between two short strings (typos in a key). */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_x, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++)
      row[j] = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length];
}

/** The known key a typo most likely meant (at most two edits, and fewer than half its letters). */
function closest(bad: string, known: string[]): string | undefined {
  let best: string | undefined;
  let bestD = Number.POSITIVE_INFINITY;
  for (const k of known) {
    const d = distance(bad.toLowerCase(), k.toLowerCase());
    if (d < bestD && d <= 2 && d < k.length / 2) {
      best = k;
      bestD = d;
    }
  }
  return best;
}

function describe(x: unknown): string {
  return typeof x === 'string'
    ? JSON.stringify(x)
    : Array.isArray(x)
      ? 'an array'
      : x === null
        ? 'null'
        : typeof x === 'object'
          ? 'an object'
          : `${typeof x} ${String(x)}`;
}

function keyPath(path: readonly { key: unknown }[] | undefined): string {
  return (path ?? []).map((p) => String(p.key)).join('.');
}

/**
 * Reads and checks `file` against `cmd`'s options; returns the parsed values (as the flags' parsers
 * return them). Every error names the file, the key and the value.
 */
export function loadConfig(cmd: Command, file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(
      'ALLIUM_CONFIG_READ',
      `cannot read config file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(
      'ALLIUM_CONFIG_JSON',
      `config file ${file} is not valid JSON: ${(err as Error).message}`,
    );
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw new ConfigError(
      'ALLIUM_CONFIG_SHAPE',
      `config file ${file} must hold one JSON object, e.g. {"dataDir": "./r1"}`,
    );
  const schema = configSchema(cmd);
  const known = Object.keys(schema.entries);
  // Unknown keys first, by hand: the message suggests the key that was probably meant.
  const bad = Object.keys(json).find((k) => !Object.hasOwn(schema.entries, k));
  if (bad !== undefined) {
    const hint =
      known.find((k) => k.toLowerCase() === bad.replace(/[-_]/g, '').toLowerCase()) ??
      closest(
        bad.replace(/-(\w)/g, (_m, c: string) => c.toUpperCase()),
        known,
      );
    throw new ConfigError(
      'ALLIUM_CONFIG_KEY',
      `config file ${file}: unknown key "${bad}" for \`allium ${cmd.name()}\`${hint ? ` (did you mean "${hint}"?)` : ''}; known keys: ${known.join(', ')}`,
    );
  }
  const result = v.safeParse(schema, json);
  if (!result.success) {
    const issue = result.issues[0];
    const key = keyPath(issue.path);
    const value = (json as Record<string, unknown>)[String(issue.path?.[0]?.key)];
    const opt = cmd.options.find((o) => o.attributeName() === key);
    const expected =
      opt?.isBoolean() || opt?.negate
        ? 'true or false'
        : opt?.argChoices
          ? `one of ${opt.argChoices.join(', ')}`
          : 'a string or number';
    throw new ConfigError(
      'ALLIUM_CONFIG_VALUE',
      `config file ${file}: key "${key}" has value ${describe(value)}; expected ${expected}${opt ? ` (as for ${opt.long})` : ''}`,
    );
  }
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(result.output as Record<string, unknown>)) {
    if (value === undefined) continue;
    const opt = cmd.options.find((o) => o.attributeName() === key)!;
    if (typeof value === 'boolean' || !opt.parseArg) {
      out[key] = typeof value === 'number' ? String(value) : value;
      continue;
    }
    try {
      out[key] = opt.parseArg(String(value), undefined as never);
    } catch (err) {
      throw new ConfigError(
        'ALLIUM_CONFIG_VALUE',
        `config file ${file}: key "${key}" has value ${describe(value)}: ${(err as Error).message}`,
      );
    }
  }
  return out;
}

/** Finds `--config FILE` / `--config=FILE` in the arguments after the command name. */
export function configPathFromArgs(args: string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--') return undefined;
    if (args[i] === '--config') return args[i + 1];
    if (args[i].startsWith('--config=')) return args[i].slice('--config='.length);
  }
  return undefined;
}

/**
 * Before commander parses `argv`: if the chosen command has --config, load the file into the command's
 * option values (source "config"), so required options may come from it and flags override it.
 */
export function applyConfigFile(program: Command, argv: string[]): void {
  const name = argv[2];
  const cmd = program.commands.find((c) => c.name() === name || c.aliases().includes(name));
  if (!cmd?.options.some((o) => o.attributeName() === 'config')) return;
  const file = configPathFromArgs(argv.slice(3));
  if (file === undefined) return;
  for (const [key, value] of Object.entries(loadConfig(cmd, file)))
    cmd.setOptionValueWithSource(key, value, 'config');
}

function formatDefault(v: unknown): string {
  if (v && typeof v === 'object' && 'host' in v && 'port' in v) {
    const { host, port } = v as { host: string; port: number };
    return `${host.includes(':') ? `[${host}]` : host}:${port}`;
  }
  return JSON.stringify(v);
}

/** --help of every command shows every option's default ("none" when it has none). */
export function showAllDefaults(program: Command): void {
  for (const cmd of program.commands) {
    cmd.configureHelp({
      optionDescription(this: void, opt: Option): string {
        const extra: string[] = [];
        if (opt.argChoices) extra.push(`choices: ${opt.argChoices.join(', ')}`);
        const key = opt.attributeName();
        // One default per option: a description that states its own default keeps it, and a
        // --no-X beside its --X leaves the default to --X.
        const hasPositive = cmd.options.some((o) => o !== opt && !o.negate && o.attributeName() === key);
        if (opt.mandatory) extra.push('required');
        else if (key === 'help' || key === 'version' || opt.description.includes('(default:')) {
        } else if (opt.negate && hasPositive) {
        } else if (opt.negate) extra.push('default: on; this flag turns it off');
        else if (opt.defaultValueDescription) extra.push(`default: ${opt.defaultValueDescription}`);
        else if (opt.defaultValue !== undefined) extra.push(`default: ${formatDefault(opt.defaultValue)}`);
        else if (opt.isBoolean()) extra.push('default: off');
        else extra.push('default: none');
        return extra.length ? `${opt.description} (${extra.join('; ')})` : opt.description;
      },
    } as Partial<Help>);
  }
}

// A node:test reporter that prints, after the run, every test or suite that was skipped (with its
// reason) and every one that failed, by file, so a skip is never silent. scripts/run-tests.mjs adds it
// beside the usual reporter.
import { relative } from 'node:path';

export default async function* summary(source) {
  const skipped = [];
  const failed = [];
  for await (const event of source) {
    if (event.type !== 'test:pass' && event.type !== 'test:fail') continue;
    const d = event.data;
    const where = d.file ? relative(process.cwd(), d.file) : '?';
    if (d.skip !== undefined && d.skip !== false) {
      skipped.push(`  ${where}: ${d.name}: ${d.skip === true ? 'skipped' : d.skip}`);
    } else if (event.type === 'test:fail' && d.details?.error?.failureType !== 'subtestsFailed') {
      failed.push(`  ${where}: ${d.name}`);
    }
  }
  let out = '\n';
  out += skipped.length === 0 ? 'skipped: none\n' : `skipped (${skipped.length}):\n${skipped.join('\n')}\n`;
  if (failed.length > 0) out += `failed (${failed.length}):\n${failed.join('\n')}\n`;
  yield out;
}

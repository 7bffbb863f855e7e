// Implements docs/protocol.md §7: the destinations an exit refuses unless its operator allows them,
// written as policy lines so they can be published in a descriptor. Made from the same list the
// exit enforces (core/special-purpose-addresses.ts), so what is published is what is enforced.
import { formatExitRule, specialPurposeRejects } from '../core/exit-policy.js';
import { AlliumError } from '../errors.js';
import { MAX_EXIT_POLICY_RULES } from '../wire/directory-docs.js';

export const PRIVATE_REJECT_LINES: readonly string[] = specialPurposeRejects().map(formatExitRule);

/**
 * The policy a relay publishes for its operator's `lines`: `reject *:*` for a middle, else the
 * refused special-purpose blocks (unless allowPrivate) in front of the operator's rules, so a client
 * reading it literally knows every destination the exit refuses.
 */
export function publishedExitPolicy(lines: readonly string[], allowPrivate: boolean): string[] {
  if (lines.length === 0) return ['reject *:*'];
  const published = allowPrivate ? [...lines] : [...PRIVATE_REJECT_LINES, ...lines];
  if (published.length > MAX_EXIT_POLICY_RULES) {
    throw new AlliumError(
      'ALLIUM_RELAY_OPTIONS',
      `the exit policy has ${lines.length} rules; with the ${PRIVATE_REJECT_LINES.length} special-purpose blocks published in front of them, a descriptor holds at most ${MAX_EXIT_POLICY_RULES - PRIVATE_REJECT_LINES.length}`,
    );
  }
  return published;
}

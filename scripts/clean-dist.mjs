#!/usr/bin/env node
// Removes dist/ before a build, so a test or module deleted from the source leaves no compiled copy
// behind for the test runner to find.
import { rmSync } from 'node:fs';

rmSync(new URL('../dist', import.meta.url), { recursive: true, force: true });

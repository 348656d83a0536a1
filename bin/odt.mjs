#!/usr/bin/env node
// Launcher: runs the TypeScript CLI through tsx's loader so `odt` works from a checkout without a build step.
import './expose-gc.mjs';
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../cli/main.ts');
process.exitCode = await main(process.argv.slice(2));

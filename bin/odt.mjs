#!/usr/bin/env node
// Launcher: runs the TypeScript CLI through tsx's loader so `odt` works from a checkout (and from
// the installed package, README "Install") without a build step; on a Node older than 22 it runs
// itself on the Node 24 installed beside it (runtime.mjs).
import { fileURLToPath } from 'node:url';
import { ensureRuntime } from './runtime.mjs';

await ensureRuntime(fileURLToPath(import.meta.url), import.meta.url);
await import('./expose-gc.mjs');
const { register } = await import('tsx/esm/api');
register();
const { main } = await import('../cli/main.ts');
process.exitCode = await main(process.argv.slice(2));

// What `node --expose-gc` does, for odt's entry points: bin/odt.mjs imports it first, and the
// bundle's banner (scripts/build.mjs) before anything else. The age streams collect the young
// generation every few MiB to keep an export's RSS low (agent/package/age/encrypt.ts,
// collectYoung); V8 flags are the process's to set, not a library's. The flag reaches the worker
// threads started later; this context, made before it, takes `gc` from a fresh one.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

setFlagsFromString('--expose-gc');
globalThis.gc ??= runInNewContext('gc');

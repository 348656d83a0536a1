// Runs `odt export` in this process and prints its peak RSS on stderr as JSON, so the benchmark
// measures the export process alone (not a wrapper around it). bench-export.ts bundles it with
// esbuild like dist/odt.mjs: it runs as installed agents run, without tsx.
import { main } from '../../cli/main.ts';

const code = await main(process.argv.slice(2));
process.stderr.write(`${JSON.stringify({ maxRssBytes: process.resourceUsage().maxRSS * 1024 })}\n`);
process.exitCode = code;

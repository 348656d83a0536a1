// Runs `odt` (here: `odt import`) in this process and prints its peak RSS on stderr as JSON, so the
// benchmark measures the import process alone. bench-import.ts bundles it with esbuild like
// dist/odt.mjs: it runs as an installed ODT node runs, without tsx.
import { main } from '../../cli/main.ts';

const code = await main(process.argv.slice(2));
process.stderr.write(`${JSON.stringify({ maxRssBytes: process.resourceUsage().maxRSS * 1024 })}\n`);
process.exitCode = code;

// Runs `odt export` in this process and prints its peak RSS on stderr as JSON, so the benchmark
// measures the export process alone (not a wrapper around it).
import { main } from '../../cli/main.ts';

const code = await main(process.argv.slice(2));
process.stderr.write(`${JSON.stringify({ maxRssBytes: process.resourceUsage().maxRSS * 1024 })}\n`);
process.exitCode = code;

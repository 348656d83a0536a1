// Preloaded by the benchmarks (`node --import …/max-rss.mjs dist/odt.mjs …`): prints the peak RSS
// of the whole process on stderr as it exits, so the figure is that of the installed `odt` itself.
import { isMainThread } from 'node:worker_threads';

if (isMainThread) {
  process.on('exit', () => {
    process.stderr.write(`${JSON.stringify({ maxRssBytes: process.resourceUsage().maxRSS * 1024 })}\n`);
  });
}

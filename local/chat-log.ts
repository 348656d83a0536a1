import { appendFileSync } from 'node:fs';
import type { ChatNotifier, TaskProgress, Transfer } from '../core/index.ts';

/**
 * What the people following a transfer would see, without Slack: one JSON line per event in a
 * file of the state folder (the sandbox prints from it; the Slack adapter replaces it).
 */
export class LogChat implements ChatNotifier {
  constructor(private readonly file: string) {}

  private write(event: string, body: Record<string, unknown>): void {
    appendFileSync(this.file, `${JSON.stringify({ at: new Date().toISOString(), event, ...body })}\n`);
  }

  async transferChanged(t: Transfer): Promise<void> {
    this.write('changed', {
      transfer: t.id,
      phase: t.phase,
      items: t.items.map((i) => ({ id: i.id, state: i.result.state })),
    });
  }

  async progress(t: Transfer, progress: readonly TaskProgress[]): Promise<void> {
    this.write('progress', { transfer: t.id, progress });
  }

  async report(t: Transfer): Promise<void> {
    this.write('report', {
      transfer: t.id,
      phase: t.phase,
      items: t.items.map((i) => ({
        id: i.id,
        source: i.source,
        state: i.result.state,
        reason: i.result.reason ?? null,
        bytes: i.result.bytes,
      })),
    });
  }
}

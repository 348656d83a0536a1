import type { Transfer } from '../core/model/transfer.ts';
import type { ChatNotifier } from '../core/ports/chat.ts';
import type { TaskProgress } from '../core/ports/task-queue.ts';

/**
 * The chat port on Lambda until the Slack adapter exists: one JSON line per event on stdout,
 * which Lambda sends to CloudWatch Logs (queryable with Logs Insights).
 */
export class JsonLogChat implements ChatNotifier {
  constructor(private readonly write: (line: string) => void = (line) => console.log(line)) {}

  private emit(event: string, body: Record<string, unknown>): void {
    this.write(JSON.stringify({ at: new Date().toISOString(), source: 'chat', event, ...body }));
  }

  async transferChanged(t: Transfer): Promise<void> {
    this.emit('changed', {
      transfer: t.id,
      phase: t.phase,
      items: t.items.map((i) => ({ id: i.id, state: i.result.state })),
    });
  }

  async progress(t: Transfer, progress: readonly TaskProgress[]): Promise<void> {
    this.emit('progress', { transfer: t.id, progress });
  }

  async report(t: Transfer): Promise<void> {
    this.emit('report', {
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

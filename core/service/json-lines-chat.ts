import type { Transfer } from '../model/transfer.ts';
import type { ChatNotifier } from '../ports/chat.ts';
import type { TaskProgress } from '../ports/task-queue.ts';

/**
 * The chat port without Slack: one JSON line per event, handed to `write` (a file in the state
 * folder for `odt serve`, stdout — CloudWatch Logs — on Lambda).
 */
export class JsonLinesChat implements ChatNotifier {
  constructor(
    private readonly write: (line: string) => void,
    private readonly extra: Readonly<Record<string, unknown>> = {},
    private readonly now: () => Date = () => new Date(),
  ) {}

  private emit(event: string, body: Record<string, unknown>): void {
    this.write(JSON.stringify({ at: this.now().toISOString(), ...this.extra, event, ...body }));
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
        ...(i.result.names ? { names: i.result.names } : {}),
        ...(i.result.capture ? { capture: i.result.capture } : {}),
      })),
    });
  }
}

import type { Block } from '../blocks.ts';
import type { BotContext, WebClient } from '../bot-context.ts';

/** One `/odt <subcommand> …` as its handler sees it. */
export interface SubcommandInput {
  /** Who ran the command. */
  readonly user: string;
  /** The words after the subcommand. */
  readonly args: readonly string[];
  readonly triggerId: string;
  readonly client: WebClient;
  /** Answers the person ephemerally: as the acknowledgement, or after it through the response_url. */
  readonly reply: (text: string, blocks?: Block[]) => Promise<void>;
  /** Acknowledges with no answer (before opening a modal). */
  readonly acknowledge: () => Promise<void>;
}

/** A `/odt` subcommand; a service refusal (OdtError) it throws is shown to the person by `/odt`, anything else goes to app.error. */
export type Subcommand = (input: SubcommandInput, ctx: BotContext) => Promise<void>;

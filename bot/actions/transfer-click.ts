/** The fields of a click on one of the bot's transfer buttons (a block_actions payload) it reads. */
export interface TransferClick {
  readonly user: { id: string };
  readonly trigger_id: string;
  readonly channel?: { id: string };
  readonly message?: { ts: string };
  readonly view?: { type?: string };
}

/** A transfer button's click: the transfer id is the button's value. */
export const clicked = (body: unknown, action: unknown): { id: string; b: TransferClick } => ({
  id: (action as { value: string }).value,
  b: body as TransferClick,
});

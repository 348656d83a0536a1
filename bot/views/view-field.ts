/** A submitted modal's state values, as far as the bot's own modals read them. */
export type StateValues = Record<
  string,
  Record<string, { value?: string | null; selected_options?: { value: string }[] }>
>;

/** The trimmed text of the input in `block` (its action id is `value`); '' when empty. */
export const field = (values: StateValues, block: string): string =>
  (values[block]?.value?.value ?? '').trim();

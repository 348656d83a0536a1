import type { Approvers } from '../core/ports/approvers.ts';

/** Bot settings from the environment (shared by the HTTP, Lambda and Socket Mode entry points). */
export interface BotEnv {
  readonly token: string;
  readonly signingSecret: string;
  readonly appToken: string | undefined;
  /** ODT_APPROVERS as listed, or the Approvers the service holds (bot/app.ts BotOptions.approvers). */
  readonly approvers: readonly string[] | Approvers;
  readonly approversChannel: string;
  /** Web API base URL (SLACK_API_URL); default Slack's own. For tests, or an egress proxy. */
  readonly apiUrl?: string;
}

export function botEnv(env: NodeJS.ProcessEnv = process.env): BotEnv {
  const need = (name: string): string => {
    const v = env[name];
    if (!v) throw new Error(`${name} is not set; see docs/slack-app-manifest.yaml for the Slack app.`);
    return v;
  };
  return {
    token: need('SLACK_BOT_TOKEN'),
    signingSecret: env.SLACK_SIGNING_SECRET ?? '',
    appToken: env.SLACK_APP_TOKEN,
    approvers: (env.ODT_APPROVERS ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
    approversChannel: need('ODT_APPROVERS_CHANNEL'),
    ...(env.SLACK_API_URL ? { apiUrl: env.SLACK_API_URL } : {}),
  };
}

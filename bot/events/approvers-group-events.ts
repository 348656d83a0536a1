import type { App } from '@slack/bolt';
import type { Approvers } from '../../core/ports/approvers.ts';
import {
  SlackApprovers,
  type SubteamMembersChangedEvent,
  type SubteamUpdatedEvent,
} from '../approvers-group.ts';

/**
 * The approvers group: Slack says when its members change (`subteam_members_changed`) or the
 * group itself does (`subteam_updated`). Only a SlackApprovers with user groups listens.
 */
export function registerApproversGroupEvents(app: App, approvers: Approvers): void {
  if (!(approvers instanceof SlackApprovers)) return;
  app.event('subteam_members_changed', async ({ event }) => {
    await approvers.membersChanged(event as unknown as SubteamMembersChangedEvent);
  });
  app.event('subteam_updated', async ({ event }) => {
    await approvers.groupUpdated(event as unknown as SubteamUpdatedEvent);
  });
}

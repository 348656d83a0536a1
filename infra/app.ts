import { App } from 'aws-cdk-lib';
import { SneakernetStack } from './sneakernet-stack.ts';

/**
 * `npx cdk synth` / `cdk deploy`. Context (cdk.json or `-c`): `stackName` (default Sneakernet),
 * `approvers` (comma list), `approversChannel` (a Slack channel id: adds the Slack app). Synthesizes offline; the account and region are those of the
 * deploying credentials (env-agnostic unless CDK_DEFAULT_* are set).
 */
const app = new App();
const context = (key: string): string | undefined => {
  const v = app.node.tryGetContext(key) as unknown;
  return typeof v === 'string' && v.length > 0 ? v : undefined;
};
const account = process.env.CDK_DEFAULT_ACCOUNT;
const region = process.env.CDK_DEFAULT_REGION;

new SneakernetStack(app, context('stackName') ?? 'Sneakernet', {
  description: 'Sneakernet: offline data transfer into vCloud Director, the control plane on AWS',
  ...(account && region ? { env: { account, region } } : {}),
  approvers: (context('approvers') ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean),
  ...(context('approversChannel') ? { slack: { approversChannel: context('approversChannel')! } } : {}),
});

app.synth();

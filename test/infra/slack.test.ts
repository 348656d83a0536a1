import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { slackAccess, slackChatTableAccess } from '../../infra/function-access.ts';
import { SneakernetStack } from '../../infra/sneakernet-stack.ts';

// The stack with a Slack app (props.slack): the Slack function on POST /slack/events, its secret,
// every function's chat access. Fast synth, as in stack.test.ts.
type Resource = { Type: string; Properties: Record<string, unknown> };
type Statement = { Action: string | string[]; Resource: unknown; Effect: string };
const synth = (props: ConstructorParameters<typeof SneakernetStack>[2]) => {
  const app = new App({
    context: { 'aws:cdk:bundling-stacks': [] },
    builtinCloudFormationValidation: false,
  } as ConstructorParameters<typeof App>[0]);
  return new SneakernetStack(app, 'Test', props);
};
let stack: SneakernetStack;
let resources: Record<string, Resource>;
let outputs: Record<string, { Value: unknown }>;

beforeAll(() => {
  stack = synth({ slack: { approversChannel: 'C0APPROVERS' }, approvers: ['UAPPROVER1'] });
  const t = Template.fromStack(stack).toJSON();
  resources = t.Resources as Record<string, Resource>;
  outputs = t.Outputs as Record<string, { Value: unknown }>;
});

const ofType = (type: string) => Object.entries(resources).filter(([, r]) => r.Type === type);
const idOf = (c: { node: { defaultChild?: unknown } }) => stack.getLogicalId(c.node.defaultChild as never);
const list = <T>(v: T | T[]): T[] => (Array.isArray(v) ? v : [v]);
const statementsOf = (fnId: string): Statement[] => {
  const roleId = (resources[fnId]!.Properties.Role as { 'Fn::GetAtt': [string] })['Fn::GetAtt'][0];
  return ofType('AWS::IAM::Policy')
    .filter(([, p]) => (p.Properties.Roles as { Ref: string }[]).some((r) => r.Ref === roleId))
    .flatMap(([, p]) => (p.Properties.PolicyDocument as { Statement: Statement[] }).Statement);
};

describe('the stack with a Slack app', () => {
  it('routes POST /slack/events, and only it, to functions/slack.ts', () => {
    const fn = stack.slackFunction!;
    expect(resources[idOf(fn)]!.Properties.Description).toBe(`Sneakernet Slack app: ${slackAccess.entry}`);
    const integrations = ofType('AWS::ApiGatewayV2::Integration').filter(
      ([, i]) =>
        JSON.stringify(i.Properties.IntegrationUri) === JSON.stringify({ 'Fn::GetAtt': [idOf(fn), 'Arn'] }),
    );
    expect(integrations).toHaveLength(1);
    const [integrationId] = integrations[0]!;
    const routes = ofType('AWS::ApiGatewayV2::Route')
      .map(([, r]) => r.Properties)
      .filter((r) => JSON.stringify(r.Target).includes(integrationId));
    expect(routes.map((r) => r.RouteKey)).toEqual(['POST /slack/events']);
    expect(JSON.stringify(outputs.SlackRequestUrl!.Value)).toContain('/slack/events');
  });

  it('gives every function the Slack secret and channel, and the chat access', () => {
    const secretRef = { Ref: idOf(stack.slackSecret!) };
    const secret = resources[idOf(stack.slackSecret!)]!;
    // No real credential in the template: a placeholder the functions refuse with instructions.
    expect(secret.Properties.SecretString).toBeUndefined();
    expect(JSON.stringify(secret.Properties.GenerateSecretString)).not.toMatch(/xoxb-/);
    const fns = [...Object.values(stack.functions), stack.agentApi, stack.slackFunction!];
    for (const fn of fns) {
      const env = (resources[idOf(fn)]!.Properties.Environment as { Variables: Record<string, unknown> })
        .Variables;
      expect(env.SLACK_SECRET_ARN).toEqual(secretRef);
      expect(env.APPROVERS_CHANNEL).toBe('C0APPROVERS');
      const statements = statementsOf(idOf(fn));
      expect(statements).toContainEqual({
        Action: 'secretsmanager:GetSecretValue',
        Effect: 'Allow',
        Resource: secretRef,
      });
      const onTable = statements.find(
        (s) => JSON.stringify(s.Resource) === JSON.stringify({ 'Fn::GetAtt': [idOf(stack.table), 'Arn'] }),
      )!;
      for (const a of slackChatTableAccess) expect(list(onTable.Action)).toContain(a);
      for (const s of statements) for (const a of list(s.Action)) expect(a).not.toMatch(/\*/);
    }
  });

  it('lets the Slack function start executions and send task results, on this state machine only', () => {
    const states = statementsOf(idOf(stack.slackFunction!)).filter((s) =>
      list(s.Action).some((a) => a.startsWith('states:')),
    );
    expect(states).toHaveLength(1);
    expect(list(states[0]!.Action).sort()).toEqual([...slackAccess.states].sort());
    expect(JSON.stringify(states[0]!.Resource)).toContain(':stateMachine:Test-transfer');
  });

  it('refuses a channel name where a channel id belongs, and has no Slack without props.slack', () => {
    expect(() => synth({ slack: { approversChannel: '#approvers' } })).toThrow(
      /channel id such as C0123ABCD/,
    );
    const plain = synth({});
    expect(plain.slackFunction).toBeUndefined();
    const routes = Template.fromStack(plain).findResources('AWS::ApiGatewayV2::Route');
    expect(JSON.stringify(routes)).not.toContain('/slack/events');
  });
});

import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { agentApiAccess } from '../../infra/function-access.ts';
import { SneakernetStack } from '../../infra/sneakernet-stack.ts';

// The agent API's edge: HTTP API → the agent-api function, its secret, its IAM, its alarms.
// Fast synth (no bundling, no built-in CloudFormation check), as in stack.test.ts.
type Resource = { Type: string; Properties: Record<string, unknown> };
let stack: SneakernetStack;
let resources: Record<string, Resource>;

beforeAll(() => {
  const app = new App({
    context: { 'aws:cdk:bundling-stacks': [] },
    builtinCloudFormationValidation: false,
  } as ConstructorParameters<typeof App>[0]);
  stack = new SneakernetStack(app, 'Test');
  resources = Template.fromStack(stack).toJSON().Resources as Record<string, Resource>;
});

const ofType = (type: string) => Object.entries(resources).filter(([, r]) => r.Type === type);
const idOf = (c: { node: { defaultChild?: unknown } }) => stack.getLogicalId(c.node.defaultChild as never);
const list = <T>(v: T | T[]): T[] => (Array.isArray(v) ? v : [v]);
const smArn = {
  'Fn::Join': [
    '',
    [
      'arn:',
      { Ref: 'AWS::Partition' },
      ':states:',
      { Ref: 'AWS::Region' },
      ':',
      { Ref: 'AWS::AccountId' },
      ':stateMachine:Test-transfer',
    ],
  ],
};

describe('the HTTP API', () => {
  it('routes exactly enrollment, /agent/* and /admin/* to the agent-api function, nothing else', () => {
    const [[apiId, api] = []] = ofType('AWS::ApiGatewayV2::Api');
    expect(api!.Properties.ProtocolType).toBe('HTTP');
    const routes = ofType('AWS::ApiGatewayV2::Route').map(([, r]) => r.Properties);
    expect(routes.map((r) => r.RouteKey).sort()).toEqual([
      'GET /admin/{proxy+}',
      'GET /agent/{proxy+}',
      'POST /admin/{proxy+}',
      'POST /agent/{proxy+}',
      'POST /agents/enroll',
    ]);
    const integrations = ofType('AWS::ApiGatewayV2::Integration');
    expect(integrations).toHaveLength(1);
    const [integrationId, integration] = integrations[0]!;
    expect(integration.Properties).toMatchObject({
      ApiId: { Ref: apiId },
      IntegrationType: 'AWS_PROXY',
      PayloadFormatVersion: '2.0',
      IntegrationUri: { 'Fn::GetAtt': [idOf(stack.agentApi), 'Arn'] },
    });
    for (const r of routes) {
      expect(r.Target).toEqual({ 'Fn::Join': ['', ['integrations/', { Ref: integrationId }]] });
      // No gateway authorizer: the function authenticates agents by their keys and admins by the
      // secret token (test/functions/agent-api.test.ts shows the refusals).
      expect(r.AuthorizationType ?? 'NONE').toBe('NONE');
    }
  });

  it('is the function that authenticates: functions/agent-api.ts, with the admin token secret', () => {
    const fn = resources[idOf(stack.agentApi)]!;
    expect(fn.Properties.Description).toBe(`Sneakernet agent API: ${agentApiAccess.entry}`);
    const env = (fn.Properties.Environment as { Variables: Record<string, unknown> }).Variables;
    expect(env.ADMIN_TOKEN_SECRET_ARN).toEqual({ Ref: idOf(stack.adminToken) });
    const secret = resources[idOf(stack.adminToken)]!;
    expect(secret.Type).toBe('AWS::SecretsManager::Secret');
    expect(secret.Properties.GenerateSecretString).toMatchObject({ PasswordLength: 48 });
    expect(secret.Properties.SecretString).toBeUndefined();
  });

  it('lets only this API’s routes and the sweep schedule invoke the function', () => {
    const perms = ofType('AWS::Lambda::Permission').map(([, p]) => p.Properties);
    expect(perms.length).toBeGreaterThan(0);
    for (const p of perms) {
      expect(p.Action).toBe('lambda:InvokeFunction');
      expect(p.SourceArn).toBeDefined();
      expect(['apigateway.amazonaws.com', 'events.amazonaws.com']).toContain(p.Principal);
    }
  });
});

describe('the agent-api function’s IAM', () => {
  type Statement = { Action: string | string[]; Resource: unknown; Effect: string };
  const mine = (): Statement[] => {
    const roleId = (resources[idOf(stack.agentApi)]!.Properties.Role as { 'Fn::GetAtt': [string] })[
      'Fn::GetAtt'
    ][0];
    return ofType('AWS::IAM::Policy')
      .filter(([, p]) => (p.Properties.Roles as { Ref: string }[]).some((r) => r.Ref === roleId))
      .flatMap(([, p]) => (p.Properties.PolicyDocument as { Statement: Statement[] }).Statement);
  };

  it('is exactly: its log group, the table, the index, task callbacks on this state machine, the secret', () => {
    const tableArn = { 'Fn::GetAtt': [idOf(stack.table), 'Arn'] };
    const byAction = (prefix: string) =>
      mine().filter((s) => list(s.Action).some((a) => a.startsWith(prefix)));
    const dynamo = byAction('dynamodb:');
    expect(dynamo).toHaveLength(2);
    const onTable = dynamo.find((s) => JSON.stringify(s.Resource) === JSON.stringify(tableArn))!;
    expect(list(onTable.Action).sort()).toEqual([...agentApiAccess.table].sort());
    const onIndex = dynamo.find((s) => s !== onTable)!;
    expect(list(onIndex.Action)).toEqual([...agentApiAccess.index]);
    expect(onIndex.Resource).toEqual({ 'Fn::Join': ['', [tableArn, '/index/gsi1']] });
    const states = byAction('states:');
    expect(states).toHaveLength(1);
    expect(list(states[0]!.Action).sort()).toEqual(
      ['states:SendTaskFailure', 'states:SendTaskHeartbeat', 'states:SendTaskSuccess'].sort(),
    );
    expect(states[0]!.Resource).toEqual(smArn);
    const secrets = byAction('secretsmanager:');
    expect(secrets).toEqual([
      { Action: 'secretsmanager:GetSecretValue', Effect: 'Allow', Resource: { Ref: idOf(stack.adminToken) } },
    ]);
    expect(byAction('logs:')).toHaveLength(1);
    expect(mine()).toHaveLength(5);
    for (const s of mine()) {
      expect(s.Effect).toBe('Allow');
      for (const a of list(s.Action)) expect(a).not.toMatch(/\*/);
      expect(JSON.stringify(s.Resource)).not.toMatch(/"\*"|:\*"|\/\*"/);
    }
  });
});

describe('alarms', () => {
  const alarms = () => ofType('AWS::CloudWatch::Alarm').map(([, a]) => a.Properties);

  it('exist for failed executions, stale heartbeats and agent API 5xx', () => {
    expect(
      alarms()
        .map((a) => a.MetricName)
        .sort(),
    ).toEqual(['5xx', 'ExecutionsFailed', 'StaleTaskHolds']);
  });

  it('stale heartbeats: any stale hold, or no sweep result at all, alarms', () => {
    expect(alarms().find((a) => a.MetricName === 'StaleTaskHolds')).toMatchObject({
      Namespace: 'Sneakernet/Agents',
      Dimensions: [{ Name: 'Service', Value: 'agent-api' }],
      Statistic: 'Maximum',
      Period: 900,
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      TreatMissingData: 'breaching',
    });
    const rules = ofType('AWS::Events::Rule').map(([, r]) => r.Properties);
    expect(rules).toHaveLength(1);
    expect(rules[0]).toMatchObject({
      ScheduleExpression: 'rate(5 minutes)',
      State: 'ENABLED',
      Targets: [
        {
          Arn: { 'Fn::GetAtt': [idOf(stack.agentApi), 'Arn'] },
          Input: JSON.stringify({ action: 'heartbeat-sweep' }),
        },
      ],
    });
  });

  it('agent API 5xx on this API', () => {
    const [[apiId] = []] = ofType('AWS::ApiGatewayV2::Api');
    expect(alarms().find((a) => a.MetricName === '5xx')).toMatchObject({
      Namespace: 'AWS/ApiGateway',
      Dimensions: [{ Name: 'ApiId', Value: { Ref: apiId } }],
      Threshold: 1,
      TreatMissingData: 'notBreaching',
    });
  });
});

describe('the table', () => {
  it('expires enrollment codes and used nonces by TTL', () => {
    expect(resources[idOf(stack.table)]!.Properties.TimeToLiveSpecification).toEqual({
      AttributeName: 'ttl',
      Enabled: true,
    });
  });
});

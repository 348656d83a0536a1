import { readFileSync } from 'node:fs';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { CfnFunction } from 'aws-cdk-lib/aws-lambda';
import { beforeAll, describe, expect, it } from 'vitest';
import { workflowFunctions } from '../../infra/function-access.ts';
import { SneakernetStack } from '../../infra/sneakernet-stack.ts';
import {
  definitionPath,
  definitionPlaceholders,
  type Placeholder,
  substitute,
} from '../../shared/workflow-definition.ts';

// Fast synth (see the orchestration notes): no esbuild bundling, no built-in CloudFormation check.
type Resource = { Type: string; Properties: Record<string, unknown>; DependsOn?: string[] };
let stack: SneakernetStack;
let resources: Record<string, Resource>;
let template: Template;

beforeAll(() => {
  const app = new App({
    context: { 'aws:cdk:bundling-stacks': [] },
    builtinCloudFormationValidation: false,
  } as ConstructorParameters<typeof App>[0]);
  stack = new SneakernetStack(app, 'Test', { approvers: ['bob', 'carol'] });
  template = Template.fromStack(stack);
  resources = template.toJSON().Resources as Record<string, Resource>;
});

const ofType = (type: string) => Object.entries(resources).filter(([, r]) => r.Type === type);
const logicalId = (fn: { node: { defaultChild: unknown } }) =>
  Stack.of(stack).getLogicalId(fn.node.defaultChild as CfnFunction);

/**
 * Resolves a CloudFormation value to a string: literals stay, Fn::Join joins, and a reference to
 * a resource's ARN becomes `<<Ref:logicalId>>` so that it can be compared with the file.
 */
function resolve(value: unknown): string {
  if (typeof value === 'string') return value;
  const v = value as Record<string, unknown>;
  if ('Fn::Join' in v) {
    const [sep, parts] = v['Fn::Join'] as [string, unknown[]];
    return parts.map(resolve).join(sep);
  }
  if ('Fn::GetAtt' in v) {
    const [id, attr] = v['Fn::GetAtt'] as [string, string];
    return attr === 'Arn' ? `<<Ref:${id}>>` : `<<GetAtt:${id}.${attr}>>`;
  }
  if ('Ref' in v) return `<<Ref:${String(v.Ref)}>>`;
  throw new Error(`cannot resolve ${JSON.stringify(value)}`);
}

/** The state machine's definition as Step Functions will run it, references as markers. */
function deployedDefinition(): string {
  const [[, sm] = []] = ofType('AWS::StepFunctions::StateMachine');
  if (!sm) throw new Error('no state machine');
  const text = resolve(sm.Properties.DefinitionString);
  const subs = (sm.Properties.DefinitionSubstitutions ?? {}) as Record<string, unknown>;
  const values = Object.fromEntries(Object.entries(subs).map(([k, v]) => [k, resolve(v)]));
  // Step Functions replaces ${Name} from DefinitionSubstitutions at deploy time.
  return Object.keys(values).length > 0 ? substitute(text, values) : text;
}

describe('the state machine', () => {
  it('runs exactly infra/workflow/transfer.asl.json, with the three functions in its placeholders', () => {
    const fileText = readFileSync(definitionPath, 'utf8');
    const refs = Object.fromEntries(
      Object.entries(workflowFunctions).map(([name, f]) => [
        f.placeholder,
        `<<Ref:${logicalId(stack.functions[name as keyof typeof workflowFunctions])}>>`,
      ]),
    ) as Record<Placeholder, string>;
    expect(Object.keys(refs).sort()).toEqual([...definitionPlaceholders].sort());
    const expected = substitute(fileText, refs);
    const deployed = deployedDefinition();
    expect(deployed).toBe(expected); // byte for byte, not only the same JSON
    expect(JSON.parse(deployed)).toEqual(JSON.parse(expected));
    expect(deployed).not.toMatch(/\$\{/);
  });

  it('each placeholder points at the function of the matching handler file', () => {
    const [[, sm] = []] = ofType('AWS::StepFunctions::StateMachine');
    const subs = sm!.Properties.DefinitionSubstitutions as Record<string, unknown>;
    for (const [name, f] of Object.entries(workflowFunctions)) {
      const id = logicalId(stack.functions[name as keyof typeof workflowFunctions]);
      expect(resolve(subs[f.placeholder])).toBe(`<<Ref:${id}>>`);
      expect(resources[id]!.Properties.Description).toBe(`Sneakernet workflow: ${f.entry}`);
    }
  });

  it('gives every callback task the HeartbeatSeconds and TimeoutSeconds that the file has', () => {
    type State = { Resource?: string; HeartbeatSeconds?: number; TimeoutSeconds?: number };
    const file = JSON.parse(readFileSync(definitionPath, 'utf8')) as { States: Record<string, State> };
    const deployed = JSON.parse(deployedDefinition()) as { States: Record<string, State> };
    const callbacks = Object.entries(file.States).filter(([, s]) =>
      s.Resource?.endsWith('.waitForTaskToken'),
    );
    expect(callbacks.length).toBeGreaterThanOrEqual(9);
    for (const [name, s] of callbacks) {
      const d = deployed.States[name]!;
      expect(d.TimeoutSeconds, name).toBeGreaterThan(0);
      expect(d.TimeoutSeconds, name).toBe(s.TimeoutSeconds);
      expect(d.HeartbeatSeconds, name).toBe(s.HeartbeatSeconds);
    }
    for (const name of ['Export', 'Import'])
      expect(deployed.States[name]!.HeartbeatSeconds).toBeGreaterThan(0);
  });

  it('is a STANDARD state machine with a fixed name that the functions know', () => {
    const [[, sm] = []] = ofType('AWS::StepFunctions::StateMachine');
    expect(sm!.Properties.StateMachineType).toBe('STANDARD');
    expect(sm!.Properties.StateMachineName).toBe('Test-transfer');
    for (const [, fn] of ofType('AWS::Lambda::Function')) {
      const env = (fn.Properties.Environment as { Variables: Record<string, unknown> }).Variables;
      expect(resolve(env.STATE_MACHINE_ARN)).toBe(
        'arn:<<Ref:AWS::Partition>>:states:<<Ref:AWS::Region>>:<<Ref:AWS::AccountId>>:stateMachine:Test-transfer',
      );
    }
  });

  it('raises an alarm when an execution fails', () => {
    const alarms = ofType('AWS::CloudWatch::Alarm').filter(
      ([, a]) => a.Properties.MetricName === 'ExecutionsFailed',
    );
    expect(alarms).toHaveLength(1);
    const [, alarm] = alarms[0]!;
    const smId = stack.getLogicalId(stack.stateMachine.node.defaultChild as never);
    expect(alarm.Properties).toMatchObject({
      Namespace: 'AWS/States',
      MetricName: 'ExecutionsFailed',
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      TreatMissingData: 'notBreaching',
      Dimensions: [{ Name: 'StateMachineArn', Value: { Ref: smId } }],
    });
  });
});

describe('the functions', () => {
  it('are the three handlers and the agent API on nodejs24.x, arm64, with their environment', () => {
    const fns = ofType('AWS::Lambda::Function');
    expect(fns).toHaveLength(4);
    const tableId = stack.getLogicalId(stack.table.node.defaultChild as never);
    for (const [, fn] of fns) {
      expect(fn.Properties.Runtime).toBe('nodejs24.x');
      expect(fn.Properties.Architectures).toEqual(['arm64']);
      expect(fn.Properties.Handler).toBe('index.handler');
      const env = (fn.Properties.Environment as { Variables: Record<string, unknown> }).Variables;
      expect(env.TABLE_NAME).toEqual({ Ref: tableId });
      expect(env.APPROVERS).toBe('bob,carol');
      expect(env.HEARTBEAT_SECONDS).toBe('600');
      expect(fn.Properties.LoggingConfig).toMatchObject({ LogGroup: { Ref: expect.any(String) } });
    }
  });

  it('log to groups with a retention', () => {
    const groups = ofType('AWS::Logs::LogGroup');
    expect(groups).toHaveLength(4);
    for (const [, g] of groups) expect(g.Properties.RetentionInDays).toBe(30);
  });
});

describe('the table', () => {
  it('is the store’s table definition, on demand, with point-in-time recovery, retained', () => {
    template.hasResource('AWS::DynamoDB::Table', {
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
      Properties: {
        BillingMode: 'PAY_PER_REQUEST',
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        KeySchema: [
          { AttributeName: 'pk', KeyType: 'HASH' },
          { AttributeName: 'sk', KeyType: 'RANGE' },
        ],
        GlobalSecondaryIndexes: [
          {
            IndexName: 'gsi1',
            KeySchema: [
              { AttributeName: 'gsi1pk', KeyType: 'HASH' },
              { AttributeName: 'gsi1sk', KeyType: 'RANGE' },
            ],
            Projection: { ProjectionType: 'ALL' },
          },
        ],
      },
    });
  });
});

describe('IAM', () => {
  type Statement = { Effect: string; Action: string | string[]; Resource: unknown };
  const statements = (): { policy: string; roles: string[]; s: Statement }[] =>
    ofType('AWS::IAM::Policy').flatMap(([id, p]) =>
      (p.Properties.PolicyDocument as { Statement: Statement[] }).Statement.map((s) => ({
        policy: id,
        roles: (p.Properties.Roles as { Ref: string }[]).map((r) => r.Ref),
        s,
      })),
    );
  const list = <T>(v: T | T[]): T[] => (Array.isArray(v) ? v : [v]);

  it('has no wildcard action or resource, and no managed policies', () => {
    const all = statements();
    expect(all.length).toBeGreaterThan(0);
    for (const { policy, s } of all) {
      for (const a of list(s.Action)) expect(a, policy).not.toMatch(/\*/);
      for (const r of list(s.Resource)) expect(resolve(r), policy).not.toMatch(/^\*$|:\*$|\/\*$/);
    }
    for (const [, role] of ofType('AWS::IAM::Role'))
      expect(role.Properties.ManagedPolicyArns).toBeUndefined();
  });

  it('lets the state machine invoke the three functions and nothing else', () => {
    const smRole = (
      resources[stack.getLogicalId(stack.stateMachine.node.defaultChild as never)]!.Properties.RoleArn as {
        'Fn::GetAtt': [string, string];
      }
    )['Fn::GetAtt'][0];
    const mine = statements().filter((x) => x.roles.includes(smRole));
    expect(mine).toHaveLength(1);
    expect(mine[0]!.s.Action).toBe('lambda:InvokeFunction');
    const fnIds = Object.values(stack.functions).map((f) => `<<Ref:${logicalId(f)}>>`);
    expect(list(mine[0]!.s.Resource).map(resolve).sort()).toEqual(fnIds.sort());
  });

  it('gives each function only its table actions on the table and task callbacks on this state machine', () => {
    const tableId = stack.getLogicalId(stack.table.node.defaultChild as never);
    const smArn =
      'arn:<<Ref:AWS::Partition>>:states:<<Ref:AWS::Region>>:<<Ref:AWS::AccountId>>:stateMachine:Test-transfer';
    for (const [name, access] of Object.entries(workflowFunctions)) {
      const fn = resources[logicalId(stack.functions[name as keyof typeof workflowFunctions])]!;
      const roleId = (fn.Properties.Role as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
      const mine = statements()
        .filter((x) => x.roles.includes(roleId))
        .map((x) => x.s);
      const byService = (prefix: string) =>
        mine.filter((s) => list(s.Action).some((a) => a.startsWith(prefix)));
      const dynamo = byService('dynamodb:');
      expect(dynamo.flatMap((s) => list(s.Action)).sort(), name).toEqual([...access.table].sort());
      for (const s of dynamo) expect(list(s.Resource).map(resolve), name).toEqual([`<<Ref:${tableId}>>`]);
      const states = byService('states:');
      expect(states.flatMap((s) => list(s.Action)).sort(), name).toEqual([...access.states].sort());
      for (const s of states) expect(list(s.Resource).map(resolve), name).toEqual([smArn]);
      const logsStatements = byService('logs:');
      expect(logsStatements).toHaveLength(1);
      expect(list(logsStatements[0]!.Action).sort()).toEqual(['logs:CreateLogStream', 'logs:PutLogEvents']);
      const logGroupId = (fn.Properties.LoggingConfig as { LogGroup: { Ref: string } }).LogGroup.Ref;
      expect(list(logsStatements[0]!.Resource).map(resolve)).toEqual([`<<Ref:${logGroupId}>>`]);
      expect(mine.length, name).toBe(1 + (dynamo.length > 0 ? 1 : 0) + (states.length > 0 ? 1 : 0));
    }
  });
});

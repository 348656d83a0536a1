import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  ArnFormat,
  aws_apigatewayv2 as apigwv2,
  CfnOutput,
  aws_cloudwatch as cloudwatch,
  Duration,
  aws_dynamodb as dynamodb,
  aws_events as events,
  aws_events_targets as eventsTargets,
  aws_iam as iam,
  aws_lambda as lambda,
  aws_logs as logs,
  aws_lambda_nodejs as nodejs,
  RemovalPolicy,
  Stack,
  type StackProps,
  aws_secretsmanager as secretsmanager,
  aws_stepfunctions as sfn,
} from 'aws-cdk-lib';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import type { Construct } from 'constructs';
import { metricsNamespace, serviceDimension } from '../functions/agent-api.ts';
import { ttlAttribute } from '../functions/store/dynamodb-agent-registry.ts';
import { tableDefinition } from '../functions/store/dynamodb-store.ts';
import { definitionPath, definitionPlaceholders, type Placeholder } from '../shared/workflow-definition.ts';
import {
  agentApiAccess,
  type FunctionAccess,
  slackAccess,
  slackChatTableAccess,
  type WorkflowFunctionName,
  workflowFunctions,
} from './function-access.ts';

const root = join(import.meta.dirname, '..');

/** ESM bundles of CommonJS dependencies need a `require` (see docs: orchestration notes). */
export const esmBanner =
  "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);";

export interface SneakernetStackProps extends StackProps {
  /** Who may approve (comma list for the functions' APPROVERS); context `approvers` in app.ts. */
  readonly approvers?: readonly string[];
  /** How long the functions' logs are kept (default one month). */
  readonly logRetention?: logs.RetentionDays;
  /**
   * The Slack app: the approvers' channel id (context `approversChannel`). With it the stack adds
   * the Slack function on `POST /slack/events` and a secret for the app's bot token and signing
   * secret, and every function posts progress and reports to Slack. Without it, no Slack.
   */
  readonly slack?: { readonly approversChannel: string };
}

/** HeartbeatSeconds of the definition's agent tasks: the functions tell agents the same value. */
export function agentHeartbeatSeconds(definition: string): number {
  const states = (JSON.parse(definition) as { States: Record<string, { HeartbeatSeconds?: number }> }).States;
  const beats = new Set(
    Object.values(states)
      .map((s) => s.HeartbeatSeconds)
      .filter((h): h is number => h !== undefined),
  );
  if (beats.size !== 1) {
    throw new Error(`The workflow's agent tasks must share one HeartbeatSeconds; found ${[...beats]}.`);
  }
  return [...beats][0]!;
}

/**
 * The AWS side of the workflow: the table, the three functions the state machine calls, and the
 * state machine itself, built from infra/workflow/transfer.asl.json — the file `odt serve` runs —
 * with Step Functions' DefinitionSubstitutions filling in the function ARNs. No copy of the
 * workflow is written here.
 */
export class SneakernetStack extends Stack {
  readonly table: dynamodb.Table;
  readonly functions: Readonly<Record<WorkflowFunctionName, nodejs.NodejsFunction>>;
  readonly stateMachine: sfn.StateMachine;
  readonly failedAlarm: cloudwatch.Alarm;
  /** The agent API's function, HTTP API, admin token secret and alarms. */
  readonly agentApi: nodejs.NodejsFunction;
  readonly httpApi: apigwv2.HttpApi;
  readonly adminToken: secretsmanager.Secret;
  readonly staleHeartbeatsAlarm: cloudwatch.Alarm;
  readonly agentApiErrorsAlarm: cloudwatch.Alarm;
  /** With `props.slack`: the Slack app's secret and its function on `POST /slack/events`. */
  readonly slackSecret: secretsmanager.Secret | undefined;
  readonly slackFunction: nodejs.NodejsFunction | undefined;

  constructor(scope: Construct, id: string, props: SneakernetStackProps = {}) {
    super(scope, id, props);
    const definition = readFileSync(definitionPath, 'utf8');

    // ---- the store ----------------------------------------------------------------------------
    const def = tableDefinition('unused');
    const attr = (name: string): dynamodb.Attribute => {
      const a = def.AttributeDefinitions?.find((d) => d.AttributeName === name);
      if (!a) throw new Error(`tableDefinition has no attribute ${name}`);
      const type = { S: dynamodb.AttributeType.STRING, N: dynamodb.AttributeType.NUMBER }[
        a.AttributeType as 'S' | 'N'
      ];
      if (!type) throw new Error(`Unsupported key type ${a.AttributeType} of ${name}`);
      return { name, type };
    };
    const keyOf = (schema: { AttributeName?: string; KeyType?: string }[] | undefined, kind: string) => {
      const k = schema?.find((s) => s.KeyType === kind)?.AttributeName;
      return k === undefined ? undefined : attr(k);
    };
    const partitionKey = keyOf(def.KeySchema, 'HASH');
    if (!partitionKey) throw new Error('tableDefinition has no partition key');
    const sortKey = keyOf(def.KeySchema, 'RANGE');
    this.table = new dynamodb.Table(this, 'Table', {
      partitionKey,
      ...(sortKey ? { sortKey } : {}),
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      removalPolicy: RemovalPolicy.RETAIN,
      // Enrollment codes and used nonces expire (functions/store/dynamodb-agent-registry.ts).
      timeToLiveAttribute: ttlAttribute,
    });
    const indexNames: string[] = [];
    for (const gsi of def.GlobalSecondaryIndexes ?? []) {
      const pk = keyOf(gsi.KeySchema, 'HASH');
      const sk = keyOf(gsi.KeySchema, 'RANGE');
      if (!gsi.IndexName || !pk) throw new Error('tableDefinition has an index without name or key');
      if (gsi.Projection?.ProjectionType !== 'ALL') throw new Error('only ALL projections are mapped');
      this.table.addGlobalSecondaryIndex({
        indexName: gsi.IndexName,
        partitionKey: pk,
        ...(sk ? { sortKey: sk } : {}),
        projectionType: dynamodb.ProjectionType.ALL,
      });
      indexNames.push(gsi.IndexName);
    }

    // ---- the state machine's ARN, known before the state machine exists ---------------------------
    // The functions need it (environment, IAM) and the state machine needs theirs (substitutions,
    // invoke permission): a fixed name breaks the cycle.
    const stateMachineName = `${this.stackName}-transfer`;
    const stateMachineArn = this.formatArn({
      service: 'states',
      resource: 'stateMachine',
      resourceName: stateMachineName,
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });

    // ---- the Slack app's secret (filled in after deploy: docs/slack-app-manifest.yaml) -----------
    if (props.slack && !/^[CG][A-Z0-9]+$/.test(props.slack.approversChannel)) {
      throw new Error(
        `slack.approversChannel must be a Slack channel id such as C0123ABCD (got "${props.slack.approversChannel}")`,
      );
    }
    this.slackSecret = props.slack
      ? new secretsmanager.Secret(this, 'SlackSecret', {
          description:
            'Sneakernet Slack app: JSON {"botToken": "xoxb-…", "signingSecret": "…"}; put the real values after deploy',
          generateSecretString: {
            // A placeholder the functions refuse with a message saying how to set the real values.
            secretStringTemplate: JSON.stringify({ botToken: 'set-me' }),
            generateStringKey: 'signingSecret',
            excludePunctuation: true,
          },
        })
      : undefined;
    const slackSecret = this.slackSecret;

    // ---- the functions --------------------------------------------------------------------------
    const retention = props.logRetention ?? logs.RetentionDays.ONE_MONTH;
    const environment = {
      TABLE_NAME: this.table.tableName,
      STATE_MACHINE_ARN: stateMachineArn,
      APPROVERS: (props.approvers ?? []).join(','),
      HEARTBEAT_SECONDS: String(agentHeartbeatSeconds(definition)),
      NODE_OPTIONS: '--enable-source-maps',
      ...(props.slack && slackSecret
        ? { SLACK_SECRET_ARN: slackSecret.secretArn, APPROVERS_CHANNEL: props.slack.approversChannel }
        : {}),
    };
    const makeFunction = (
      name: string,
      access: Omit<FunctionAccess, 'placeholder'>,
      description: string,
      extra: { environment?: Record<string, string>; statements?: iam.PolicyStatement[] } = {},
    ): nodejs.NodejsFunction => {
      const logGroup = new logs.LogGroup(this, `${name}Logs`, {
        retention,
        removalPolicy: RemovalPolicy.DESTROY,
      });
      // An own role instead of AWSLambdaBasicExecutionRole (logs:* on every log group).
      const role = new iam.Role(this, `${name}Role`, {
        assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
        description: `Sneakernet function ${name}`,
      });
      role.addToPolicy(
        new iam.PolicyStatement({
          actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
          resources: [logGroup.logGroupArn],
        }),
      );
      // With Slack, every function's chat notifier reads and updates message refs, and reads the secret.
      const tableActions = [...new Set([...access.table, ...(slackSecret ? slackChatTableAccess : [])])];
      if (tableActions.length > 0)
        role.addToPolicy(
          new iam.PolicyStatement({ actions: tableActions, resources: [this.table.tableArn] }),
        );
      if (slackSecret)
        role.addToPolicy(
          new iam.PolicyStatement({
            actions: ['secretsmanager:GetSecretValue'],
            resources: [slackSecret.secretArn],
          }),
        );
      if (access.index.length > 0)
        role.addToPolicy(
          new iam.PolicyStatement({
            actions: [...access.index],
            resources: indexNames.map((n) => `${this.table.tableArn}/index/${n}`),
          }),
        );
      if (access.states.length > 0)
        role.addToPolicy(
          new iam.PolicyStatement({ actions: [...access.states], resources: [stateMachineArn] }),
        );
      for (const statement of extra.statements ?? []) role.addToPolicy(statement);
      return new nodejs.NodejsFunction(this, name, {
        entry: join(root, access.entry),
        handler: 'handler',
        projectRoot: root,
        depsLockFilePath: join(root, 'package-lock.json'),
        runtime: lambda.Runtime.NODEJS_24_X,
        architecture: lambda.Architecture.ARM_64,
        memorySize: 512,
        timeout: Duration.seconds(30),
        role,
        logGroup,
        loggingFormat: lambda.LoggingFormat.JSON,
        environment: { ...environment, ...extra.environment },
        description,
        bundling: {
          format: nodejs.OutputFormat.ESM,
          target: 'node24',
          mainFields: ['module', 'main'],
          banner: esmBanner,
          minify: true,
          keepNames: true,
          sourceMap: true,
          // Ship the SDK version the tests ran against, not the runtime's.
          bundleAwsSDK: true,
        },
      });
    };
    const functions = {} as Record<WorkflowFunctionName, nodejs.NodejsFunction>;
    for (const [name, access] of Object.entries(workflowFunctions) as [
      WorkflowFunctionName,
      (typeof workflowFunctions)[WorkflowFunctionName],
    ][]) {
      functions[name] = makeFunction(name, access, `Sneakernet workflow: ${access.entry}`);
    }
    this.functions = functions;

    // ---- the state machine, from the one definition file ---------------------------------------------
    const arnOf: Record<Placeholder, string> = Object.fromEntries(
      Object.values(workflowFunctions).map((f) => [
        f.placeholder,
        functions[nameOf(f.placeholder)].functionArn,
      ]),
    ) as Record<Placeholder, string>;
    for (const p of definitionPlaceholders) {
      if (!arnOf[p]) throw new Error(`No function for the definition placeholder \${${p}}`);
    }
    const role = new iam.Role(this, 'StateMachineRole', {
      assumedBy: new iam.ServicePrincipal('states.amazonaws.com'),
      description: 'Sneakernet transfer workflow: invokes its three functions, nothing else',
    });
    role.addToPolicy(
      new iam.PolicyStatement({
        actions: ['lambda:InvokeFunction'],
        resources: Object.values(functions).map((f) => f.functionArn),
      }),
    );
    this.stateMachine = new sfn.StateMachine(this, 'Transfer', {
      stateMachineName,
      stateMachineType: sfn.StateMachineType.STANDARD,
      definitionBody: sfn.DefinitionBody.fromString(definition),
      definitionSubstitutions: arnOf,
      role,
    });
    // The role's policy must exist before the state machine is created (CloudFormation checks it).
    this.stateMachine.node.addDependency(role);

    this.failedAlarm = new cloudwatch.Alarm(this, 'TransfersFailed', {
      alarmDescription: 'A Sneakernet transfer workflow execution failed (see its history).',
      metric: this.stateMachine.metricFailed({ period: Duration.minutes(5), statistic: 'Sum' }),
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });

    // ---- the agent API: HTTP API → one function that authenticates every caller itself ----------
    // The admin token: generated, never in the template; the function reads it once per container.
    this.adminToken = new secretsmanager.Secret(this, 'AdminToken', {
      description: 'Sneakernet agent API admin bearer token (Authorization: Bearer <token>)',
      generateSecretString: { passwordLength: 48, excludePunctuation: true, includeSpace: false },
    });
    this.agentApi = makeFunction(
      'AgentApi',
      agentApiAccess,
      `Sneakernet agent API: ${agentApiAccess.entry}`,
      {
        environment: { ADMIN_TOKEN_SECRET_ARN: this.adminToken.secretArn },
        statements: [
          new iam.PolicyStatement({
            actions: ['secretsmanager:GetSecretValue'],
            resources: [this.adminToken.secretArn],
          }),
        ],
      },
    );
    // No authorizer on any route, on purpose: agents sign every request with their enrolled key and
    // admins present the secret token; the function checks both (functions/agent-api.ts), since an
    // IAM or JWT authorizer cannot verify an agent's own key. There is no $default route: only
    // these three paths reach the function.
    this.httpApi = new apigwv2.HttpApi(this, 'AgentHttpApi', {
      apiName: `${this.stackName}-agents`,
      description: 'Sneakernet agent API: enrollment, signed agent calls, admin (bearer token)',
    });
    const integration = new HttpLambdaIntegration('AgentApiIntegration', this.agentApi, {
      payloadFormatVersion: apigwv2.PayloadFormatVersion.VERSION_2_0,
    });
    this.httpApi.addRoutes({ path: '/agents/enroll', methods: [apigwv2.HttpMethod.POST], integration });
    this.httpApi.addRoutes({
      path: '/agent/{proxy+}',
      methods: [apigwv2.HttpMethod.GET, apigwv2.HttpMethod.POST],
      integration,
    });
    this.httpApi.addRoutes({
      path: '/admin/{proxy+}',
      methods: [apigwv2.HttpMethod.GET, apigwv2.HttpMethod.POST],
      integration,
    });

    // ---- the Slack app: Slack signs every request; the function checks it (functions/slack.ts) ----
    this.slackFunction = slackSecret
      ? makeFunction('Slack', slackAccess, `Sneakernet Slack app: ${slackAccess.entry}`, {
          environment: { AGENT_API_URL: this.httpApi.apiEndpoint },
        })
      : undefined;
    if (this.slackFunction && slackSecret) {
      this.httpApi.addRoutes({
        path: '/slack/events',
        methods: [apigwv2.HttpMethod.POST],
        integration: new HttpLambdaIntegration('SlackIntegration', this.slackFunction, {
          payloadFormatVersion: apigwv2.PayloadFormatVersion.VERSION_2_0,
        }),
      });
      new CfnOutput(this, 'SlackRequestUrl', {
        value: `${this.httpApi.apiEndpoint}/slack/events`,
        description: 'The Slack app manifest: request_url, options load URL',
      });
      new CfnOutput(this, 'SlackSecretArn', {
        value: slackSecret.secretArn,
        description:
          'aws secretsmanager put-secret-value --secret-id <this> --secret-string \'{"botToken":"xoxb-…","signingSecret":"…"}\'',
      });
    }

    new CfnOutput(this, 'AgentApiUrl', {
      value: this.httpApi.apiEndpoint,
      description: 'odt agent run --server <this>',
    });
    new CfnOutput(this, 'AdminTokenSecretArn', {
      value: this.adminToken.secretArn,
      description: 'aws secretsmanager get-secret-value --secret-id <this>',
    });

    // Stale heartbeats: the function, every 5 minutes, counts claimed tasks whose holder has not
    // heartbeated for half the HeartbeatSeconds (EMF metric StaleTaskHolds, per site and in all).
    // Alarm on any, and on a missing metric (the sweep itself stopped).
    new events.Rule(this, 'HeartbeatSweep', {
      description: 'Sneakernet: count agent tasks with stale heartbeats (metric StaleTaskHolds)',
      schedule: events.Schedule.rate(Duration.minutes(5)),
      targets: [
        new eventsTargets.LambdaFunction(this.agentApi, {
          event: events.RuleTargetInput.fromObject({ action: 'heartbeat-sweep' }),
          retryAttempts: 0,
        }),
      ],
    });
    this.staleHeartbeatsAlarm = new cloudwatch.Alarm(this, 'AgentHeartbeatsStale', {
      alarmDescription:
        'An agent holds a task but has not heartbeated for half its HeartbeatSeconds (or the sweep that checks stopped). Check the site in metric StaleTaskHolds by Site.',
      metric: new cloudwatch.Metric({
        namespace: metricsNamespace,
        metricName: 'StaleTaskHolds',
        dimensionsMap: { Service: serviceDimension },
        statistic: 'Maximum',
        period: Duration.minutes(15),
      }),
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.BREACHING,
    });
    this.agentApiErrorsAlarm = new cloudwatch.Alarm(this, 'AgentApi5xx', {
      alarmDescription: 'The agent API answered 5xx (see the AgentApi function logs).',
      metric: this.httpApi.metricServerError({ period: Duration.minutes(5), statistic: 'Sum' }),
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
  }
}

function nameOf(placeholder: Placeholder): WorkflowFunctionName {
  const found = (Object.keys(workflowFunctions) as WorkflowFunctionName[]).find(
    (n) => workflowFunctions[n].placeholder === placeholder,
  );
  if (!found) throw new Error(`No function for the definition placeholder \${${placeholder}}`);
  return found;
}

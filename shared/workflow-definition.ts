import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { StateMachineDefinition } from 'aws-local-stepfunctions';

/** The one workflow definition: infra/workflow/transfer.asl.json (CDK deploys the same file). */
export const definitionPath = join(import.meta.dirname, '..', 'infra', 'workflow', 'transfer.asl.json');

/** The placeholders of the definition, each a Lambda function of functions/. */
export const definitionPlaceholders = [
  'StepFunctionArn',
  'AwaitFunctionArn',
  'AgentTaskFunctionArn',
] as const;
export type Placeholder = (typeof definitionPlaceholders)[number];

/** The local stand-ins for the Lambda ARNs: the runner calls the same handlers in process. */
export const localArns: Readonly<Record<Placeholder, string>> = {
  StepFunctionArn: 'arn:aws:lambda:local:000000000000:function:odt-step',
  AwaitFunctionArn: 'arn:aws:lambda:local:000000000000:function:odt-await',
  AgentTaskFunctionArn: 'arn:aws:lambda:local:000000000000:function:odt-agent-task',
};

/** The definition text with `${Name}` placeholders replaced, as Step Functions' substitutions do. */
export function substitute(text: string, values: Readonly<Record<string, string>>): string {
  return text.replace(/\$\{(\w+)\}/g, (_whole, name: string) => {
    const v = values[name];
    if (v === undefined) throw new Error(`The workflow definition uses \${${name}}, which has no value.`);
    return v;
  });
}

export const rawDefinition = (): string => readFileSync(definitionPath, 'utf8');

export const localDefinition = (): StateMachineDefinition =>
  JSON.parse(substitute(rawDefinition(), localArns)) as StateMachineDefinition;

/** Work for the on-prem agents, routed per site (an activity ARN cannot be; DESIGN.md). */
export const taskKinds = ['export', 'import'] as const;
export type TaskKind = (typeof taskKinds)[number];

export interface AgentTask {
  readonly id: string;
  readonly kind: TaskKind;
  readonly site: string;
  readonly transferId: string;
  /** Item ids this task covers (all items, or the failed ones on a retry). */
  readonly itemIds: readonly string[];
  readonly heartbeatSeconds: number;
}

export interface TaskProgress {
  readonly itemId: string;
  readonly bytesDone: number;
  readonly bytesTotal?: number;
  readonly bytesPerSecond?: number;
}

export interface ItemOutcome {
  readonly itemId: string;
  readonly ok: boolean;
  readonly reason?: string;
  readonly code?: string;
  readonly bytes?: number;
}

export interface TaskQueue {
  enqueue(task: AgentTask): Promise<void>;
  /** Tasks of `site` that nobody holds, or whose holder missed its heartbeat. */
  listOpen(site: string): Promise<readonly AgentTask[]>;
  /** Claims a task for an agent of its own site; exactly one concurrent claim wins. */
  claim(taskId: string, site: string, agentId: string): Promise<AgentTask>;
  heartbeat(taskId: string, agentId: string, progress: readonly TaskProgress[]): Promise<void>;
  complete(taskId: string, agentId: string, outcomes: readonly ItemOutcome[]): Promise<void>;
  fail(taskId: string, agentId: string, code: string, reason: string): Promise<void>;
}

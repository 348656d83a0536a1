/** What the durable runner keeps so that a restart resumes every open execution. */
export interface ExecutionRecord {
  readonly id: string;
  /** The state last entered, and that state's input: the execution re-enters it after a restart. */
  readonly state: string;
  readonly input: unknown;
  readonly status: 'running' | 'succeeded' | 'failed';
  readonly error?: string;
  readonly updatedAt: number;
}

/** A callback task (`.waitForTaskToken`) that is waiting. */
export interface PendingTask {
  readonly token: string;
  readonly executionId: string;
  readonly state: string;
  /** Epoch ms when TimeoutSeconds runs out (kept across restarts). */
  readonly deadline: number;
  /** Epoch ms of the last heartbeat (or of entry). */
  readonly lastBeat: number;
  /** Set when a SendTask* came while no execution was listening (e.g. during a restart). */
  readonly result?:
    | { readonly ok: true; readonly output: unknown }
    | { readonly ok: false; readonly error: string; readonly cause: string };
}

export interface RunnerStore {
  putExecution(r: ExecutionRecord): void;
  getExecution(id: string): ExecutionRecord | undefined;
  listRunning(): ExecutionRecord[];
  putTask(t: PendingTask): void;
  getTask(token: string): PendingTask | undefined;
  findTask(executionId: string, state: string): PendingTask | undefined;
  deleteTask(token: string): void;
}

/** In-memory RunnerStore, for tests of the runner's logic (the SQLite one is what `odt serve` uses). */
export class MemoryRunnerStore implements RunnerStore {
  readonly executions = new Map<string, ExecutionRecord>();
  readonly tasks = new Map<string, PendingTask>();

  putExecution(r: ExecutionRecord): void {
    this.executions.set(r.id, r);
  }
  getExecution(id: string): ExecutionRecord | undefined {
    return this.executions.get(id);
  }
  listRunning(): ExecutionRecord[] {
    return [...this.executions.values()].filter((e) => e.status === 'running');
  }
  putTask(t: PendingTask): void {
    this.tasks.set(t.token, t);
  }
  getTask(token: string): PendingTask | undefined {
    return this.tasks.get(token);
  }
  findTask(executionId: string, state: string): PendingTask | undefined {
    return [...this.tasks.values()].find((t) => t.executionId === executionId && t.state === state);
  }
  deleteTask(token: string): void {
    this.tasks.delete(token);
  }
}

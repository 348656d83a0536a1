import { randomBytes } from 'node:crypto';
import type { SignedStatement } from '../../core/model/transfer-key.ts';
import { type AgentTransferView, agentHeaders, canonicalRequest } from '../../core/ports/agents.ts';
import type { ItemOutcome, TaskProgress, TaskRecord } from '../../core/ports/task-queue.ts';
import { AgentError } from '../errors.ts';
import { signDetached } from '../identity/agent-identity.ts';

/** An answer of the agent API that is not 2xx: `status` and the server's stable `code`. */
export class AgentApiError extends AgentError<string> {
  constructor(
    readonly status: number,
    code: string,
    message: string,
  ) {
    super(code, message);
    this.name = 'AgentApiError';
  }
}

/** The network failed (no answer): worth retrying with backoff. */
export class AgentApiUnreachableError extends AgentError<'AGENT_API_UNREACHABLE'> {
  constructor(url: string, cause: unknown) {
    super(
      'AGENT_API_UNREACHABLE',
      `the agent API at ${url} does not answer (${(cause as Error)?.message ?? String(cause)})`,
      {
        cause,
      },
    );
    this.name = 'AgentApiUnreachableError';
  }
}

export interface AgentApiClientOptions {
  /** Base URL of the agent API, e.g. http://127.0.0.1:8788. */
  readonly server: string;
  readonly keyPem: string;
  /** Unset before enrollment. */
  readonly agentId?: string;
  readonly timeoutMs?: number;
  readonly now?: () => number;
}

/** Every call signed with the agent's key (core/ports/agents.ts describes the signature). */
export class AgentApiClient {
  private agentId: string | undefined;

  constructor(private readonly options: AgentApiClientOptions) {
    this.agentId = options.agentId;
  }

  get id(): string | undefined {
    return this.agentId;
  }

  /** `site`: the site the agent is started for; the server refuses a code of another site unspent. */
  async enroll(
    code: string,
    certPem: string,
    name: string,
    site?: string,
  ): Promise<{ agentId: string; site: string }> {
    const body = { code, certificate: certPem, name, ...(site ? { site } : {}) };
    const r = (await this.call('POST', '/agents/enroll', body, false)) as {
      agentId: string;
      site: string;
    };
    this.agentId = r.agentId;
    return r;
  }

  me(): Promise<{ id: string; site: string; name: string; certSha256: string }> {
    return this.call('GET', '/agent/me') as never;
  }
  listTasks(): Promise<TaskRecord[]> {
    return this.call('GET', '/agent/tasks') as never;
  }
  claim(taskId: string): Promise<TaskRecord> {
    return this.call('POST', `/agent/tasks/${encodeURIComponent(taskId)}/claim`, {}) as never;
  }
  async heartbeat(taskId: string, progress: readonly TaskProgress[], signal?: AbortSignal): Promise<void> {
    await this.call(
      'POST',
      `/agent/tasks/${encodeURIComponent(taskId)}/heartbeat`,
      { progress },
      true,
      signal,
    );
  }
  /** `statement`: the ODT node's signed statement that ends a key task. */
  async complete(
    taskId: string,
    outcomes: readonly ItemOutcome[],
    statement?: SignedStatement,
  ): Promise<void> {
    await this.call('POST', `/agent/tasks/${encodeURIComponent(taskId)}/complete`, {
      outcomes,
      ...(statement ? { statement } : {}),
    });
  }
  async fail(taskId: string, code: string, reason: string): Promise<void> {
    await this.call('POST', `/agent/tasks/${encodeURIComponent(taskId)}/fail`, { code, reason });
  }
  async release(taskId: string): Promise<void> {
    await this.call('POST', `/agent/tasks/${encodeURIComponent(taskId)}/release`, {});
  }
  transfer(transferId: string): Promise<AgentTransferView> {
    return this.call('GET', `/agent/transfers/${encodeURIComponent(transferId)}`) as never;
  }
  async reportInventory(items: readonly unknown[]): Promise<void> {
    await this.call('POST', '/agent/inventory', { items });
  }

  /** Headers that sign one request (exposed for tests that forge or replay requests). */
  signHeaders(
    method: string,
    path: string,
    body: string,
    nonce?: string,
    timestamp?: number,
  ): Record<string, string> {
    const ts = String(timestamp ?? this.options.now?.() ?? Date.now());
    const n = nonce ?? randomBytes(18).toString('base64url');
    const sig = signDetached(this.options.keyPem, canonicalRequest(method, path, ts, n, body));
    return {
      ...(this.agentId ? { [agentHeaders.agent]: this.agentId } : {}),
      [agentHeaders.timestamp]: ts,
      [agentHeaders.nonce]: n,
      [agentHeaders.signature]: sig.toString('base64'),
    };
  }

  private async call(
    method: string,
    path: string,
    body?: unknown,
    authenticated = true,
    signal?: AbortSignal,
  ): Promise<unknown> {
    if (authenticated && !this.agentId) throw new Error('the agent is not enrolled yet');
    const text = body === undefined ? '' : JSON.stringify(body);
    const url = `${this.options.server.replace(/\/+$/, '')}${path}`;
    const timeout = AbortSignal.timeout(this.options.timeoutMs ?? 30_000);
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers: { 'content-type': 'application/json', ...this.signHeaders(method, path, text) },
        ...(body === undefined ? {} : { body: text }),
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      });
    } catch (error) {
      throw new AgentApiUnreachableError(url, error);
    }
    const answer = (await res.json().catch(() => ({}))) as { error?: string; code?: string };
    if (!res.ok) {
      throw new AgentApiError(
        res.status,
        answer.code ?? `HTTP_${res.status}`,
        answer.error ?? `HTTP ${res.status}`,
      );
    }
    return answer;
  }
}

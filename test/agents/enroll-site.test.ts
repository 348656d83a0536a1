import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentError } from '../../agent/errors.ts';
import { type AgentRole, enrolledClient, runAgent } from '../../agent/runtime/run-agent.ts';
import { exitCodeOf, exitCodes } from '../../cli/exit-codes.ts';
import { type ControlPlane, startControlPlane } from '../../local/control-plane.ts';
import { odt } from '../support/cli.ts';

// Issue 22: `odt agent run --site other --code <code for acme>` spent the code, enrolled the agent
// as active, and only then refused with WRONG_SITE. The site is now checked before the code is spent.

describe('odt agent run with a code of another site', () => {
  let work: string;
  let plane: ControlPlane;
  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'odt-enroll-site-'));
    plane = await startControlPlane({ stateDir: join(work, 'serve'), approvers: ['bob'] });
  });
  afterAll(async () => {
    await plane?.close();
    await rm(work, { recursive: true, force: true });
  });

  it('is refused before the code is spent: no agent enrolled, and the code still enrolls an agent of its site', async () => {
    const state = join(work, 'serve');
    const code = (await odt(['agent', 'enroll', '--site', 'acme', '--state-dir', state])).out.trim();
    const run = await odt(
      [
        'agent',
        'run',
        '--server',
        plane.agentApi.url,
        '--role',
        'import',
        '--dir',
        join(work, 'agent-other'),
        '--code',
        code,
        '--site',
        'other',
        '--vcenter',
        'https://127.0.0.1:9',
        '--username',
        'u',
        '--nas',
        join(work, 'nas'),
        '--identity',
        join(work, 'identity.txt'),
      ],
      { ODT_VCENTER_PASSWORD: 'p', ODT_LOG_LEVEL: 'silent' },
    );
    expect(run.code).toBe(2);
    expect(run.err).toContain("this enrollment code is for site 'acme', not 'other'; it was not used");
    expect(run.err).toContain('[ENROLLMENT_WRONG_SITE]');
    expect((await odt(['agent', 'list', '--json', '--state-dir', state])).out.trim()).toBe('[]');

    const { state: enrolled } = await enrolledClient({
      server: plane.agentApi.url,
      dir: join(work, 'agent-acme'),
      code,
      site: 'acme',
    });
    expect(enrolled.site).toBe('acme');
  });

  it('an enrolled agent started for another site, or one never enrolled, is a coded usage error (exit 2)', async () => {
    const wrong = enrolledClient({
      server: plane.agentApi.url,
      dir: join(work, 'agent-acme'),
      site: 'other',
    });
    await expect(wrong).rejects.toMatchObject({ code: 'AGENT_WRONG_SITE' });
    expect(exitCodeOf(await wrong.catch((e: unknown) => e))).toBe(exitCodes.usage);
    const none = enrolledClient({ server: plane.agentApi.url, dir: join(work, 'agent-none') });
    await expect(none).rejects.toBeInstanceOf(AgentError);
    await expect(none).rejects.toMatchObject({ code: 'AGENT_NOT_ENROLLED' });
  });

  it('an agent whose API does not answer waits for it, and a stop while it waits ends it cleanly (issue 22)', async () => {
    const stop = new AbortController();
    const role: AgentRole = { name: 'export', run: async () => [] };
    const started = Date.now();
    setTimeout(() => stop.abort(), 1_500);
    // Enrolled above; its server is gone (nothing listens on port 9).
    const r = await runAgent({
      server: 'http://127.0.0.1:9',
      dir: join(work, 'agent-acme'),
      role,
      signal: stop.signal,
    });
    expect(r).toEqual({ tasks: 0 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_400);
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});

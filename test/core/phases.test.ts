import { describe, expect, it } from 'vitest';
import {
  canItemTransition,
  canTransition,
  IllegalTransitionError,
  isCancellable,
  itemStates,
  type TransferPhase,
  transferPhases,
  transferTransitions,
} from '../../core/index.ts';
import { happyPath } from '../support/happy-path.ts';

describe('transfer lifecycle', () => {
  it('follows the happy path of DESIGN.md from request to wipe', () => {
    const path: TransferPhase[] = [...happyPath, 'wiped'];
    for (let i = 1; i < path.length; i++) {
      expect(canTransition(path[i - 1]!, path[i]!), `${path[i - 1]} → ${path[i]}`).toBe(true);
    }
  });

  it.each([
    ['requested', 'exporting'],
    ['requested', 'completed'],
    ['approved', 'shipped'],
    ['exporting', 'importing'],
    ['shipped', 'importing'],
    ['rejected', 'approved'],
    ['expired', 'approved'],
    ['wiped', 'requested'],
    ['importing', 'cancelled'],
    ['onboarding', 'cancelled'],
    ['completed', 'importing'],
  ] as const)('refuses %s → %s', (from, to) => {
    expect(canTransition(from, to)).toBe(false);
  });

  it('lets every wait before import be cancelled, and nothing once data is being imported', () => {
    for (const phase of transferPhases) {
      expect(canTransition(phase, 'cancelled'), phase).toBe(isCancellable(phase));
    }
    expect(isCancellable('shipped')).toBe(true);
    expect(isCancellable('importing')).toBe(false);
  });

  it('allows a retry of failed items: export again before shipping, import again after', () => {
    expect(canTransition('failed', 'exporting')).toBe(true);
    expect(canTransition('exported', 'exporting')).toBe(true);
    expect(canTransition('completed-with-errors', 'importing')).toBe(true);
  });

  it('names only known phases as targets, and ends every path in wiped or a decision', () => {
    for (const [from, targets] of Object.entries(transferTransitions)) {
      for (const to of targets) expect(transferPhases, `${from} → ${to}`).toContain(to);
    }
    expect(transferTransitions.wiped).toEqual([]);
    expect(transferTransitions.rejected).toEqual([]);
  });

  it('explains an illegal transition with the phases that are allowed', () => {
    const err = new IllegalTransitionError(
      'Transfer t-1',
      'requested',
      'shipped',
      transferTransitions.requested,
    );
    expect(err.name).toBe('IllegalTransitionError');
    expect(err.code).toBe('ILLEGAL_TRANSITION');
    expect(err.message).toContain("from 'requested' it can go to: approved, rejected, expired, cancelled");
  });
});

describe('item lifecycle', () => {
  it('goes from pending to powered-on one step at a time', () => {
    const path = [
      'pending',
      'exporting',
      'exported',
      'verified',
      'importing',
      'imported',
      'onboarded',
      'powered-on',
    ];
    for (let i = 1; i < path.length; i++) {
      expect(canItemTransition(path[i - 1] as never, path[i] as never)).toBe(true);
    }
  });

  it('can fail from every state but powered-on, and is retried from failed', () => {
    for (const s of itemStates) {
      if (s === 'failed' || s === 'powered-on') continue;
      expect(canItemTransition(s, 'failed'), s).toBe(true);
    }
    expect(canItemTransition('powered-on', 'failed')).toBe(false);
    expect(canItemTransition('failed', 'exporting')).toBe(true);
    expect(canItemTransition('failed', 'importing')).toBe(true);
  });

  it('does not skip verification between export and import', () => {
    expect(canItemTransition('exported', 'importing')).toBe(false);
    expect(canItemTransition('pending', 'imported')).toBe(false);
  });
});

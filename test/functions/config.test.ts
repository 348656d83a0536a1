import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../functions/config.ts';

const arn = 'arn:aws:states:eu-west-1:123456789012:stateMachine:Sneakernet-transfer';
const good = {
  TABLE_NAME: 'odt',
  STATE_MACHINE_ARN: arn,
  APPROVERS: ' bob, carol ,,',
  HEARTBEAT_SECONDS: '300',
};

describe('function configuration', () => {
  it('reads and normalizes the environment into a frozen object', () => {
    const c = parseConfig(good);
    expect(c).toEqual({
      tableName: 'odt',
      stateMachineArn: arn,
      approvers: ['bob', 'carol'],
      heartbeatSeconds: 300,
      logLevel: 'info',
    });
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.approvers)).toBe(true);
  });

  it('defaults the approvers to none and the heartbeat to the definition’s 600 s', () => {
    const c = parseConfig({ TABLE_NAME: 'odt', STATE_MACHINE_ARN: arn });
    expect(c.approvers).toEqual([]);
    expect(c.heartbeatSeconds).toBe(600);
  });

  it('fails fast, naming each missing or invalid variable', () => {
    expect(() => parseConfig({})).toThrow(ConfigError);
    expect(() => parseConfig({})).toThrow(/TABLE_NAME is not set.*STATE_MACHINE_ARN is not set/);
    expect(() =>
      parseConfig({ ...good, STATE_MACHINE_ARN: 'arn:aws:lambda:eu-west-1:1:function:x' }),
    ).toThrow(/STATE_MACHINE_ARN is invalid \(must be a Step Functions state machine ARN\)/);
    expect(() => parseConfig({ ...good, HEARTBEAT_SECONDS: 'soon' })).toThrow(/HEARTBEAT_SECONDS is invalid/);
    expect(() => parseConfig({ ...good, TABLE_NAME: ' ' })).toThrow(/TABLE_NAME is invalid/);
  });
});

import { describe, expect, it } from 'vitest';
import { parseLogLevel } from '../../core/ports/logger.ts';
import { SecretMask } from '../../shared/logger.ts';
import { captureLogs } from '../support/logs.ts';

// Issue #23, point 5: what local/logger.ts writes, and what it keeps out of the lines.

describe('createLogger', () => {
  it('writes one JSON object per line: level label, ISO time, bound keys, metadata, msg', () => {
    const logs = captureLogs('info');
    logs.logger.child({ transferId: 'tr-1' }).info({ items: 2 }, 'claimed');
    logs.logger.debug('below the level');
    expect(logs.lines()).toEqual([
      { level: 'info', time: expect.stringMatching(/Z$/), transferId: 'tr-1', items: 2, msg: 'claimed' },
    ]);
  });

  it('logs an error with its type, message and stack under err', () => {
    const logs = captureLogs('info');
    logs.logger.error({ err: new RangeError('out of range') }, 'failed');
    expect(logs.lines()[0]).toMatchObject({
      level: 'error',
      err: {
        type: 'RangeError',
        message: 'out of range',
        stack: expect.stringMatching(/^RangeError: out of range\n\s+at /),
      },
    });
  });

  it('redacts secret keys: passwords, tokens, Authorization, Cookie, the vCloud access token', () => {
    const logs = captureLogs('info');
    logs.logger.info(
      {
        password: 'p1-value',
        adminToken: 'p2-value',
        taskToken: 'p3-value',
        headers: {
          Authorization: 'p4-value',
          cookie: 'p5-value',
          'X-VMWARE-VCLOUD-ACCESS-TOKEN': 'p6-value',
        },
        err: { config: { signingSecret: 'p7-value' } },
        keep: 'visible',
      },
      'request',
    );
    const text = logs.text();
    for (let i = 1; i <= 7; i++) expect(text).not.toContain(`p${i}-value`);
    expect(logs.lines()[0]).toMatchObject({ password: '[redacted]', keep: 'visible' });
  });

  it('masks secret shapes and known secret values anywhere, even inside a message, and stays JSON', () => {
    const key = [
      '-----BEGIN PRIVATE KEY-----',
      'MIIEvQIBADANBgkqhkiG9w0BAQEFAASC',
      '-----END PRIVATE KEY-----',
    ];
    const logs = captureLogs('info', ['pa"ss\\word-42']);
    logs.logger.warn(
      {
        reason: [
          'xoxb-123-456-abcDEF',
          'xapp-1-A01-789-def',
          'Authorization: Bearer abc.def-ghi',
          'Basic dXNlcjpwYXNz',
          'AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQ',
          'ABCDE-FGHJK-LMNPQ-RSTUV',
          'eyJhbGciOi.eyJzdWIi.c2lnbmF0dXJl',
          'vmware_soap_session="52a1b2"',
          key.join('\n'),
          'pa"ss\\word-42',
        ].join(' | '),
      },
      'login failed',
    );
    const text = logs.text();
    for (const secret of [
      'abcDEF',
      '789-def',
      'abc.def',
      'dXNlcjpwYXNz',
      'QQQQ',
      'LMNPQ',
      'c2lnbmF0dXJl',
      '52a1b2',
      'MIIEvQ',
      'word-42',
    ]) {
      expect(text).not.toContain(secret);
    }
    expect(String(logs.lines()[0]!.reason)).toContain('Bearer [redacted]');
  });

  it('masks a secret added after the logger was made (a secret read from a store)', () => {
    const mask = new SecretMask();
    expect(mask.apply('token s3cr3t-from-store')).toBe('token s3cr3t-from-store');
    mask.add('s3cr3t-from-store');
    expect(mask.apply('token s3cr3t-from-store')).toBe('token [redacted]');
  });
});

describe('parseLogLevel', () => {
  it('takes a level in any case, and refuses another naming the source and the levels', () => {
    expect(parseLogLevel('DEBUG', '--log-level')).toBe('debug');
    expect(() => parseLogLevel('loud', '--log-level')).toThrow(
      "The log level is not valid: --log-level: 'loud' is not a log level; use one of fatal, error, warn, info, debug, trace, silent",
    );
  });
});

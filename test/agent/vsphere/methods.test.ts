import { describe, expect, it } from 'vitest';
import type { VimClient } from '../../../agent/vsphere/client.ts';
import type { VimArgs } from '../../../agent/vsphere/wire/methods.ts';
import { type Moref, serializeCall, VimSchemaError } from '../../../agent/vsphere/wire/serialize.ts';

const lease: Moref = { type: 'HttpNfcLease', value: 'lease-1' };

// Issue 23: every vim25 method we call is typed from its schema entry. The @ts-expect-error lines
// are the test: `npm test` type-checks this file, and an error that no longer occurs fails it.
describe('typed vim25 calls', () => {
  it('refuses a misspelt method, an unknown parameter, a wrong value or a missing _this at compile time', () => {
    const calls = (client: VimClient) => [
      // @ts-expect-error: the method is ExportVm
      client.invoke('ExportVM', { _this: lease }),
      // @ts-expect-error: ExportVm takes only _this
      client.invoke('ExportVm', { _this: lease, snapshot: lease }),
      // @ts-expect-error: percent is an int
      client.invoke('HttpNfcLeaseProgress', { _this: lease, percent: '50' }),
      // @ts-expect-error: _this is required
      client.invoke('HttpNfcLeaseComplete', {}),
    ];
    expect(calls).toBeTypeOf('function');
  });

  it('serializes what the types allow, in schema order, and refuses at run time what they would not', () => {
    const args: VimArgs<'HttpNfcLeaseProgress'> = { percent: 50, _this: lease };
    expect(serializeCall('HttpNfcLeaseProgress', args)).toBe(
      '<HttpNfcLeaseProgress xmlns="urn:vim25"><_this type="HttpNfcLease">lease-1</_this><percent>50</percent></HttpNfcLeaseProgress>',
    );
    expect(() => serializeCall('ExportVM', { _this: lease })).toThrow(VimSchemaError);
    expect(() => serializeCall('ExportVm', { _this: lease, snapshot: lease })).toThrow(
      /has no parameter 'snapshot'/,
    );
  });
});

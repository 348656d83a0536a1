import type { TransferRequest } from '../../core/index.ts';

/**
 * A request of both kinds of item (a VM to power on, a template for a catalog), from site `acme`
 * to `cloud` by `alice`: what the workflow tests move, on the embedded engine and on AWS.
 */
export const vmAndTemplateRequest = (): TransferRequest => ({
  site: 'acme',
  providerSite: 'cloud',
  requester: 'alice',
  items: [
    { kind: 'vm', source: 'web-01', target: { vdc: 'acme-vdc', powerOn: true } },
    { kind: 'template', source: 'tpl', target: { vdc: 'acme-vdc', placement: 'catalog', catalog: 'c' } },
  ],
});

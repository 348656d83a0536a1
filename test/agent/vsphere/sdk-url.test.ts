// The vCenter URL as people type it: a bare host, host:port, a full URL; and what is refused
// with a message rather than looked up as a host name ("https:/vc", "htp://vc").
import { describe, expect, it } from 'vitest';
import { sdkUrl } from '../../../agent/vsphere/client.ts';

describe('sdkUrl', () => {
  it.each([
    ['vc.example.com', 'https://vc.example.com/sdk'],
    ['vc.example.com:8443', 'https://vc.example.com:8443/sdk'],
    ['https://vc.example.com', 'https://vc.example.com/sdk'],
    ['http://127.0.0.1:8989/sdk', 'http://127.0.0.1:8989/sdk'],
    ['https://user:pw@vc.example.com/', 'https://vc.example.com/sdk'],
    ['[::1]:443', 'https://[::1]/sdk'],
  ])('takes %s as %s', (input, url) => {
    expect(sdkUrl(input).href).toBe(url);
  });

  it.each([
    ['https:/vc.example.com/sdk', "'https:' is not followed by //"],
    ['htp://vc.example.com', 'the scheme is htp: (only https: or http:)'],
    ['https://', 'it does not parse as a URL'],
  ])('refuses %s: %s', (input, why) => {
    expect(() => sdkUrl(input)).toThrow(
      `'${input}' is not a vCenter URL: ${why}; give https://<host>[:port][/sdk] or just the host.`,
    );
  });
});

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { VimClient } from '../../../agent/vsphere/client.ts';
import { connectTo } from '../../support/vsphere.ts';

/** The globalSetup's shared simulator. */
const sharedVcenter = () => ({
  url: inject('vcsimUrl'),
  username: inject('vcsimUsername'),
  password: inject('vcsimPassword'),
});

describe('vim25 session', () => {
  it('logs in again when the session expired (NotAuthenticated) and repeats the call', async () => {
    const client = await connectTo(sharedVcenter());
    try {
      // End the session behind the client's back, as a vCenter restart or idle timeout would.
      await client.connection.call('Logout', { _this: client.serviceContent.sessionManager });
      const vms = await client.listByType(['VirtualMachine'], ['name']);
      expect(vms.length).toBeGreaterThan(0);
    } finally {
      await client.logout();
    }
  });

  it('sends SOAPAction with the server API version and element order of the schema', async () => {
    const client = await connectTo(sharedVcenter());
    try {
      expect(client.connection.apiVersion).toBe(client.serviceContent.about.apiVersion);
      expect(client.serviceContent.about.apiVersion).toMatch(/^\d+\.\d+/);
    } finally {
      await client.logout();
    }
  });
});

// The simulator never pages; a real vCenter returns a token past maxObjects. This server answers
// like vCenter does (a token, then ContinueRetrievePropertiesEx) and records what it was sent.
describe('property collector paging', () => {
  let server: Server;
  let url: string;
  const seen: { action: string | undefined; cookie: string | undefined; body: string }[] = [];
  const envelope = (body: string) =>
    `<?xml version="1.0"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>${body}</soapenv:Body></soapenv:Envelope>`;
  const object = (id: string) =>
    `<objects><obj type="VirtualMachine">${id}</obj><propSet><name>name</name><val xsi:type="xsd:string">${id}-name</val></propSet></objects>`;

  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => {
        body += String(c);
      });
      req.on('end', () => {
        seen.push({ action: req.headers.soapaction as string | undefined, cookie: req.headers.cookie, body });
        const method = /<soapenv:Body><(\w+)/.exec(body)?.[1];
        let reply = '';
        if (method === 'RetrieveServiceContent') {
          reply = `<RetrieveServiceContentResponse xmlns="urn:vim25"><returnval><rootFolder type="Folder">group-d1</rootFolder><propertyCollector type="PropertyCollector">propertyCollector</propertyCollector><viewManager type="ViewManager">ViewManager</viewManager><about><fullName>Fake vCenter</fullName><apiType>VirtualCenter</apiType><apiVersion>8.0.2.0</apiVersion></about><sessionManager type="SessionManager">SessionManager</sessionManager><searchIndex type="SearchIndex">SearchIndex</searchIndex><ovfManager type="OvfManager">OvfManager</ovfManager></returnval></RetrieveServiceContentResponse>`;
        } else if (method === 'Login') {
          res.setHeader('Set-Cookie', 'vmware_soap_session="abc"; Path=/; HttpOnly');
          reply = '<LoginResponse xmlns="urn:vim25"><returnval><key>k</key></returnval></LoginResponse>';
        } else if (method === 'RetrievePropertiesEx') {
          reply = `<RetrievePropertiesExResponse xmlns="urn:vim25"><returnval><token>page-2</token>${object('vm-1')}${object('vm-2')}</returnval></RetrievePropertiesExResponse>`;
        } else if (method === 'ContinueRetrievePropertiesEx') {
          const token = /<token>([^<]+)<\/token>/.exec(body)?.[1];
          reply =
            token === 'page-2'
              ? `<ContinueRetrievePropertiesExResponse xmlns="urn:vim25"><returnval><token>page-3</token>${object('vm-3')}</returnval></ContinueRetrievePropertiesExResponse>`
              : `<ContinueRetrievePropertiesExResponse xmlns="urn:vim25"><returnval>${object('vm-4')}</returnval></ContinueRetrievePropertiesExResponse>`;
        } else if (method === 'Logout') {
          reply = '<LogoutResponse xmlns="urn:vim25"></LogoutResponse>';
        }
        res.setHeader('Content-Type', 'text/xml');
        res.end(envelope(reply));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/sdk`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('follows tokens to the last page, with the session cookie and versioned SOAPAction', async () => {
    const client = await VimClient.connect({ url, username: 'u', password: 'p', trust: { kind: 'system' } });
    const objects = await client.retrieve(
      [
        {
          propSet: [{ type: 'VirtualMachine', pathSet: ['name'] }],
          objectSet: [{ obj: { type: 'Folder', value: 'group-d1' } }],
        },
      ],
      2,
    );
    await client.logout();
    expect(objects.map((o) => o.obj.value)).toEqual(['vm-1', 'vm-2', 'vm-3', 'vm-4']);
    expect(objects[0]!.props.get('name')!.text).toBe('vm-1-name');
    const continues = seen.filter((s) => s.body.includes('<ContinueRetrievePropertiesEx'));
    expect(continues.map((s) => /<token>([^<]+)/.exec(s.body)![1])).toEqual(['page-2', 'page-3']);
    const retrieve = seen.find((s) => s.body.includes('<RetrievePropertiesEx '))!;
    expect(retrieve.action).toBe('"urn:vim25/8.0.2.0"');
    expect(retrieve.cookie).toBe('vmware_soap_session="abc"');
    expect(retrieve.body).toContain('<options><maxObjects>2</maxObjects></options>');
  });
});

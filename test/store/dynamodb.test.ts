/**
 * The DynamoDB adapter against a real DynamoDB-compatible server (dynalite, in memory), started
 * on a free loopback port for this file.
 */
import type { AddressInfo } from 'node:net';
import { CreateTableCommand, DescribeTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import dynalite from 'dynalite';
import { DynamoStore, tableDefinition } from '../../functions/store/dynamodb-store.ts';
import { storeConformance } from './conformance.ts';

storeConformance('DynamoDB (dynalite, two clients)', async () => {
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const client = () =>
    new DynamoDBClient({
      endpoint: `http://127.0.0.1:${port}`,
      region: 'us-east-1',
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
      maxAttempts: 1,
    });
  const c1 = client();
  const c2 = client();
  const tableName = 'odt-conformance';
  await c1.send(new CreateTableCommand(tableDefinition(tableName)));
  for (;;) {
    const d = await c1.send(new DescribeTableCommand({ TableName: tableName }));
    if (d.Table?.TableStatus === 'ACTIVE') break;
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    a: new DynamoStore({ client: c1, tableName }),
    b: new DynamoStore({ client: c2, tableName }),
    async close() {
      c1.destroy();
      c2.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
});

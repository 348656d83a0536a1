import Database from 'better-sqlite3';
import { DynamoAgentRegistry } from '../../functions/store/dynamodb-agent-registry.ts';
import { SqliteAgentRegistry } from '../../local/store/agent-registry.ts';
import { agentRegistryConformance } from './agent-registry-conformance.ts';
import { startDynalite } from './support.ts';

// One behaviour, both adapters of the AgentRegistry port.

agentRegistryConformance('SQLite (in memory, one connection)', async () => {
  const db = new Database(':memory:');
  const registry = new SqliteAgentRegistry(db);
  return {
    a: registry,
    b: registry,
    async close() {
      db.close();
    },
  };
});

agentRegistryConformance('DynamoDB (dynalite, two clients)', async () => {
  const db = await startDynalite('odt-agents');
  return {
    a: new DynamoAgentRegistry({ client: db.client(), tableName: db.tableName }),
    b: new DynamoAgentRegistry({ client: db.client(), tableName: db.tableName }),
    close: () => db.close(),
  };
});

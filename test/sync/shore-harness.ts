// The shore side for sync tests: a real ShoreIngester on a SQLite file, subscribed to a real broker.
import path from 'node:path';
import { silentLogger } from '../../src/log.js';
import { ShoreIngester } from '../../src/shore/ingester.js';
import { SqliteShoreDriver } from '../../src/shore/sqlite.js';
import { ShoreStore } from '../../src/shore/store.js';

export interface Shore {
  store: ShoreStore;
  ingester: ShoreIngester;
  dbPath: string;
  stop(): Promise<void>;
}

export async function startShore(dir: string, url: string, clientId = 'shore-1', dbName = 'shore.db'): Promise<Shore> {
  const dbPath = path.join(dir, dbName);
  const store = new ShoreStore(new SqliteShoreDriver({ path: dbPath }));
  await store.open();
  const ingester = new ShoreIngester({
    store,
    link: { url, clientId, reconnectPeriodMs: 500, keepaliveS: 10, connectTimeoutMs: 5000 },
    group: 'shore',
    topicPrefix: 'plankwatch-sync',
    statusIntervalMs: 1000,
    retryMs: 200,
    logger: silentLogger(),
  });
  await ingester.start();
  return {
    store,
    ingester,
    dbPath,
    stop: async () => {
      await ingester.stop();
      await store.close();
    },
  };
}

// `plankwatch sync status`: what waits in the outbox, what the broker and the shore acknowledged,
// and how long the queue takes to drain.
import type { Command } from 'commander';
import { silentLogger } from '../log.js';
import { Store } from '../store/store.js';
import { Outbox, type OutboxStatus } from '../sync/outbox.js';
import { configFrom } from './run.js';

export interface DrainEstimate {
  /** Expected MQTT bytes still to send (queued JSON / compression ratio). */
  wireBytes: number;
  /** Seconds at the recent acknowledged rate; null when nothing was acknowledged in the last 5 minutes. */
  atRecentRateS: number | null;
  /** Seconds at the configured cap; null without a cap. */
  atCapS: number | null;
}

/** The default ratio before anything was sent: brotli on these records measures 6-8x. */
const ASSUMED_RATIO = 5;

export function drainEstimate(s: OutboxStatus, bytesPerSecondCap: number, now = Date.now()): DrainEstimate {
  const ratio = s.compressionRatio ?? ASSUMED_RATIO;
  const wireBytes = Math.round(s.queued.bytes / ratio);
  const recent = s.lastAckAt !== null && now - s.lastAckAt < 5 * 60_000 && s.rateBps > 0;
  return {
    wireBytes,
    atRecentRateS: recent ? Math.ceil(wireBytes / s.rateBps) : null,
    atCapS: bytesPerSecondCap > 0 ? Math.ceil(wireBytes / bytesPerSecondCap) : null,
  };
}

function duration(s: number | null): string {
  if (s === null) return 'unknown';
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

export function registerSyncCommands(program: Command): void {
  const sync = program.command('sync').description('The outbox of results going ashore.');
  sync
    .command('status')
    .description('Queued records and bytes, last acknowledged sequence, what the shore confirmed, time to drain.')
    .option('-c, --config <file>', 'YAML config file (for store.path, instrument.id and the sync budget)')
    .option('--json', 'print one JSON object')
    .action((opts: { config?: string; json?: boolean }) => {
      const config = configFrom(opts.config);
      const store = new Store({ path: config.store.path, countsWindowMs: config.store.countsWindowS * 1000, logger: silentLogger() });
      store.open();
      try {
        const s = new Outbox(store.outboxRepository(), config.instrument.id).status();
        const eta = drainEstimate(s, config.sync.bytesPerSecond);
        if (opts.json) {
          process.stdout.write(`${JSON.stringify({ enabled: config.sync.enabled, ...s, drain: eta })}\n`);
          return;
        }
        const kinds = Object.entries(s.queued.byKind).map(([k, v]) => `${k} ${v.records}`).join(', ') || 'none';
        const lines = [
          `sync ${config.sync.enabled ? 'enabled' : 'disabled (sync.enabled: false)'}, instrument ${s.instrument}`,
          `queued:            ${s.queued.records} records, ${s.queued.bytes} bytes of JSON (${kinds})`,
          `awaiting shore:    ${s.awaitingShore} records acknowledged by the broker, not yet confirmed by the shore`,
          `last sequence:     ${s.lastSeq} queued, ${s.lastAckedSeq} acknowledged, shore holds all through ${s.shoreThrough}` +
            (s.shoreMissing > 0 ? ` (${s.shoreMissing} missing after that)` : ''),
          `sent:              ${s.ackedRecords} records in ${s.ackedBatches} batches, ${s.wireBytes} bytes on the wire` +
            (s.bytesPerRoi !== null ? `, ${s.bytesPerRoi.toFixed(0)} bytes per ROI` : '') +
            (s.compressionRatio !== null ? `, compression ${s.compressionRatio.toFixed(1)}x` : ''),
          `today (UTC):       ${s.todayBytes} bytes${config.sync.dailyBytes > 0 ? ` of ${config.sync.dailyBytes}` : ''}`,
          `rate:              ${s.rateBps.toFixed(0)} B/s recently${s.lastAckAt ? ` (last acknowledgement ${new Date(s.lastAckAt).toISOString()})` : ''}`,
          `time to drain:     ${duration(eta.atRecentRateS)} at the recent rate, ${duration(eta.atCapS)} at the cap (~${eta.wireBytes} bytes)`,
        ];
        process.stdout.write(`${lines.join('\n')}\n`);
      } finally {
        store.close();
      }
    });
}

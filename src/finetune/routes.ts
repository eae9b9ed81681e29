// The fine-tuning API: GET /api/finetune/runs (status and recent runs with their gate numbers),
// GET /api/finetune/runs/:id, POST /api/finetune/run (start one now).
import { ERRORS, PlankwatchError } from '../errors.js';
import type { HttpPlugin } from '../http/server.js';
import type { Logger } from '../log.js';
import type { Finetuner } from './finetuner.js';

export function finetuneRoutes(finetuner: Finetuner, log: Logger): HttpPlugin {
  return async (app) => {
    app.setErrorHandler((err: Error & { statusCode?: number }, request, reply) => {
      if (err instanceof PlankwatchError) {
        const status = err.code === 'PW_E_FINETUNE_BUSY' ? 409 : 500;
        if (status >= 500) log.error({ err, code: err.code, path: request.url }, 'fine-tuning request failed');
        return reply.code(status).send({ error: { code: err.code, message: err.message } });
      }
      const status = err.statusCode ?? 500;
      if (status >= 500) log.error({ err, code: 'PW_E_INTERNAL', path: request.url }, 'fine-tuning request failed');
      return reply.code(status).send({ error: { code: status >= 500 ? 'PW_E_INTERNAL' : 'PW_E_REVIEW_REQUEST', message: status >= 500 ? ERRORS.PW_E_INTERNAL.message : err.message } });
    });

    app.get('/api/finetune/runs', async (request) => {
      const q = request.query as { limit?: string };
      const limit = q.limit !== undefined && Number.isFinite(Number(q.limit)) ? Number(q.limit) : 50;
      return { ...finetuner.status(), runs: finetuner.list(limit) };
    });

    app.get('/api/finetune/runs/:id', async (request, reply) => {
      const id = Number((request.params as { id: string }).id);
      const run = Number.isInteger(id) ? finetuner.get(id) : undefined;
      if (!run) return reply.code(404).send({ error: { code: 'PW_E_REVIEW_NOT_FOUND', message: `No fine-tuning run ${String((request.params as { id: string }).id)}.` } });
      return run;
    });

    app.post('/api/finetune/run', async (_request, reply) => {
      const { runId, done } = finetuner.request('api');
      void done;
      log.info({ runId }, `fine-tuning run ${runId} requested over the API`);
      return reply.code(202).send({ runId, status: 'running' });
    });
  };
}

import type { Database } from "../db/client.ts";
import type { JobQueue } from "./job-queue.ts";
import { requestQueueName } from "./job-queue.ts";

export interface OrphanSweeperOptions {
  database: Database;
  queue: JobQueue;
  /** How long a request may go unfinished without a live job before it counts as orphaned. */
  minAgeSeconds: number;
  /** How often to look. */
  intervalMs: number;
  onError(error: unknown): void;
  onSwept(requestIds: string[]): void;
}

export interface OrphanSweeper {
  /** Looks once now: queues again every orphaned request; resolves to their ids. */
  sweep(minAgeSeconds?: number): Promise<string[]>;
  stop(): void;
}

/**
 * A queued or running request is orphaned when no job of the queue is waiting for it or running it: its job gave up
 * after all its retries (the database away for hours), or was deleted by hand. Every instance looks now and then and
 * gives such a request a new job, in one transaction with setting it back to `queued` (only if it is still orphaned
 * then). Two instances sweeping at once may both add a job: the first claims the request, the other finds it taken.
 */
export function startOrphanSweeper(options: OrphanSweeperOptions): OrphanSweeper {
  const { database, queue } = options;

  async function sweep(minAgeSeconds = options.minAgeSeconds): Promise<string[]> {
    const orphaned = (
      await database.executeSql(
        `select r.id from requests r
          where r.status in ('queued', 'running') and r.created_at < now() - make_interval(secs => $1)
            and not exists (
              select 1 from pgboss.job j
              where j.name = $2 and j.state in ('created', 'retry', 'active') and j.data->>'requestId' = r.id
            )
          limit 500`,
        [minAgeSeconds, requestQueueName],
      )
    ).rows as Array<{ id: string }>;
    const swept: string[] = [];
    for (const { id } of orphaned) {
      const requeued = await database.transaction(async (runner) => {
        const { rows } = await runner.query({
          text: `update requests set status = 'queued', run_token = null
            where id = $1 and status in ('queued', 'running') and not exists (
              select 1 from pgboss.job j
              where j.name = $2 and j.state in ('created', 'retry', 'active') and j.data->>'requestId' = $1
            )
            returning id`,
          values: [id, requestQueueName],
        });
        if (rows.length === 0) return false;
        // The cache setting lived in the lost job (Cache-Control, or the body's `cache: false`): the request now uses it.
        await queue.add(runner, [{ data: { requestId: id, cacheMode: "use", priority: 0 } }]);
        return true;
      });
      if (requeued) swept.push(id);
    }
    if (swept.length > 0) {
      queue.wake();
      options.onSwept(swept);
    }
    return swept;
  }

  const timer = setInterval(() => {
    sweep().catch(options.onError);
  }, options.intervalMs);
  timer.unref();

  return {
    sweep,
    stop: () => clearInterval(timer),
  };
}

import type { StatementRunner } from "./client.ts";
import { foldBatchLimit, foldStatement } from "./usage-rollups.ts";

export interface RollupFolderOptions {
  /** Where the fold runs: the pool, not the request writer's connection, so a fold never delays a batch. */
  runner: StatementRunner;
  /** How long after a stored batch the fold starts: batches stored meanwhile are folded together. */
  delayMs: number;
  /** A background fold failed; the batches stay queued for the next one. */
  onError?: (error: unknown) => void;
}

export interface RollupFolder {
  /** A batch was queued: fold it within `delayMs`, together with whatever else is queued by then. */
  stored(): void;
  /**
   * Folds every batch queued when it is called, then resolves; rejects when the database fails. Before an overview
   * is read, so the overview counts every stored request.
   */
  foldNow(): Promise<void>;
  /** Stops folding in the background, then folds what is queued. Never rejects: what stays is folded at next start. */
  close(): Promise<void>;
}

/**
 * Folds the usage rollup queue (usage-rollups.ts) into the rollups, off the answer's path. Folds of this process run
 * one after another; `usage_rollups_fold()` makes those of several instances take turns.
 */
export function createRollupFolder(options: RollupFolderOptions): RollupFolder {
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  // The last fold asked for; a new one starts when it settles, so it sees everything queued before it was asked.
  let last: Promise<void> = Promise.resolve();

  async function foldAll(): Promise<void> {
    for (;;) {
      const { rows } = await options.runner.query({ text: foldStatement, values: [] });
      const taken = Number((rows[0] as { taken: number | string } | undefined)?.taken ?? 0);
      if (taken < foldBatchLimit) return;
    }
  }

  function foldNow(): Promise<void> {
    const next = last.catch(() => {}).then(foldAll);
    last = next;
    return next;
  }

  return {
    stored() {
      if (closed || timer) return;
      timer = setTimeout(() => {
        timer = undefined;
        foldNow().catch((error: unknown) => options.onError?.(error));
      }, options.delayMs);
      timer.unref();
    },
    foldNow,
    async close() {
      closed = true;
      clearTimeout(timer);
      timer = undefined;
      await foldNow().catch((error: unknown) => options.onError?.(error));
    },
  };
}

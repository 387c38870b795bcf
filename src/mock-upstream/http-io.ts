/**
 * The mock upstream's wire helpers on plain `node:http`: read a bounded body, answer JSON, wait without throwing when
 * the client leaves, and write a chat stream as server-sent events (at once, paced, or broken off).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { setTimeout as delay } from "node:timers/promises";

const maxBodyBytes = 16 * 1024 * 1024;

/** The body as text; undefined when it is over `maxBodyBytes`. */
export function readBody(req: IncomingMessage): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size <= maxBodyBytes) chunks.push(chunk);
    });
    req.on("end", () => resolve(size > maxBodyBytes ? undefined : Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
    // A client that leaves mid-body: settle anyway (the answer goes nowhere; the close handler counts it).
    req.on("close", () => resolve(""));
  });
}

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = typeof body === "string" ? body : JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

/** Resolves false instead of throwing when the client went away during the wait. */
export async function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  if (ms <= 0) return !signal.aborted;
  try {
    await delay(ms, undefined, { signal });
    return true;
  } catch {
    return false;
  }
}

const sse = (value: unknown) => `data: ${JSON.stringify(value)}\n\n`;

export interface StreamPlan {
  headers: Record<string, string>;
  chunkDelayMs: number;
  brokenAfter: number | null | undefined;
  signal: AbortSignal;
  destroy: () => void;
}

export async function writeStream(res: ServerResponse, chunks: readonly unknown[], plan: StreamPlan): Promise<void> {
  res.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
    connection: "keep-alive",
    ...plan.headers,
  });
  const broken = plan.brokenAfter !== null && plan.brokenAfter !== undefined;
  if (plan.chunkDelayMs <= 0 && !broken) {
    // The fast path: one write for the whole stream.
    res.end(`${chunks.map(sse).join("")}data: [DONE]\n\n`);
    return;
  }
  const limit = broken ? Math.min(plan.brokenAfter as number, chunks.length) : chunks.length;
  if (limit === 0) res.flushHeaders();
  for (let i = 0; i < limit; i++) {
    if (i > 0 && !(await sleep(plan.chunkDelayMs, plan.signal))) return;
    // Wait for the bytes to reach the socket, so a broken stream really delivers its N chunks first.
    await new Promise<void>((resolve) => res.write(sse(chunks[i]), () => resolve()));
    if (plan.signal.aborted) return;
  }
  if (broken) {
    await new Promise((resolve) => setImmediate(resolve));
    plan.destroy();
    return;
  }
  if (!(await sleep(plan.chunkDelayMs, plan.signal))) return;
  res.end("data: [DONE]\n\n");
}

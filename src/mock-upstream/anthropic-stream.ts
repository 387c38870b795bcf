/**
 * An Anthropic stream on the wire: named server-sent events (`event: <type>\ndata: <json>\n\n`), no `[DONE]`, at
 * once or paced, broken off (the connection destroyed before `message_stop`), or failing mid-stream with an `error`
 * event after which the response ends normally, as Anthropic's does when it is overloaded.
 */
import type { ServerResponse } from "node:http";
import type { MessageStreamEvent } from "../providers/mock-model/messages.ts";
import { sleep } from "./http-io.ts";

// Anthropic writes its ping with a space after the colon, unlike every other event.
const pingData = '{"type": "ping"}';

const sse = (event: MessageStreamEvent) =>
  `event: ${event.type}\ndata: ${event.type === "ping" ? pingData : JSON.stringify(event)}\n\n`;

export interface AnthropicStreamPlan {
  headers: Record<string, string>;
  eventDelayMs: number;
  /** Destroy the connection after this many events. */
  brokenAfter: number | null | undefined;
  /** After this many events, send an `error` event with this message and end the response. */
  errorAfter: { events: number; message: string } | undefined;
  signal: AbortSignal;
  destroy: () => void;
}

const write = (res: ServerResponse, text: string) => new Promise<void>((resolve) => res.write(text, () => resolve()));

export async function writeAnthropicStream(
  res: ServerResponse,
  events: readonly MessageStreamEvent[],
  plan: AnthropicStreamPlan,
): Promise<void> {
  res.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
    connection: "keep-alive",
    ...plan.headers,
  });
  const brokenAfter = plan.brokenAfter ?? undefined;
  const errorAfter = plan.errorAfter;
  if (plan.eventDelayMs <= 0 && brokenAfter === undefined && errorAfter === undefined) {
    // The fast path: one write for the whole stream.
    res.end(events.map(sse).join(""));
    return;
  }
  // Whichever comes first: the cut or the error event.
  const broken = brokenAfter !== undefined && (errorAfter === undefined || brokenAfter <= errorAfter.events);
  const limit = Math.min(events.length, broken ? brokenAfter : (errorAfter?.events ?? events.length));
  if (limit === 0) res.flushHeaders();
  for (let i = 0; i < limit; i++) {
    if (i > 0 && !(await sleep(plan.eventDelayMs, plan.signal))) return;
    // Wait for the bytes to reach the socket, so a broken stream really delivers its N events first.
    await write(res, sse(events[i] as MessageStreamEvent));
    if (plan.signal.aborted) return;
  }
  if (broken) {
    await new Promise((resolve) => setImmediate(resolve));
    plan.destroy();
    return;
  }
  if (errorAfter !== undefined && limit < events.length) {
    if (limit > 0 && !(await sleep(plan.eventDelayMs, plan.signal))) return;
    const error = { type: "error", error: { type: "overloaded_error", message: errorAfter.message } };
    res.end(`event: error\ndata: ${JSON.stringify(error)}\n\n`);
    return;
  }
  res.end();
}

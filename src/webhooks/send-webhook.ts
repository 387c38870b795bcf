/**
 * One delivery attempt of a webhook: a POST to the user's URL that answers with what happened, never with an
 * exception. The URL is checked and resolved again here (it may resolve elsewhere than at registration: DNS
 * rebinding), and the connection goes only to the addresses just vetted: a one-off undici Agent whose lookup returns
 * them, so TLS SNI, certificate checks and the Host header still use the URL's own host name. No redirect is followed
 * (a redirect could point anywhere), and the receiver's answer is read only up to a cap, within one deadline.
 */
import type { LookupAddress, LookupOptions } from "node:dns";
import type { LookupFunction } from "node:net";
import { StringDecoder } from "node:string_decoder";
import { Agent, request } from "undici";
import { type LookupAll, type ResolvedAddress, resolveWebhookTarget, WebhookUrlError } from "./address-guard.ts";

export interface SendWebhookInput {
  url: string;
  /** Sent as given (the signature headers, say); `content-type` is always `application/json`. */
  headers: Record<string, string>;
  /** JSON text, sent as it is (the signature covers these exact bytes). */
  body: string;
  /** The whole attempt's deadline: resolving, connecting, the answer's headers and the reading of its body. */
  timeoutMs: number;
  /** The most of the answer's body kept (for display); past it the body is not read further. */
  maxResponseBytes: number;
  /** Allow loopback and private addresses (development, tests). */
  allowPrivateNetworks: boolean;
  /** Default: the system resolver (see resolveWebhookTarget). */
  lookup?: LookupAll;
}

export interface DeliveryAttempt {
  /** True exactly when the receiver answered 2xx. */
  ok: boolean;
  /** The receiver's status (a 3xx is kept, not followed); null when none arrived. */
  status: number | null;
  /**
   * Why the attempt failed: the refused URL's reason, `timeout after N ms …`, the connection's error. Also set when
   * reading the answer's body failed after its status arrived; `ok` still follows the status then.
   */
  error: string | null;
  durationMs: number;
  /** The start of the answer's body, at most maxResponseBytes of UTF-8 (a character cut at the cap is dropped). */
  responseBody: string;
}

const timeoutCodes = new Set(["UND_ERR_HEADERS_TIMEOUT", "UND_ERR_BODY_TIMEOUT", "UND_ERR_CONNECT_TIMEOUT"]);

/** A lookup that ignores the name asked and answers with the vetted addresses only. */
function pinnedLookup(addresses: ResolvedAddress[]): LookupFunction {
  return (_hostname: string, options: LookupOptions, callback) => {
    const family =
      options.family === 4 || options.family === "IPv4" ? 4 : options.family === 6 || options.family === "IPv6" ? 6 : 0;
    const usable = family === 0 ? addresses : addresses.filter((address) => address.family === family);
    // Answer asynchronously, as dns.lookup does: net attaches its listeners after calling lookup.
    process.nextTick(() => {
      const first = usable[0];
      if (first === undefined) {
        callback(Object.assign(new Error(`no vetted IPv${family} address`), { code: "ENOTFOUND" }), "");
      } else if (options.all) {
        // Node 20 asks for every address when it tries them in turn (autoSelectFamily, on by default).
        callback(
          null,
          usable.map((address): LookupAddress => ({ address: address.address, family: address.family })),
        );
      } else {
        callback(null, first.address, first.family);
      }
    });
  };
}

/** Rejects with the signal's reason once it aborts; `work` itself is left to settle on its own. */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    if (signal.aborted) onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/**
 * Up to `maxBytes` of the body as UTF-8, then the body destroyed: an endless answer holds neither time nor memory.
 * A failure while reading keeps what arrived before it.
 */
async function readCapped(
  body: AsyncIterable<Buffer> & { destroy(): unknown },
  maxBytes: number,
): Promise<{ text: string; error: unknown }> {
  const decoder = new StringDecoder("utf8");
  let text = "";
  let kept = 0;
  try {
    if (maxBytes > 0) {
      for await (const chunk of body) {
        const piece = chunk.length > maxBytes - kept ? chunk.subarray(0, maxBytes - kept) : chunk;
        // write() holds back an incomplete trailing character, so a cut never adds U+FFFD bytes past the cap.
        text += decoder.write(piece);
        kept += piece.length;
        if (kept >= maxBytes) break;
      }
    }
    return { text, error: undefined };
  } catch (error) {
    return { text, error: error ?? new Error("response body failed") };
  } finally {
    body.destroy();
  }
}

function describeFailure(error: unknown, deadline: AbortSignal, timeoutMs: number, stage: string): string {
  if (error instanceof WebhookUrlError) return error.message;
  const code = (error as { code?: unknown } | null)?.code;
  if (deadline.aborted || (typeof code === "string" && timeoutCodes.has(code))) {
    return `timeout after ${timeoutMs} ms ${stage}`;
  }
  const message = error instanceof Error ? error.message : String(error);
  return typeof code === "string" && !message.includes(code) ? `${message} (${code})` : message;
}

/** One POST of a webhook; resolves with the attempt's outcome for every receiver or network problem. */
export async function sendWebhook(input: SendWebhookInput): Promise<DeliveryAttempt> {
  const started = performance.now();
  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(new Error("webhook deadline")), input.timeoutMs);
  const attempt = (fields: Omit<DeliveryAttempt, "durationMs">): DeliveryAttempt => ({
    ...fields,
    durationMs: Math.round(performance.now() - started),
  });
  let stage = "resolving the host";
  let agent: Agent | undefined;
  let status: number | null = null;
  try {
    const target = await untilAborted(
      resolveWebhookTarget(input.url, { allowPrivateNetworks: input.allowPrivateNetworks, lookup: input.lookup }),
      deadline.signal,
    );
    stage = "waiting for the response";
    agent = new Agent({
      connect: { lookup: pinnedLookup(target.addresses), timeout: input.timeoutMs },
      headersTimeout: input.timeoutMs,
      bodyTimeout: input.timeoutMs,
      connections: 1,
    });
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(input.headers)) {
      if (name.toLowerCase() !== "content-type") headers[name] = value;
    }
    headers["content-type"] = "application/json";
    // undici's request follows no redirects: a 3xx comes back as the answer.
    const response = await request(target.url, {
      dispatcher: agent,
      method: "POST",
      headers,
      body: input.body,
      signal: deadline.signal,
    });
    status = response.statusCode;
    const ok = status >= 200 && status < 300;
    stage = "reading the response body";
    const read = await readCapped(response.body, input.maxResponseBytes);
    // The status is the receiver's answer; a body cut short only loses some of what was to be displayed.
    const error =
      read.error !== undefined
        ? describeFailure(read.error, deadline.signal, input.timeoutMs, stage)
        : ok
          ? null
          : `HTTP ${status}${status >= 300 && status < 400 ? " (redirects are not followed)" : ""}`;
    return attempt({ ok, status, error, responseBody: read.text });
  } catch (error) {
    return attempt({
      ok: false,
      status,
      error: describeFailure(error, deadline.signal, input.timeoutMs, stage),
      responseBody: "",
    });
  } finally {
    clearTimeout(timer);
    // After a clean attempt nothing is in flight (the body was read or destroyed) and close returns at once; after a
    // failure, destroy drops whatever is left rather than wait on it.
    const ended = deadline.signal.aborted || status === null ? agent?.destroy() : agent?.close();
    await ended?.catch(() => {});
  }
}

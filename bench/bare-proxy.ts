/**
 * The benchmark's `proxy` baseline: the cheapest HTTP hop Node can make in front of the mock upstream. node:http in,
 * one pooled keep-alive request out, bodies piped both ways, no parsing and no logic. Whatever the service costs
 * beyond this is the service's own work, so the report states its throughput as a multiple of this hop's.
 *
 *   npx tsx bench/bare-proxy.ts --upstream http://127.0.0.1:8081 [--port 0]
 *
 * Prints `bare proxy listening on http://…` once it listens; exits on SIGTERM/SIGINT.
 */
import { Agent, createServer, type IncomingHttpHeaders, request } from "node:http";
import type { AddressInfo } from "node:net";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: { upstream: { type: "string" }, port: { type: "string", default: "0" } },
});
if (!values.upstream) {
  console.error("usage: npx tsx bench/bare-proxy.ts --upstream <origin> [--port <n>]");
  process.exit(2);
}
const upstream = new URL(values.upstream);

// Keep-alive and no socket cap, like the service's undici pool: each client connection ends up with an upstream
// connection of its own, reused for every request, so no request pays for a TCP handshake.
const agent = new Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY });

/** Per-connection headers stay on their own hop (RFC 9110 §7.6.1); everything else passes untouched. */
const hopByHop = new Set(["connection", "keep-alive", "transfer-encoding", "upgrade", "proxy-connection", "te"]);
const endToEnd = (headers: IncomingHttpHeaders) =>
  Object.fromEntries(Object.entries(headers).filter(([name]) => !hopByHop.has(name)));

const server = createServer((req, res) => {
  const outgoing = request(
    {
      host: upstream.hostname,
      port: upstream.port,
      method: req.method,
      path: req.url,
      headers: { ...endToEnd(req.headers), host: upstream.host },
      agent,
    },
    (answer) => {
      res.writeHead(answer.statusCode ?? 502, endToEnd(answer.headers));
      answer.pipe(res);
    },
  );
  // A failed hop is a 502 the benchmark counts (non-2xx fails the run); never a hang.
  outgoing.on("error", (error) => {
    console.error(`bare proxy: upstream error: ${error.message}`);
    if (!res.headersSent) res.writeHead(502, { "content-type": "text/plain" });
    res.end();
  });
  req.pipe(outgoing);
});
// Longer than the load generator's idle gaps, so its connections stay open between requests (as the service's do).
server.keepAliveTimeout = 30_000;

server.listen(Number(values.port), "127.0.0.1", () => {
  console.log(`bare proxy listening on http://127.0.0.1:${(server.address() as AddressInfo).port}`);
});

const stop = () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
  agent.destroy();
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);

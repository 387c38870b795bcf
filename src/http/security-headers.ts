import type { FastifyReply, FastifyRequest } from "fastify";

/**
 * Security headers on every answer, set when the request arrives so that error answers, 404s and streams (which
 * copy reply.getHeaders() into their head) carry them too. A small hook rather than @fastify/helmet: an API that
 * answers JSON needs a handful of headers, and the one page it serves (/docs) needs its own CSP.
 *
 * - X-Content-Type-Options: nosniff: a JSON answer is never run as a script or rendered as HTML.
 * - X-Frame-Options: DENY and CSP frame-ancestors 'none': no answer may be framed (clickjacking).
 * - Referrer-Policy: no-referrer: URLs (ids, query strings) do not leak to other sites.
 * - Content-Security-Policy: default-src 'none' for the API (nothing in a JSON answer may load anything);
 *   /docs gets what swagger-ui needs: its own scripts and styles, inline styles (it sets style attributes),
 *   data: images, and calls to this origin for the OpenAPI document.
 * - The dashboard (`/`, `/assets/…`) may run its own bundled scripts and styles (charts set inline styles), show
 *   data: images and call this origin; nothing else, and no other origin.
 * - Strict-Transport-Security (one year, no includeSubDomains, since the service does not own its parent
 *   domain's subdomains): browsers ignore it over plain http (RFC 6797 §8.1), so it is harmless there and right
 *   behind a TLS-terminating proxy.
 * - Cache-Control: no-store on authenticated routes, unless the route sets its own: per-user answers must not
 *   be kept by shared caches.
 */
const apiPolicy = "default-src 'none'; frame-ancestors 'none'";
const docsPolicy =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
  "font-src 'self' data:; object-src 'none'; base-uri 'self'; form-action 'none'; frame-ancestors 'none'";

/** What every API answer carries, including those written before a route runs (connection-errors.ts). */
export const apiSecurityHeaders: Readonly<Record<string, string>> = Object.freeze({
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
  "strict-transport-security": "max-age=31536000",
  "content-security-policy": apiPolicy,
});
const docsSecurityHeaders = Object.freeze({ ...apiSecurityHeaders, "content-security-policy": docsPolicy });
const dashboardPolicy =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
  "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'";
const dashboardSecurityHeaders = Object.freeze({ ...apiSecurityHeaders, "content-security-policy": dashboardPolicy });

export function securityHeaders(request: FastifyRequest, reply: FastifyReply): void {
  const url = request.url;
  reply.headers(isDocs(url) ? docsSecurityHeaders : isDashboard(url) ? dashboardSecurityHeaders : apiSecurityHeaders);
  const access = request.routeOptions.config.access ?? "public";
  if (access !== "public") reply.header("cache-control", "no-store");
}

const isDocs = (url: string) => url === "/docs" || url.startsWith("/docs/") || url.startsWith("/docs?");
const isDashboard = (url: string) =>
  url === "/" || url.startsWith("/?") || url.startsWith("/assets/") || url === "/index.html" || url === "/favicon.svg";

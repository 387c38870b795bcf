/**
 * Which webhook URLs the service may call: only http(s) to public unicast addresses, so that a user's webhook can
 * never make the service reach its own network (loopback, private ranges, the cloud metadata address 169.254.169.254,
 * fd00:ec2::254). A name is resolved and every address it resolves to is checked; the caller connects only to those
 * vetted addresses (send-webhook.ts pins them), so a name that later resolves elsewhere (DNS rebinding) gains nothing.
 */
import { lookup as dnsLookup } from "node:dns/promises";
import { isIP } from "node:net";
import ipaddr from "ipaddr.js";

/** All the addresses a host name resolves to, in the resolver's order. */
export type LookupAll = (hostname: string) => Promise<{ address: string; family: number }[]>;

export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

export interface WebhookTarget {
  url: URL;
  /** Every address the host resolved to (or the IP literal itself); connect only to these. */
  addresses: ResolvedAddress[];
}

export interface ResolveWebhookTargetOptions {
  /** Skip the address checks (development, tests); the URL's scheme and shape are still checked. */
  allowPrivateNetworks: boolean;
  /** Default: the system resolver, `dns.promises.lookup(host, { all: true, verbatim: true })`. */
  lookup?: LookupAll;
}

/** A URL the service will not call. Its message completes "url …", for a 422 naming the field `url`. */
export class WebhookUrlError extends Error {
  override name = "WebhookUrlError";
  readonly field = "url";
}

/** The longest URL accepted, in characters as given. */
export const maxWebhookUrlLength = 2048;

const systemLookup: LookupAll = (hostname) => dnsLookup(hostname, { all: true, verbatim: true });

/** Reads a 32-bit IPv4 address out of two 16-bit IPv6 groups. */
function ipv4From(high: number, low: number): ipaddr.IPv4 {
  return new ipaddr.IPv4([high >> 8, high & 0xff, low >> 8, low & 0xff]);
}

/**
 * The IPv4 addresses an IPv6 address carries and would deliver to, for the forms that embed one; `undefined` when
 * it embeds none; `null` when it embeds one we cannot read reliably (then the address is refused).
 */
function embeddedIPv4(ip: ipaddr.IPv6): ipaddr.IPv4[] | null | undefined {
  const [p0 = 0, p1 = 0, p2 = 0, p3 = 0, p4 = 0, p5 = 0, p6 = 0, p7 = 0] = ip.parts;
  // ipaddr.js's range names as strings: its type declarations omit some (rfc6145, discard…).
  const range: string = ip.range();
  switch (range) {
    case "ipv4Mapped": // ::ffff:a.b.c.d
    case "rfc6145": // ::ffff:0:a.b.c.d
      return [ipv4From(p6, p7)];
    case "rfc6052":
      // 64:ff9b::/96 (well-known NAT64) carries it in the last 32 bits; the local-use 64:ff9b:1::/48 may place it
      // anywhere depending on the operator's prefix length, so it cannot be read reliably.
      return p0 === 0x64 && p1 === 0xff9b && p2 === 0 && p3 === 0 && p4 === 0 && p5 === 0 ? [ipv4From(p6, p7)] : null;
    case "6to4": // 2002:AABB:CCDD::/48
      return [ipv4From(p1, p2)];
    case "teredo": // 2001:0:<server IPv4>:<flags>:<port>:<client IPv4 with every bit inverted>
      return [ipv4From(p2, p3), ipv4From(~p6 & 0xffff, ~p7 & 0xffff)];
    case "unicast":
      // IPv4-compatible ::a.b.c.d (deprecated): ipaddr.js has no range for it and calls it unicast. :: and ::1 have
      // ranges of their own and never get here.
      return p0 === 0 && p1 === 0 && p2 === 0 && p3 === 0 && p4 === 0 && p5 === 0 ? [ipv4From(p6, p7)] : undefined;
    default:
      return undefined;
  }
}

function isForbiddenIp(ip: ipaddr.IPv4 | ipaddr.IPv6): boolean {
  if (ip.kind() === "ipv6") {
    const v6 = ip as ipaddr.IPv6;
    if (v6.zoneId !== undefined) return true;
    const embedded = embeddedIPv4(v6);
    if (embedded === null) return true;
    if (embedded !== undefined) return embedded.some((v4) => v4.range() !== "unicast");
  }
  return ip.range() !== "unicast";
}

/**
 * True for every address that is not a public unicast address: loopback, unspecified, private, CGNAT, link-local,
 * unique-local, multicast, broadcast, reserved, documentation and benchmarking ranges; an IPv6 address embedding an
 * IPv4 one (mapped, compatible, NAT64, 6to4, Teredo) is judged by that IPv4 address. An address with a zone id, or
 * anything but a canonical dotted-quad IPv4 or an IPv6 address (no `127.1`, `0x7f.0.0.1`, `2130706433`, brackets),
 * is forbidden too: what we check must be exactly what the socket connects to.
 */
export function isForbiddenAddress(address: string): boolean {
  if (address.includes("%") || isIP(address) === 0) return true;
  try {
    return isForbiddenIp(ipaddr.parse(address));
  } catch {
    return true;
  }
}

/** The host of a parsed URL as an IP literal (brackets removed), or undefined for a name. */
function ipLiteral(url: URL): string | undefined {
  const host = url.hostname;
  if (host.startsWith("[") && host.endsWith("]")) return host.slice(1, -1);
  // WHATWG URL parsing already turned every IPv4 spelling (decimal, hex, octal, short) into a dotted quad.
  return isIP(host) === 4 ? host : undefined;
}

function familyOf(address: string): 4 | 6 | undefined {
  const family = isIP(address);
  return family === 4 || family === 6 ? family : undefined;
}

/** The URL with its scheme and shape checked (no network). Throws WebhookUrlError. */
function parseWebhookUrl(rawUrl: string): URL {
  if (rawUrl.length > maxWebhookUrlLength) {
    throw new WebhookUrlError(`must be at most ${maxWebhookUrlLength} characters`);
  }
  let url: URL;
  try {
    url = new URL(rawUrl);
  } catch {
    throw new WebhookUrlError("must be a valid absolute URL");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new WebhookUrlError("must be an http or https URL");
  }
  if (url.username !== "" || url.password !== "") {
    throw new WebhookUrlError("must not contain a username or password");
  }
  if (url.hostname === "") throw new WebhookUrlError("must name a host");
  return url;
}

/**
 * Checks a webhook URL and resolves its host, for registration and again before every delivery (DNS may have
 * changed since). The URL must be http(s), at most 2048 characters, without credentials; an IP literal is checked
 * as it is, a name is resolved once and every address must be public (one forbidden address refuses the URL: a
 * client could connect to any of them). With `allowPrivateNetworks` the addresses are resolved and returned but not
 * judged. Throws WebhookUrlError, never a resolver error.
 */
export async function resolveWebhookTarget(
  rawUrl: string,
  options: ResolveWebhookTargetOptions,
): Promise<WebhookTarget> {
  const url = parseWebhookUrl(rawUrl);
  const literal = ipLiteral(url);
  if (literal !== undefined) {
    const family = familyOf(literal);
    if (family === undefined) throw new WebhookUrlError("must have a valid host");
    if (!options.allowPrivateNetworks && isForbiddenAddress(literal)) {
      throw new WebhookUrlError(`is a private or reserved address (${literal})`);
    }
    return { url, addresses: [{ address: literal, family }] };
  }

  let answers: { address: string; family: number }[];
  try {
    answers = await (options.lookup ?? systemLookup)(url.hostname);
  } catch {
    throw new WebhookUrlError("could not be resolved");
  }
  const addresses: ResolvedAddress[] = [];
  for (const { address } of answers) {
    const family = familyOf(address);
    // An answer that is not a plain address cannot be connected to as checked; refuse rather than guess.
    if (family === undefined) throw new WebhookUrlError(`resolves to an unusable address (${address})`);
    if (!options.allowPrivateNetworks && isForbiddenAddress(address)) {
      throw new WebhookUrlError(`resolves to a private or reserved address (${address})`);
    }
    if (!addresses.some((known) => known.address === address)) addresses.push({ address, family });
  }
  if (addresses.length === 0) throw new WebhookUrlError("could not be resolved");
  return { url, addresses };
}

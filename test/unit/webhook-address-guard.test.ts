import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  isForbiddenAddress,
  type LookupAll,
  resolveWebhookTarget,
  WebhookUrlError,
} from "../../src/webhooks/address-guard.ts";

const forbidden: [string, string][] = [
  ["127.0.0.1", "IPv4 loopback"],
  ["127.255.255.254", "IPv4 loopback, top of 127/8"],
  ["0.0.0.0", "this network"],
  ["0.1.2.3", "this network, 0/8"],
  ["10.0.0.5", "private 10/8"],
  ["172.16.0.1", "private 172.16/12"],
  ["172.31.255.255", "private 172.16/12, top"],
  ["192.168.1.1", "private 192.168/16"],
  ["169.254.169.254", "link-local: the cloud metadata address"],
  ["169.254.0.1", "link-local"],
  ["100.64.0.1", "CGNAT 100.64/10"],
  ["100.127.255.254", "CGNAT 100.64/10, top"],
  ["224.0.0.1", "multicast"],
  ["239.255.255.250", "multicast (SSDP)"],
  ["240.0.0.1", "reserved 240/4"],
  ["255.255.255.255", "broadcast"],
  ["192.0.2.1", "documentation TEST-NET-1"],
  ["198.51.100.7", "documentation TEST-NET-2"],
  ["203.0.113.9", "documentation TEST-NET-3"],
  ["198.18.0.1", "benchmarking 198.18/15"],
  ["198.19.255.255", "benchmarking 198.18/15, top"],
  ["192.0.0.8", "IETF protocol assignments 192.0.0/24"],
  ["::", "IPv6 unspecified"],
  ["::1", "IPv6 loopback"],
  ["fc00::1", "unique-local fc00::/7"],
  ["fd00:ec2::254", "unique-local: AWS's IPv6 metadata address"],
  ["fe80::1", "link-local fe80::/10"],
  ["febf::1", "link-local fe80::/10, top"],
  ["fe80::1%eth0", "link-local with a zone id"],
  ["2606:4700:4700::1111%eth0", "a public address with a zone id"],
  ["fec0::1", "deprecated site-local"],
  ["ff02::1", "multicast ff00::/8"],
  ["2001:db8::1", "documentation 2001:db8::/32"],
  ["100::1", "discard 100::/64"],
  ["::ffff:127.0.0.1", "IPv4-mapped loopback"],
  ["::ffff:7f00:1", "IPv4-mapped loopback, hex"],
  ["::ffff:10.0.0.1", "IPv4-mapped private"],
  ["::ffff:169.254.169.254", "IPv4-mapped metadata address"],
  ["::ffff:0:127.0.0.1", "IPv4-translated (RFC 6145) loopback"],
  ["::127.0.0.1", "IPv4-compatible loopback"],
  ["::10.0.0.1", "IPv4-compatible private"],
  ["::2", "IPv4-compatible 0.0.0.2"],
  ["64:ff9b::127.0.0.1", "NAT64 of loopback"],
  ["64:ff9b::a9fe:a9fe", "NAT64 of the metadata address"],
  ["64:ff9b:1::8.8.8.8", "local-use NAT64: embedded address not readable reliably"],
  ["2002:7f00:1::1", "6to4 of loopback"],
  ["2002:a00:5::", "6to4 of 10.0.0.5"],
  ["2001:0:4136:e378:8000:63bf:80ff:fffe", "Teredo, client 127.0.0.1"],
  ["2001:0:a00:1:8000:63bf:f7f7:f7f7", "Teredo, server 10.0.0.1"],
  ["", "empty"],
  ["not-an-ip", "a name"],
  ["127.1", "short IPv4 form"],
  ["0x7f.0.0.1", "hex IPv4 form"],
  ["2130706433", "decimal IPv4 form"],
  ["010.0.0.1", "octal-looking IPv4 form"],
  ["[::1]", "bracketed"],
  ["1.2.3.4.5", "five parts"],
  ["256.1.1.1", "octet out of range"],
];

const allowed: [string, string][] = [
  ["8.8.8.8", "Google DNS"],
  ["1.1.1.1", "Cloudflare DNS"],
  ["93.184.215.14", "a public host"],
  ["172.15.255.255", "just below 172.16/12"],
  ["172.32.0.1", "just above 172.16/12"],
  ["100.63.255.255", "just below CGNAT"],
  ["100.128.0.1", "just above CGNAT"],
  ["198.17.255.255", "just below 198.18/15"],
  ["198.20.0.1", "just above 198.18/15"],
  ["2606:4700:4700::1111", "Cloudflare DNS over IPv6"],
  ["2001:4860:4860::8888", "Google DNS over IPv6"],
  ["::ffff:8.8.8.8", "IPv4-mapped public"],
  ["64:ff9b::8.8.8.8", "NAT64 of a public address"],
  ["2002:808:808::1", "6to4 of 8.8.8.8"],
  ["2001:0:4136:e378:8000:63bf:f7f7:f7f7", "Teredo, server 65.54.227.120, client 8.8.8.8"],
];

describe("isForbiddenAddress", () => {
  for (const [address, what] of forbidden) {
    test(`forbids ${JSON.stringify(address)} (${what})`, () => {
      assert.equal(isForbiddenAddress(address), true);
    });
  }
  for (const [address, what] of allowed) {
    test(`allows ${address} (${what})`, () => {
      assert.equal(isForbiddenAddress(address), false);
    });
  }
});

/** A lookup the test expects never to be called: IP literals and refused URLs need no DNS. */
const noLookup: LookupAll = async (hostname) => {
  throw new Error(`unexpected DNS lookup of ${hostname}`);
};

/** A lookup answering from a table, recording the names asked. */
function tableLookup(table: Record<string, string[]>) {
  const asked: string[] = [];
  const lookup: LookupAll = async (hostname) => {
    asked.push(hostname);
    const answers = table[hostname];
    if (answers === undefined)
      throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: "ENOTFOUND" });
    return answers.map((address) => ({ address, family: address.includes(":") ? 6 : 4 }));
  };
  return { lookup, asked };
}

async function refusal(url: string, lookup: LookupAll = noLookup, allowPrivateNetworks = false): Promise<string> {
  try {
    await resolveWebhookTarget(url, { allowPrivateNetworks, lookup });
  } catch (error) {
    assert.ok(error instanceof WebhookUrlError, `expected a WebhookUrlError, got ${String(error)}`);
    assert.equal(error.field, "url");
    return error.message;
  }
  assert.fail(`${url} was accepted`);
}

describe("resolveWebhookTarget: the URL's shape", () => {
  test("only http and https", async () => {
    assert.equal(await refusal("ftp://example.com/hook"), "must be an http or https URL");
    assert.equal(await refusal("javascript:alert(1)"), "must be an http or https URL");
    assert.equal(await refusal("file:///etc/passwd"), "must be an http or https URL");
    assert.equal(await refusal("ws://example.com/"), "must be an http or https URL");
    // The scheme rules hold even where private networks are allowed.
    assert.equal(await refusal("gopher://127.0.0.1/", noLookup, true), "must be an http or https URL");
  });

  test("not a URL at all", async () => {
    assert.equal(await refusal("not a url"), "must be a valid absolute URL");
    assert.equal(await refusal("/relative/path"), "must be a valid absolute URL");
    assert.equal(await refusal("http://"), "must be a valid absolute URL");
  });

  test("no username or password", async () => {
    assert.equal(await refusal("https://user:secret@example.com/"), "must not contain a username or password");
    assert.equal(await refusal("https://user@example.com/"), "must not contain a username or password");
    assert.equal(await refusal("https://:secret@example.com/"), "must not contain a username or password");
  });

  test("at most 2048 characters", async () => {
    const { lookup } = tableLookup({ "example.com": ["93.184.215.14"] });
    const base = "https://example.com/";
    assert.equal(await refusal(base + "a".repeat(2049 - base.length), lookup), "must be at most 2048 characters");
    const longest = await resolveWebhookTarget(base + "a".repeat(2048 - base.length), {
      allowPrivateNetworks: false,
      lookup,
    });
    assert.equal(longest.url.href.length, 2048);
  });
});

describe("resolveWebhookTarget: IP literals, checked without DNS", () => {
  test("every IPv4 spelling WHATWG normalises to 127.0.0.1 is refused", async () => {
    for (const url of [
      "http://127.0.0.1/",
      "http://2130706433/",
      "http://0x7f.1/",
      "http://0177.0.0.1/",
      "http://127.1/",
    ]) {
      assert.equal(await refusal(url), "is a private or reserved address (127.0.0.1)", url);
    }
  });

  test("private, metadata and IPv6 literals are refused", async () => {
    assert.equal(
      await refusal("http://169.254.169.254/latest/meta-data/"),
      "is a private or reserved address (169.254.169.254)",
    );
    assert.equal(await refusal("http://10.0.0.5:8080/hook"), "is a private or reserved address (10.0.0.5)");
    assert.equal(await refusal("http://[::1]/"), "is a private or reserved address (::1)");
    // WHATWG writes the mapped address in hex; the embedded IPv4 address is what is judged.
    assert.equal(await refusal("http://[::ffff:127.0.0.1]/"), "is a private or reserved address (::ffff:7f00:1)");
    assert.equal(await refusal("http://[fd00:ec2::254]/"), "is a private or reserved address (fd00:ec2::254)");
    assert.equal(await refusal("http://[fe80::1]/"), "is a private or reserved address (fe80::1)");
  });

  test("a zone id in an IPv6 literal is not a valid URL", async () => {
    assert.equal(await refusal("http://[fe80::1%25eth0]/"), "must be a valid absolute URL");
  });

  test("public literals are accepted as they are", async () => {
    const v4 = await resolveWebhookTarget("https://8.8.8.8/hook", { allowPrivateNetworks: false, lookup: noLookup });
    assert.deepEqual(v4.addresses, [{ address: "8.8.8.8", family: 4 }]);
    assert.equal(v4.url.href, "https://8.8.8.8/hook");
    const v6 = await resolveWebhookTarget("https://[2606:4700:4700::1111]:8443/x", {
      allowPrivateNetworks: false,
      lookup: noLookup,
    });
    assert.deepEqual(v6.addresses, [{ address: "2606:4700:4700::1111", family: 6 }]);
    const mapped = await resolveWebhookTarget("http://[::ffff:8.8.8.8]/", {
      allowPrivateNetworks: false,
      lookup: noLookup,
    });
    assert.deepEqual(mapped.addresses, [{ address: "::ffff:808:808", family: 6 }]);
  });

  test("with allowPrivateNetworks, private literals pass", async () => {
    const local = await resolveWebhookTarget("http://127.0.0.1:8080/hook", {
      allowPrivateNetworks: true,
      lookup: noLookup,
    });
    assert.deepEqual(local.addresses, [{ address: "127.0.0.1", family: 4 }]);
    const v6 = await resolveWebhookTarget("http://[::1]:8080/", { allowPrivateNetworks: true, lookup: noLookup });
    assert.deepEqual(v6.addresses, [{ address: "::1", family: 6 }]);
  });
});

describe("resolveWebhookTarget: names", () => {
  test("a name resolving to only public addresses is accepted, with every address returned", async () => {
    const { lookup, asked } = tableLookup({
      "hooks.example.com": ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"],
    });
    const target = await resolveWebhookTarget("https://hooks.example.com/in", { allowPrivateNetworks: false, lookup });
    assert.deepEqual(asked, ["hooks.example.com"], "resolved exactly once");
    assert.deepEqual(target.addresses, [
      { address: "93.184.215.14", family: 4 },
      { address: "2606:2800:21f:cb07:6820:80da:af6b:8b2c", family: 6 },
    ]);
    assert.equal(target.url.hostname, "hooks.example.com");
  });

  test("one forbidden address among public ones refuses the URL, naming it", async () => {
    const { lookup } = tableLookup({ "mixed.example.com": ["93.184.215.14", "10.0.0.5"] });
    assert.equal(
      await refusal("https://mixed.example.com/", lookup),
      "resolves to a private or reserved address (10.0.0.5)",
    );
    const { lookup: v6 } = tableLookup({ "mixed6.example.com": ["2606:4700:4700::1111", "::ffff:192.168.0.1"] });
    assert.equal(
      await refusal("https://mixed6.example.com/", v6),
      "resolves to a private or reserved address (::ffff:192.168.0.1)",
    );
  });

  test("localhost and the metadata service by name are refused", async () => {
    const { lookup } = tableLookup({
      localhost: ["127.0.0.1", "::1"],
      "metadata.google.internal": ["169.254.169.254"],
    });
    assert.equal(
      await refusal("http://localhost:3000/", lookup),
      "resolves to a private or reserved address (127.0.0.1)",
    );
    assert.equal(
      await refusal("http://metadata.google.internal/computeMetadata/v1/", lookup),
      "resolves to a private or reserved address (169.254.169.254)",
    );
  });

  test("a name that does not resolve, or resolves to nothing, is refused", async () => {
    const { lookup } = tableLookup({ "empty.example.com": [] });
    assert.equal(await refusal("https://nowhere.example.com/", lookup), "could not be resolved");
    assert.equal(await refusal("https://empty.example.com/", lookup), "could not be resolved");
  });

  test("an answer that is not a plain address is refused", async () => {
    const lookup: LookupAll = async () => [{ address: "2130706433", family: 4 }];
    assert.equal(await refusal("https://odd.example.com/", lookup), "resolves to an unusable address (2130706433)");
  });

  test("with allowPrivateNetworks, private answers are resolved and returned", async () => {
    const { lookup } = tableLookup({ "internal.example.test": ["10.0.0.5", "10.0.0.5", "fd00::1"] });
    const target = await resolveWebhookTarget("http://internal.example.test/", { allowPrivateNetworks: true, lookup });
    assert.deepEqual(target.addresses, [
      { address: "10.0.0.5", family: 4 },
      { address: "fd00::1", family: 6 },
    ]);
  });
});

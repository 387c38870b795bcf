import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { ConfigError, loadConfig } from "../../src/config.ts";

const dir = mkdtempSync(join(tmpdir(), "arh-providers-file-"));
let counter = 0;
function file(name: string, text: string): string {
  const path = join(dir, `${++counter}-${name}`);
  writeFileSync(path, text);
  return path;
}

describe("PROVIDERS_FILE", () => {
  test("YAML: each provider with its base URL, key (from the variable it names), header, models and headers", () => {
    const path = file(
      "providers.yaml",
      [
        "providers:",
        "  vllm:",
        "    base_url: http://10.0.0.5:8000/v1",
        "    models: [meta-llama/Llama-3.3-70B-Instruct]",
        "  azure:",
        "    base_url: https://my-resource.openai.azure.com/openai/v1",
        "    api_key_env: AZURE_OPENAI_API_KEY",
        "    api_key_header: api-key",
        "    headers: { x-ms-client: gateway }",
        "    timeout_ms: 30000",
        "    max_retries: 1",
      ].join("\n"),
    );
    const config = loadConfig({ PROVIDERS_FILE: path, AZURE_OPENAI_API_KEY: "azure-secret" });
    assert.deepEqual(config.providers, [
      {
        name: "vllm",
        baseUrl: "http://10.0.0.5:8000/v1",
        apiKey: undefined,
        apiKeyHeader: "authorization",
        models: ["meta-llama/Llama-3.3-70B-Instruct"],
        headers: {},
        timeoutMs: undefined,
        maxRetries: undefined,
      },
      {
        name: "azure",
        baseUrl: "https://my-resource.openai.azure.com/openai/v1",
        apiKey: "azure-secret",
        apiKeyHeader: "api-key",
        models: undefined,
        headers: { "x-ms-client": "gateway" },
        timeoutMs: 30000,
        maxRetries: 1,
      },
    ]);
  });

  test("JSON works the same; unset, there are none", () => {
    const path = file(
      "providers.json",
      JSON.stringify({ providers: { ollama: { base_url: "http://127.0.0.1:11434/v1" } } }),
    );
    assert.deepEqual(
      loadConfig({ PROVIDERS_FILE: path }).providers.map((provider) => provider.name),
      ["ollama"],
    );
    assert.deepEqual(loadConfig({}).providers, []);
  });

  const refusals: Array<[what: string, text: string, env: Record<string, string>, expected: RegExp]> = [
    ["not JSON", "{providers:", {}, /PROVIDERS_FILE=.*not valid JSON/],
    ["a base URL that is not http(s)", '{"providers":{"x":{"base_url":"ftp://h"}}}', {}, /providers\.x\.base_url/],
    ["an unknown field", '{"providers":{"x":{"base_url":"http://h","api_key":"sk-1"}}}', {}, /providers\.x.*api_key/],
    ["a built-in name", '{"providers":{"openai":{"base_url":"http://h"}}}', {}, /providers\.openai.*built-in/],
    [
      "a key variable that is not set",
      '{"providers":{"x":{"base_url":"http://h","api_key_env":"X_KEY"}}}',
      {},
      /X_KEY is not set/,
    ],
    ["an empty models list", '{"providers":{"x":{"base_url":"http://h","models":[]}}}', {}, /providers\.x\.models/],
  ];
  for (const [what, text, env, expected] of refusals) {
    test(`refused with one line naming the variable and the field: ${what}`, () => {
      const path = file("bad.json", text);
      assert.throws(
        () => loadConfig({ PROVIDERS_FILE: path, ...env }),
        (error: unknown) =>
          error instanceof ConfigError &&
          /^invalid configuration: PROVIDERS_FILE=/.test(error.message) &&
          expected.test(error.message),
      );
    });
  }

  test("a file that cannot be read names the variable", () => {
    assert.throws(
      () => loadConfig({ PROVIDERS_FILE: join(dir, "missing.yaml") }),
      (error: unknown) => error instanceof ConfigError && /PROVIDERS_FILE=.*cannot read it: ENOENT/.test(error.message),
    );
  });
});

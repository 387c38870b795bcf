/**
 * PROVIDERS_FILE: further OpenAI-compatible providers (Azure OpenAI, vLLM, Ollama, Gemini's OpenAI endpoint, …), in
 * JSON or YAML:
 *
 *   providers:
 *     vllm:
 *       base_url: http://10.0.0.5:8000/v1
 *       api_key_env: VLLM_API_KEY        # the variable holding its key; omitted: no key is sent
 *       models: [meta-llama/Llama-3.3-70B-Instruct]
 *     azure:
 *       base_url: https://my-resource.openai.azure.com/openai/v1
 *       api_key_env: AZURE_OPENAI_API_KEY
 *       api_key_header: api-key          # Azure wants the key in this header, not as a bearer token
 *       headers: { x-ms-client: gateway }
 *
 * Keys never appear in the file: each names the environment variable that holds it, read when the file is loaded.
 */
import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { z } from "zod";

export interface FileProvider {
  name: string;
  baseUrl: string;
  /** Undefined: the provider takes no key (a local vLLM or Ollama). */
  apiKey: string | undefined;
  /** `authorization` sends `Bearer <key>`; any other header gets the key as it is. */
  apiKeyHeader: string;
  models: string[] | undefined;
  headers: Record<string, string>;
  timeoutMs: number | undefined;
  maxRetries: number | undefined;
}

/** Names the service gives its own providers: a file cannot take them. */
export const builtInProviderNames = ["openai", "anthropic", "mock"] as const;

const httpUrl = z.string().refine(
  (value) => {
    try {
      const { protocol } = new URL(value);
      return protocol === "http:" || protocol === "https:";
    } catch {
      return false;
    }
  },
  { message: "must be an http:// or https:// URL" },
);

const headerName = z.string().regex(/^[A-Za-z0-9-]+$/, "must be an HTTP header name");

const providerSchema = z.strictObject({
  base_url: httpUrl,
  api_key_env: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "must be the name of an environment variable")
    .optional(),
  api_key_header: headerName.optional(),
  models: z.array(z.string().min(1)).min(1).optional(),
  headers: z.record(headerName, z.string()).optional(),
  timeout_ms: z.number().int().min(1).optional(),
  max_retries: z.number().int().min(0).max(10).optional(),
});

const fileSchema = z.strictObject({ providers: z.record(z.string(), providerSchema) });

/** Why a provider may not take this name, if it may not. */
function nameProblem(name: string): string | undefined {
  if ((builtInProviderNames as readonly string[]).includes(name)) {
    return `is a built-in provider's name (${builtInProviderNames.join(", ")})`;
  }
  if (!/^[a-z0-9][a-z0-9_-]*$/.test(name)) return "provider names are lower-case letters, digits, - and _";
  return undefined;
}

/** Reads and checks the file; throws an Error whose message names the file's field at fault. */
export function loadProvidersFile(path: string, env: Record<string, string | undefined>): FileProvider[] {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new Error(`cannot read it: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
  let raw: unknown;
  try {
    raw = /\.ya?ml$/i.test(path) ? parseYaml(text) : JSON.parse(text);
  } catch (error) {
    throw new Error(
      `not valid ${/\.ya?ml$/i.test(path) ? "YAML" : "JSON"}: ${(error as Error).message.split("\n")[0]}`,
    );
  }
  const parsed = fileSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.map(String).join(".") || "the file";
    throw new Error(`${where}: ${issue?.message ?? "invalid"}`);
  }
  return Object.entries(parsed.data.providers).map(([name, entry]) => {
    const problem = nameProblem(name);
    if (problem) throw new Error(`providers.${name}: ${problem}`);
    const apiKey = entry.api_key_env === undefined ? undefined : env[entry.api_key_env];
    if (entry.api_key_env !== undefined && !apiKey) {
      throw new Error(`providers.${name}.api_key_env: the variable ${entry.api_key_env} is not set`);
    }
    return {
      name,
      baseUrl: entry.base_url,
      apiKey,
      apiKeyHeader: (entry.api_key_header ?? "authorization").toLowerCase(),
      models: entry.models,
      headers: entry.headers ?? {},
      timeoutMs: entry.timeout_ms,
      maxRetries: entry.max_retries,
    };
  });
}

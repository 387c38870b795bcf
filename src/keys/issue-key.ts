import type { ApiKeyRepository } from "../db/api-keys.ts";
import type { ApiKeyRecord } from "../db/types.ts";
import { newId } from "../ids.ts";
import { displayPrefix, generateApiKey, hashApiKey } from "./api-key.ts";

export interface IssuedKey {
  record: ApiKeyRecord;
  /** The full key: returned once, never stored. */
  key: string;
}

/** Creates a key for a user that exists; the database keeps only its hash and display prefix. */
export async function issueApiKey(
  apiKeys: ApiKeyRepository,
  input: { userId: string; name?: string | null; expiresAt?: Date | null; rpm?: number | null; tpm?: number | null },
): Promise<IssuedKey> {
  const key = generateApiKey();
  const record = await apiKeys.create({
    id: newId("key"),
    userId: input.userId,
    name: input.name ?? null,
    prefix: displayPrefix(key),
    hash: hashApiKey(key),
    expiresAt: input.expiresAt ?? null,
    rpm: input.rpm ?? null,
    tpm: input.tpm ?? null,
  });
  return { record, key };
}

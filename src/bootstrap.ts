import type { ApiKeyRepository } from "./db/api-keys.ts";
import type { UserRepository } from "./db/users.ts";
import { issueApiKey } from "./keys/issue-key.ts";

export interface FirstAdmin {
  userId: string;
  email: string;
  key: string;
}

/**
 * On first start with an empty database and no ADMIN_API_KEY, the operator still needs a way in: create an admin
 * user and key. The key is returned once for printing and never stored.
 */
export async function createFirstAdmin(
  users: UserRepository,
  apiKeys: ApiKeyRepository,
): Promise<FirstAdmin | undefined> {
  if ((await users.count()) > 0) return undefined;
  const created = await users.create({ email: "admin@localhost", name: "Administrator", role: "admin" });
  if (!created.ok) return undefined; // another instance won the race and printed its key
  const issued = await issueApiKey(apiKeys, { userId: created.user.id, name: "first admin key" });
  return { userId: created.user.id, email: created.user.email, key: issued.key };
}

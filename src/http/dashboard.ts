import { existsSync, readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import fastifyStatic from "@fastify/static";
import type { FastifyInstance } from "fastify";
import { AppError } from "../errors.ts";

/**
 * The web dashboard at `/`: the files `npm run build` bundles into dist/dashboard (dashboard/ is its source), served
 * as they are, nothing fetched from elsewhere at run time. `/assets/…` (content-hashed names) is served from disk as
 * it is now, so a rebuild's new names are found without a restart, and cached for good; index.html and the other
 * top-level files get a route each (found at start, so an unknown path stays the API's 404) and are asked again
 * every time. The page calls the JSON API with its session cookie (session.ts).
 */
export const dashboardDir = fileURLToPath(new URL("../../dist/dashboard/", import.meta.url));

export async function registerDashboard(app: FastifyInstance, dir = dashboardDir): Promise<void> {
  if (!existsSync(`${dir}index.html`) || !existsSync(`${dir}assets`)) {
    app.get("/", { config: { access: "public" }, schema: { hide: true } }, async () => {
      throw new AppError("service_unavailable", "the dashboard is not built: run `npm run build`");
    });
    return;
  }
  const topLevelFiles = readdirSync(dir, { withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => entry.name);
  // In a context of its own: the plugin's decorations stay off the API's routes.
  await app.register(async (dashboard) => {
    await dashboard.register(fastifyStatic, {
      root: `${dir}assets`,
      prefix: "/assets/",
      schemaHide: true,
      cacheControl: false,
      // sendFile below passes through here too: only the hashed assets are kept for good.
      setHeaders: (reply, path) =>
        reply.header(
          "cache-control",
          path.startsWith(`${dir}assets`) ? "public, max-age=31536000, immutable" : "no-cache",
        ),
    });
    const publicFile = { config: { access: "public" as const }, schema: { hide: true } };
    dashboard.get("/", publicFile, (_request, reply) =>
      reply.header("cache-control", "no-cache").sendFile("index.html", dir),
    );
    for (const name of topLevelFiles) {
      dashboard.get(`/${name}`, publicFile, (_request, reply) =>
        reply.header("cache-control", "no-cache").sendFile(name, dir),
      );
    }
  });
}

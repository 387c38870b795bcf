import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import fastifyStatic from "@fastify/static";
import type { FastifyInstance } from "fastify";
import { AppError } from "../errors.ts";

/**
 * The web dashboard at `/`: the files `npm run build` bundles into dist/dashboard (dashboard/ is its source), served
 * as they are, nothing fetched from elsewhere at run time. Only the files found at start get routes (no wildcard),
 * so an unknown path stays the API's 404. Hashed assets are cached for good; index.html is asked again each time,
 * so a new build is picked up at once. The page calls the JSON API with its session cookie (session.ts).
 */
export const dashboardDir = fileURLToPath(new URL("../../dist/dashboard/", import.meta.url));

export async function registerDashboard(app: FastifyInstance, dir = dashboardDir): Promise<void> {
  if (!existsSync(`${dir}index.html`)) {
    app.get("/", { config: { access: "public" }, schema: { hide: true } }, async () => {
      throw new AppError("service_unavailable", "the dashboard is not built: run `npm run build`");
    });
    return;
  }
  // In a context of its own: the plugin's decorations stay off the API's routes.
  await app.register(async (dashboard) => {
    await dashboard.register(fastifyStatic, {
      root: dir,
      prefix: "/",
      wildcard: false,
      index: "index.html",
      schemaHide: true,
      cacheControl: false,
      setHeaders: (reply, path) => {
        reply.header("cache-control", path.includes("/assets/") ? "public, max-age=31536000, immutable" : "no-cache");
      },
    });
  });
}

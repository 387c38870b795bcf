// The dashboard's build: a static bundle in dist/dashboard that the service serves at "/". Everything it needs is
// bundled (no CDN, no web fonts), so it works offline and under a strict Content-Security-Policy.
import { fileURLToPath } from "node:url";
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

/** The service `npm start` runs; `npx vite --config dashboard/vite.config.ts` serves the dashboard against it. */
const service = process.env.DASHBOARD_API ?? "http://127.0.0.1:8080";
// The service refuses cookie-authenticated writes from another origin: in development, present its own.
const toService = { target: service, changeOrigin: true, headers: { origin: service } };

export default defineConfig({
  // The config is loaded from the repository root by scripts/build.mjs: resolve everything from this folder.
  root: fileURLToPath(new URL(".", import.meta.url)),
  base: "/",
  plugins: [react()],
  build: {
    outDir: "../dist/dashboard",
    emptyOutDir: true,
    // Browsers that run the dashboard support modulepreload; the polyfill would only add code.
    modulePreload: { polyfill: false },
    chunkSizeWarningLimit: 1500,
  },
  server: {
    proxy: {
      "/auth": toService,
      "/me": toService,
      "/admin": toService,
      "/requests": toService,
      "/v1": toService,
    },
  },
});

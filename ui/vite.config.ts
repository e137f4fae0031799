// The cockpit's build: SolidJS compiled by Vite into ui/dist (gitignored), which the edge serves at `/` under a
// Content-Security-Policy that allows no inline script or style (edge/Cockpit.ts, ADR 0040).
import { defineConfig } from "vite"
import solid from "vite-plugin-solid"

export default defineConfig({
  root: import.meta.dirname,
  plugins: [solid()],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    // the preload polyfill and inlined assets would be inline code or data the policy refuses
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    sourcemap: true
  },
  server: {
    // `vite` in ui/ with hot reload, the API proxied to a running `lantern dev`
    proxy: {
      "/v1": { target: process.env.LANTERN_URL ?? "http://127.0.0.1:8080", changeOrigin: false },
      "/.well-known": { target: process.env.LANTERN_URL ?? "http://127.0.0.1:8080" },
      "/cockpit": { target: process.env.LANTERN_URL ?? "http://127.0.0.1:8080" }
    }
  }
})

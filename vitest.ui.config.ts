// The cockpit's component tests (ui/src/**/*.test.tsx): Solid's compiler from the cockpit's build, a DOM from
// happy-dom, and no server. vitest.config.ts runs every other test; `npm test` runs both.
import solid from "vite-plugin-solid"
import { defineConfig } from "vitest/config"

export default defineConfig({
  root: `${import.meta.dirname}/ui`,
  plugins: [solid()],
  resolve: { conditions: ["development", "browser"] },
  test: {
    include: ["src/**/*.test.tsx"],
    environment: "happy-dom",
    pool: "forks",
    maxWorkers: 1
  }
})

import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["**/*.test.ts"],
    exclude: ["node_modules/**", ".lantern/**", ".lantern-build/**"],
    // the stacks the tests spawn run the bundle of edge/main.ts: built once here, not by every worker
    globalSetup: ["tests/support/globalSetup.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    // the flag bin/lantern starts Lantern with (ADR 0090): PGlite's WebAssembly runs as it does in serve
    execArgv: ["--liftoff-only"],
    fileParallelism: true,
    maxWorkers: 2
  }
})

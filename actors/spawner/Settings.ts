// The spawner's settings (ADR 0046): the backends to try, where workloads live on this host, the tenant quotas, the
// private addresses egress may reach and the harness pool, read from the environment once at start.
import { join } from "node:path"
import { Config, Duration } from "effect"

export interface Settings {
  readonly backends: ReadonlyArray<string>
  readonly workDir: string
  readonly maxConcurrent: number
  readonly spawnsPerMinute: number
  readonly allowPrivate: ReadonlyArray<string>
  readonly harnessGiveUp: Duration.Duration
  readonly harnessPool: number
}

export const settingsConfig = Config.all({
  backends: Config.String("LANTERN_SPAWNER_BACKENDS").pipe(
    Config.withDefault("process,bwrap,gvisor"),
    Config.map((s) => s.split(",").map((x) => x.trim()).filter((x) => x !== ""))
  ),
  workDir: Config.String("LANTERN_WORKLOAD_DIR").pipe(
    Config.withDefault(join(process.env["TMPDIR"] ?? "/tmp", "lantern-workloads"))
  ),
  maxConcurrent: Config.Int("LANTERN_WORKLOADS_MAX_CONCURRENT").pipe(Config.withDefault(16)),
  spawnsPerMinute: Config.Int("LANTERN_WORKLOADS_SPAWNS_PER_MINUTE").pipe(Config.withDefault(60)),
  allowPrivate: Config.String("LANTERN_EGRESS_ALLOW_PRIVATE").pipe(
    Config.withDefault(""),
    Config.map((s) => s.split(",").map((x) => x.trim()).filter((x) => x !== ""))
  ),
  /** How long a harness whose workload ended keeps trying to report it while no spawner answers. */
  harnessGiveUp: Config.Duration("LANTERN_HARNESS_GIVE_UP").pipe(Config.withDefault(Duration.minutes(10))),
  /** Harness processes kept started ahead of need on each host (0: start one per workload). */
  harnessPool: Config.Int("LANTERN_HARNESS_POOL").pipe(Config.withDefault(2))
})

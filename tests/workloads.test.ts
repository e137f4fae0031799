// Workloads end to end (ADR 0046): a workload started over the API in real gVisor prints, reads a vended secret,
// reaches the one host its spec allows through the harness's egress gate, is refused a host not listed and a
// private address, and exits 0, each step journaled; a tier no backend provides is a 412 with nothing started; bad
// specs are 400s naming the field; secret vending refuses a wrong token, another workload's, an undeclared name and
// any request after the workload ended, auditing each; a supervising host killed mid-workload is survived.
import { execFileSync } from "node:child_process"
import { createHash } from "node:crypto"
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { createServer, type Server } from "node:http"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { connect, type NatsConnection } from "@nats-io/transport-node"
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from "vitest"
import { freePort } from "../bus/NatsServer.ts"
import { startServer, type TestServer } from "./support/Bus.ts"
import * as RawHttp from "./support/RawHttp.ts"
import { api, eventually, spawnLantern, startStack, type StackProcess } from "./support/Stack.ts"

const SECRET = "wl-secret-8c1f0e9d2b7a4635"
/** Every host of a deployment shares its KEK: any host may vend a secret or open a workload's identity. */
const KEK = Buffer.alloc(32, 7).toString("base64")
const hasRunsc = (() => {
  try {
    execFileSync("runsc", ["--version"], { stdio: "ignore" })
    return true
  } catch {
    return false
  }
})()

let nats: TestServer
let server: Server
let port: number
let hits = 0
let dir: string
const stacks: Array<StackProcess> = []

beforeAll(async () => {
  nats = await startServer("lantern-workloads")
  dir = mkdtempSync(join(tmpdir(), "lantern-wl-test-"))
  server = createServer((req, res) => {
    if (req.url === "/hello") hits++
    res.writeHead(200, { "content-type": "text/plain" }).end("hi from the allowed host")
  })
  port = await freePort()
  await new Promise<void>((r) => server.listen(port, "127.0.0.1", () => r()))
}, 60_000)

afterAll(async () => {
  for (const s of stacks) await s.kill()
  await new Promise<void>((r) => server.close(() => r()))
  await nats?.cleanup()
  rmSync(dir, { recursive: true, force: true })
})

const host = async (home = mkdtempSync(join(dir, "home-")), env: Record<string, string> = {}) => {
  const stack = await startStack({
    natsUrl: nats.handle.url,
    home,
    env: {
      LANTERN_EGRESS_ALLOW_PRIVATE: "127.0.0.1",
      LANTERN_KEK: KEK,
      LANTERN_WORKLOAD_DIR: join(dir, "wl"),
      LANTERN_HOST_PROBE_INTERVAL: "100 millis",
      LANTERN_HARNESS_GIVE_UP: "20 seconds",
      ...env
    }
  })
  stacks.push(stack)
  onTestFailed(() => console.error(`--- host ${stack.child.pid} ---\n${stack.output()}`))
  return stack
}

type Call = ReturnType<typeof api>

const spec = (over: Record<string, unknown>) => ({
  apiVersion: "lantern.dev/v1",
  kind: "AgentSpec",
  metadata: { name: "probe" },
  spec: {
    command: [process.execPath, "-e", "console.log('hi')"],
    isolation: "trusted",
    limits: { vcpu: 1, memoryMb: 512, timeoutSeconds: 60 },
    network: "none",
    ...over
  }
})

const ended = (call: Call, id: string, deadline = 90_000) =>
  eventually(
    async () => {
      const r = await call("GET", `/v1/workloads/${id}`)
      return r.json?.state !== undefined && !["scheduled", "placed", "running"].includes(r.json.state) ? r.json : null
    },
    deadline,
    `workload ${id} to end`
  )

const events = async (call: Call, id: string): Promise<Array<any>> =>
  (await call("GET", `/v1/workloads/${id}/events`)).json.items

/** A script for `node -e`: prints, checks its secret by hash, and asks the proxy for three hosts. */
const probeScript = (secretHash: string) => `
const http = require("node:http"), crypto = require("node:crypto");
const proxy = new URL(process.env.HTTP_PROXY);
console.log("hello from the sandbox");
console.log("secret " + (crypto.createHash("sha256").update(process.env.API_TOKEN || "").digest("hex") === "${secretHash}" ? "matches" : "differs"));
const get = (target) => new Promise((done) => {
  const r = http.request({ host: proxy.hostname, port: proxy.port, path: target }, (m) => {
    let b = ""; m.on("data", (d) => b += d); m.on("end", () => done(m.statusCode + " " + b.trim()));
  });
  r.on("error", (e) => done("error " + e.message)); r.end();
});
const direct = () => new Promise((done) => {
  const s = require("node:net").connect(${port}, "127.0.0.1");
  s.on("connect", () => { s.destroy(); done("connected"); }); s.on("error", (e) => done("refused " + e.code));
});
(async () => {
  console.log("allowed: " + await get("http://127.0.0.1:${port}/hello"));
  console.log("other: " + await get("http://api.other.test/"));
  console.log("private: " + await get("http://10.0.0.1:${port}/"));
  console.log("direct: " + await direct());
})();
`

describe("a workload", () => {
  it.skipIf(!hasRunsc)(
    "runs in real gVisor: prints, reads a vended secret, reaches only its allowed host, exits 0, every step journaled",
    async () => {
      const stack = await host()
      const call = api(stack)
      expect((await call("POST", "/v1/secrets", { name: "api-token", value: SECRET })).status).toBe(201)
      const r = await call("POST", "/v1/workloads", {
        ...spec({
          command: [process.execPath, "-e", probeScript(createHash("sha256").update(SECRET).digest("hex"))],
          isolation: "untrusted",
          network: "allowlist",
          egressRules: [{ host: "127.0.0.1", ports: [port] }, { host: "10.0.0.1", ports: [port] }],
          secrets: [{ envName: "API_TOKEN", secretRef: "lantern.secret://api-token" }]
        }),
        metadata: { name: "gvisor-probe" }
      })
      expect(r.status, r.text).toBe(201)
      expect(r.json.backend).toBe("gvisor")
      const id = r.json.id as string
      const done = await ended(call, id)
      expect(done.state, JSON.stringify(done)).toBe("exited")
      expect(done.exitCode).toBe(0)
      expect(done.secretsVended).toEqual(["API_TOKEN"])
      const journal = await events(call, id)
      const types = journal.map((e) => e.type)
      for (
        const t of [
          "WorkloadScheduled",
          "WorkloadPlaced",
          "WorkloadIdentityMinted",
          "WorkloadSpawned",
          "WorkloadSecretVended",
          "WorkloadExited"
        ]
      ) {
        expect(types, t).toContain(t)
      }
      expect(types.indexOf("WorkloadScheduled")).toBe(0)
      expect(types[types.length - 1]).toBe("WorkloadExited")
      const out = journal.filter((e) => e.type === "WorkloadOutput" && e.payload.stream === "stdout").map((e) =>
        e.payload.text
      ).join("")
      expect(out).toContain("hello from the sandbox")
      expect(out).toContain("secret matches")
      expect(out).toContain("allowed: 200 hi from the allowed host")
      expect(out).toMatch(/other: 403 egress refused: not on the spec's egress rules/)
      expect(out).toMatch(/private: 403 egress refused: 10\.0\.0\.1 is a private address/)
      // gVisor has no network but loopback: the host's port is not reachable except through the gate
      expect(out).toMatch(/direct: refused/)
      expect(hits).toBe(1)
      const egress = journal.filter((e) => e.type === "WorkloadEgress").map((e) => [e.payload.host, e.payload.allowed])
      expect(egress).toEqual([["127.0.0.1", true], ["api.other.test", false], ["10.0.0.1", false]])
      // the secret's value is nowhere in the journal
      expect(JSON.stringify(journal)).not.toContain(SECRET)
      // the logs stream replays the output and ends with the workload
      const logs = await fetch(`${stack.url}/v1/workloads/${id}/logs`, {
        headers: { authorization: `Bearer ${stack.token}` }
      })
      const text = await logs.text()
      expect(text).toContain("hello from the sandbox")
      expect(text).toContain("event: end")
      // its `end` frame leaves with the end of the response: the connection answers the next request (ADR 0087)
      const raw = await RawHttp.open(stack.url)
      try {
        raw.send(`GET /v1/workloads/${id}/logs HTTP/1.1`, { authorization: `Bearer ${stack.token}` })
        const { read, next } = await RawHttp.lastAndNext(raw, /event: end\n/)
        expect(read).toMatch(RawHttp.ENDS_RESPONSE)
        expect(next).toContain("ok")
      } finally {
        raw.socket.destroy()
      }
    },
    180_000
  )

  it("asks for a tier no backend provides: 412 isolation_unavailable, nothing started", async () => {
    const stack = await host()
    const call = api(stack)
    const before = (await call("GET", "/v1/workloads")).json.items.length
    const r = await call("POST", "/v1/workloads", spec({ isolation: "hostile" }))
    expect(r.status, r.text).toBe(412)
    expect(r.json.error.code).toBe("isolation_unavailable")
    expect(r.json.error.tier).toBe("hostile")
    expect((await call("GET", "/v1/workloads")).json.items.length).toBe(before)
    // a process-only deployment refuses `standard` too: never a silent downgrade
    const only = await host(undefined, { LANTERN_SPAWNER_BACKENDS: "process" })
    const r2 = await api(only)("POST", "/v1/workloads", spec({ isolation: "standard" }))
    expect(r2.status, r2.text).toBe(412)
    expect(r2.json.error.tier).toBe("standard")
  }, 180_000)

  it("refuses bad specs with a 400 naming the field", async () => {
    const stack = await host()
    const call = api(stack)
    const before = (await call("GET", "/v1/workloads")).json.items.length
    const unknown = await call("POST", "/v1/workloads", { ...spec({}), extra: 1 })
    expect(unknown.status).toBe(400)
    expect(unknown.text).toContain("extra")
    const nested = await call(
      "POST",
      "/v1/workloads",
      spec({ limits: { vcpu: 1, memoryMb: 512, timeoutSeconds: 60, gpu: 1 } })
    )
    expect(nested.status).toBe(400)
    expect(nested.text).toContain("gpu")
    const rules = await call("POST", "/v1/workloads", spec({ egressRules: [{ host: "example.com" }] }))
    expect(rules.status).toBe(400)
    expect(rules.text).toContain("spec.egressRules")
    const kind = await call("POST", "/v1/workloads", { ...spec({}), kind: "Pod" })
    expect(kind.status).toBe(400)
    expect(kind.text).toContain("kind")
    expect((await call("GET", "/v1/workloads")).json.items.length).toBe(before)
  }, 180_000)
})

const hasQemu = (() => {
  try {
    execFileSync("sh", ["-c", "command -v qemu-system-x86_64 && command -v busybox && command -v apt-get"], {
      stdio: "ignore"
    })
    return true
  } catch {
    return false
  }
})()

describe.runIf(hasQemu)("a hostile workload", () => {
  it(
    "is placed on a real microVM when one is configured, given its vended secret, its output journaled and its exit code kept",
    async () => {
      // the guest image is built once into .lantern-bin/microvm/, where the backend looks by default
      execFileSync(process.execPath, [join(import.meta.dirname, "../scripts/microvm-image.mjs")], { stdio: "ignore" })
      const stack = await host(undefined, { LANTERN_SPAWNER_BACKENDS: "process,bwrap,gvisor,microvm" })
      const call = api(stack)
      expect((await call("POST", "/v1/secrets", { name: "vm-token", value: SECRET })).status).toBe(201)
      const r = await call("POST", "/v1/workloads", {
        ...spec({
          command: ["sh", "-c", "echo in the vm: $LANTERN_INPUT; echo \"secret length ${#VM_TOKEN}\"; exit 7"],
          isolation: "hostile",
          secrets: [{ envName: "VM_TOKEN", secretRef: "lantern.secret://vm-token" }]
        }),
        metadata: { name: "hostile-vm" },
        input: "hello"
      })
      expect(r.status, r.text).toBe(201)
      expect(r.json.backend).toBe("microvm")
      const done = await ended(call, r.json.id, 120_000)
      expect(done.state).toBe("exited")
      expect(done.exitCode).toBe(7)
      const out = (await events(call, r.json.id)).filter((e) => e.type === "WorkloadOutput").map((e) => e.payload.text)
        .join("")
      expect(out).toContain("in the vm: hello")
      // the value reached the guest (its length printed, never the value: output is journaled)
      expect(out).toContain(`secret length ${SECRET.length}`)
      expect(done.secretsVended).toEqual(["VM_TOKEN"])
    },
    240_000
  )
})

describe("secret vending", () => {
  it("refuses a wrong token, another workload's, an undeclared name and a workload that ended; audited", async () => {
    const stack = await host()
    const call = api(stack)
    expect((await call("POST", "/v1/secrets", { name: "vend-me", value: SECRET })).status).toBe(201)
    const tokenFile = (name: string) => join(dir, `${name}.token`)
    const long = (name: string) =>
      call("POST", "/v1/workloads", {
        ...spec({
          command: [
            process.execPath,
            "-e",
            `require("node:fs").writeFileSync(${
              JSON.stringify(tokenFile(name))
            }, process.env.LANTERN_IDENTITY_TOKEN); setInterval(() => {}, 1000)`
          ],
          secrets: [{ envName: "VEND_ME", secretRef: "lantern.secret://vend-me" }]
        }),
        metadata: { name }
      })
    const a = await long("wl-a")
    const b = await long("wl-b")
    expect(a.status, a.text).toBe(201)
    expect(b.status, b.text).toBe(201)
    onTestFailed(async () => console.error(JSON.stringify(await events(call, a.json.id), null, 1)))
    // the file exists (empty) a moment before the token is in it
    const tokenA = await eventually(
      async () => {
        const t = existsSync(tokenFile("wl-a")) ? readFileSync(tokenFile("wl-a"), "utf8") : ""
        return t === "" ? null : t
      },
      30_000,
      "token of a"
    )
    const nc: NatsConnection = await connect({ servers: nats.handle.url })
    const vend = async (id: string, envName: string, token: string) =>
      JSON.parse(
        new TextDecoder().decode(
          (await nc.request(`lantern.spawner.vend.dev.${id}`, JSON.stringify({ envName, token }), { timeout: 10_000 }))
            .data
        )
      )
    try {
      expect(await vend(a.json.id, "VEND_ME", tokenA)).toEqual({ value: SECRET })
      expect(await vend(a.json.id, "VEND_ME", "not-a-token")).toEqual({ error: "refused" })
      expect(await vend(b.json.id, "VEND_ME", tokenA)).toEqual({ error: "refused" })
      expect(await vend(a.json.id, "OTHER", tokenA)).toEqual({ error: "refused" })
      const stopped = await call("POST", `/v1/workloads/${a.json.id}/terminate`)
      expect(stopped.status, stopped.text).toBe(200)
      expect(stopped.json.state).toBe("terminated")
      expect(await vend(a.json.id, "VEND_ME", tokenA)).toEqual({ error: "refused" })
      expect((await call("POST", `/v1/workloads/${a.json.id}/terminate`)).status).toBe(409)
      expect((await call("POST", `/v1/workloads/${b.json.id}/terminate`)).status).toBe(200)
    } finally {
      await nc.close()
    }
    const audit = await eventually(
      async () => {
        const r = await call("GET", "/v1/audit?action=workload.secret.vended")
        // this test's two workloads only (others of the file share the tenant)
        const mine = r.json.items.filter((e: any) =>
          e.actor === `workload:${a.json.id}` || e.actor === `workload:${b.json.id}`
        )
        return mine.length >= 7 ? mine : null
      },
      30_000,
      "vend audit entries"
    )
    expect(audit.filter((e: any) => e.outcome === "denied").length).toBe(4)
    // the relay fetched it once for each workload at start, and the test once
    expect(audit.filter((e: any) => e.outcome === "allowed").length).toBe(3)
    expect(JSON.stringify(audit)).not.toContain(SECRET)
  }, 180_000)
})

describe("a supervising host killed mid-workload", () => {
  it(
    "is adopted by another host while its harness lives, journaled as lost when it does not, or started again when idempotent",
    async () => {
      const first = await host()
      const call = api(first)
      const tick = (name: string) =>
        call("POST", "/v1/workloads", {
          ...spec({ command: [process.execPath, "-e", "setInterval(() => console.log('tick'), 300)"] }),
          metadata: { name }
        })
      const kept = await tick("kept")
      const lost = await tick("lost")
      const again = await call("POST", "/v1/workloads", {
        ...spec({ command: [process.execPath, "-e", "setInterval(() => console.log('tick'), 300)"], idempotent: true }),
        metadata: { name: "again" }
      })
      expect(kept.status, kept.text).toBe(201)
      expect(lost.status, lost.text).toBe(201)
      expect(again.status, again.text).toBe(201)
      const harnessOf = async (id: string) =>
        (await events(call, id)).find((e) => e.type === "WorkloadSpawned").payload.pid as number
      const lostHarness = await harnessOf(lost.json.id)
      const againHarness = await harnessOf(again.json.id)
      await first.kill()
      for (const pid of [lostHarness, againHarness]) {
        process.kill(-pid, "SIGKILL")
        process.kill(pid, "SIGKILL")
      }
      const second = await host()
      const call2 = api(second)
      const adopted = await eventually(
        async () => {
          const journal = await events(call2, kept.json.id)
          return journal.some((e) => e.type === "WorkloadAdopted") ? journal : null
        },
        60_000,
        "the kept workload to be adopted"
      )
      expect(adopted.filter((e) => e.type === "WorkloadAdopted")).toHaveLength(1)
      const failed = await ended(call2, lost.json.id)
      expect(failed.state).toBe("failed")
      expect(failed.reason).toMatch(/^lost: /)
      onTestFailed(async () =>
        console.error(
          "AGAIN",
          JSON.stringify(
            (await events(call2, again.json.id)).map((e) => [e.type, e.payload.reason ?? e.payload.host ?? ""])
          )
        )
      )
      // the idempotent one is started again, once, and runs
      const restarted = await eventually(
        async () => {
          const journal = await events(call2, again.json.id)
          return journal.filter((e) => e.type === "WorkloadSpawned").length === 2 ? journal : null
        },
        60_000,
        "the idempotent workload to start again"
      )
      expect(restarted.filter((e) => e.type === "WorkloadRestarted").map((e) => e.payload.attempt)).toEqual([2])
      expect((await call2("GET", `/v1/workloads/${again.json.id}`)).json).toMatchObject({
        state: "running",
        attempt: 2
      })
      expect((await call2("POST", `/v1/workloads/${again.json.id}/terminate`)).json.state).toBe("terminated")
      // the adopted one still runs and reports, and stops when asked
      const before = (await events(call2, kept.json.id)).filter((e) => e.type === "WorkloadOutput").length
      await eventually(
        async () => (await events(call2, kept.json.id)).filter((e) => e.type === "WorkloadOutput").length > before,
        30_000,
        "output after adoption"
      )
      const stopped = await call2("POST", `/v1/workloads/${kept.json.id}/terminate`)
      expect(stopped.json.state).toBe("terminated")
      // started once: one WorkloadSpawned each
      expect((await events(call2, kept.json.id)).filter((e) => e.type === "WorkloadSpawned")).toHaveLength(1)
    },
    240_000
  )
})

describe("the CLI", () => {
  it(
    "runs a YAML spec and follows it (exit 0, or 1 when it fails), refuses a bad one with exit 2 naming the field",
    async () => {
      const stack = await host()
      const env = { LANTERN_URL: stack.url, LANTERN_API_TOKEN: stack.token, NO_COLOR: "1" }
      const cli = async (args: ReadonlyArray<string>) => {
        const p = spawnLantern(args, env)
        const code = await p.exited
        return { code, output: p.output() }
      }
      const file = join(dir, "agent.yaml")
      writeFileSync(
        file,
        [
          "apiVersion: lantern.dev/v1",
          "kind: AgentSpec",
          "metadata: { name: yaml-hello }",
          "spec:",
          `  command: [${JSON.stringify(process.execPath)}, "-e", "console.log('hello ' + process.env.LANTERN_INPUT)"]`,
          "  isolation: standard",
          "  limits: { vcpu: 1, memoryMb: 256, timeoutSeconds: 60 }",
          "  network: none",
          ""
        ].join("\n")
      )
      const ok = await cli(["run", file, "--input", "from yaml", "--follow"])
      expect(ok.code, ok.output).toBe(0)
      expect(ok.output).toMatch(/^wl_[0-9a-z]{26}$/m)
      expect(ok.output).toContain("hello from yaml")
      expect(ok.output).toMatch(/exited \(exit 0\)/)
      const id = /^(wl_[0-9a-z]{26})$/m.exec(ok.output)![1]!
      // Node's start alone costs tens of milliseconds of CPU: the usage counts the sandbox's reaped processes
      const usage = (await api(stack)("GET", `/v1/workloads/${id}`)).json.usage
      expect(usage.cpuMs).toBeGreaterThan(0)
      expect(usage.wallMs).toBeGreaterThan(0)
      const listed = await cli(["workloads", "list"])
      expect(listed.code).toBe(0)
      expect(listed.output).toContain(`${id}  yaml-hello  exited  standard/bwrap`)
      const logs = await cli(["workloads", "logs", id])
      expect(logs.code).toBe(0)
      expect(logs.output).toContain("hello from yaml")

      writeFileSync(file, readFileSync(file, "utf8").replace("network: none", "network: none\n  gpus: 1"))
      const bad = await cli(["run", file])
      expect(bad.code, bad.output).toBe(2)
      expect(bad.output).toContain("spec.gpus")
      expect(bad.output).toContain("unknown field")

      const failing = join(dir, "fail.json")
      writeFileSync(failing, JSON.stringify(spec({ command: [process.execPath, "-e", "process.exit(3)"] })))
      const failed = await cli(["run", failing, "--follow"])
      expect(failed.code, failed.output).toBe(1)
      expect(failed.output).toMatch(/exit 3/)
      expect((await cli(["workloads", "get", "nope"])).code).toBe(2)
    },
    180_000
  )
})

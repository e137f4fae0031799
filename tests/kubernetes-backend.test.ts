// The kubernetes sandbox backend (actors/spawner/Kubernetes.ts, harness/kube.ts) against a local server speaking the
// Kubernetes API for the calls it makes (tests/support/FakeKubernetes.ts, which runs a Job's container as a local
// process): the RuntimeClasses checked at start, the Job and NetworkPolicy it creates field by field, the pod's log and
// exit code passed back, SIGTERM deleting the Job, fail-closed refusals, and a `hostile` workload placed on it from the
// API end to end.
import { spawn } from "node:child_process"
import { createHash } from "node:crypto"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { createServer, type Server } from "node:http"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Exit } from "effect"
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from "vitest"
import type { Backend } from "../actors/spawner/Backends.ts"
import * as Kubernetes from "../actors/spawner/Kubernetes.ts"
import type { WorkloadSpec } from "../schema/Workload.ts"
import { startServer, type TestServer } from "./support/Bus.ts"
import * as FakeKubernetes from "./support/FakeKubernetes.ts"
import { api, eventually, startStack, type StackProcess } from "./support/Stack.ts"

let fake: FakeKubernetes.FakeKubernetes
let dir: string

beforeAll(async () => {
  fake = await FakeKubernetes.start({ runtimeClasses: ["gvisor"] })
  dir = mkdtempSync(join(tmpdir(), "lantern-k8s-"))
})

afterAll(async () => {
  await fake?.close()
  rmSync(dir, { recursive: true, force: true })
})

const settings = (): Kubernetes.Settings => ({
  server: fake.url,
  token: "k8s-test-token",
  // the fake speaks plain HTTP, which the client takes only with TLS verification off
  skipTLSVerify: true,
  namespace: "sandboxes",
  runtimeClasses: { standard: "gvisor", untrusted: "gvisor", hostile: "kata" },
  image: "node:24-slim"
})

const specOf = (over: Partial<WorkloadSpec["spec"]> = {}): WorkloadSpec => ({
  apiVersion: "lantern.dev/v1",
  kind: "AgentSpec",
  metadata: { name: "k8s" },
  spec: {
    command: [process.execPath, "-e", "console.log('from the pod ' + process.env.LANTERN_INPUT); process.exit(3)"],
    isolation: "standard",
    limits: { vcpu: 0.5, memoryMb: 256, timeoutSeconds: 120 },
    network: "allowlist",
    egressRules: [{ host: "203.0.113.7", ports: [443, 8443] }],
    ...over
  }
})

let n = 0
const paths = () => ({
  sockDir: dir,
  dir,
  workloadId: `wl_${String(++n).padStart(26, "0")}`,
  tenant: "dev",
  input: "hi"
})

const runDriver = (argv: ReadonlyArray<string>) => {
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "pipe", "pipe"] })
  let stdout = ""
  let stderr = ""
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()))
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()))
  const closed = new Promise<number | null>((r) => child.on("close", (c) => r(c)))
  return { child, closed, out: () => stdout, err: () => stderr }
}

describe("the kubernetes backend", () => {
  let backend: Backend

  it("checks its RuntimeClasses at start and provides only the tiers whose class exists", async () => {
    backend = Kubernetes.kubernetesBackend(settings())
    expect(await Effect.runPromise(backend.probe)).toEqual({ ok: true })
    expect(fake.requests.map((r) => r.path)).toEqual(
      expect.arrayContaining(["/apis/node.k8s.io/v1/runtimeclasses/gvisor", "/apis/node.k8s.io/v1/runtimeclasses/kata"])
    )
    expect(["trusted", "standard", "untrusted", "hostile"].map((t) => backend.provides(t as never))).toEqual([
      true,
      true,
      true,
      false
    ])
    const none = Kubernetes.kubernetesBackend({ ...settings(), runtimeClasses: { hostile: "kata" } })
    expect((await Effect.runPromise(none.probe)).ok).toBe(false)
  })

  it("creates a restricted Job and a default-deny NetworkPolicy, and passes the pod's log and exit code back", async () => {
    const p = paths()
    const argv = await Effect.runPromise(backend.argv(specOf(), p))
    const driver = runDriver(argv)
    expect(await driver.closed, driver.err()).toBe(3)
    expect(driver.out()).toContain("from the pod hi")

    const job = fake.requests.find((r) => r.method === "POST" && r.path === "/apis/batch/v1/namespaces/sandboxes/jobs")
    expect(job?.authorization).toBe("Bearer k8s-test-token")
    const spec = job!.body.spec
    expect(job!.body.metadata.name).toBe(Kubernetes.jobName(p.workloadId))
    // created suspended, resumed only once its policy exists: no pod runs unfenced
    expect(spec.suspend).toBe(true)
    const policyAt = fake.requests.findIndex((r) => r.method === "POST" && r.path.endsWith("/networkpolicies"))
    const resumeAt = fake.requests.findIndex((r) =>
      r.method === "PATCH" && r.path.endsWith(`/jobs/${Kubernetes.jobName(p.workloadId)}`)
    )
    expect(policyAt).toBeGreaterThan(-1)
    expect(resumeAt).toBeGreaterThan(policyAt)
    expect(fake.requests[resumeAt]!.body).toEqual({ spec: { suspend: false } })
    expect(spec.activeDeadlineSeconds).toBe(120)
    expect(spec.backoffLimit).toBe(0)
    const pod = spec.template.spec
    expect(pod.runtimeClassName).toBe("gvisor")
    expect(pod.automountServiceAccountToken).toBe(false)
    expect(pod.restartPolicy).toBe("Never")
    expect(pod.securityContext).toMatchObject({
      runAsNonRoot: true,
      runAsUser: 65534,
      seccompProfile: { type: "RuntimeDefault" }
    })
    const container = pod.containers[0]
    expect(container.securityContext).toEqual({
      allowPrivilegeEscalation: false,
      privileged: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      capabilities: { drop: ["ALL"] }
    })
    expect(container.resources).toEqual({
      limits: { cpu: "0.5", memory: "256Mi" },
      requests: { cpu: "0.5", memory: "256Mi" }
    })
    expect(container.env).toEqual(
      expect.arrayContaining([{ name: "LANTERN_WORKLOAD_ID", value: p.workloadId }, {
        name: "LANTERN_INPUT",
        value: "hi"
      }])
    )

    const policy = fake.requests.find((r) => r.method === "POST" && r.path.endsWith("/networkpolicies"))
    expect(policy!.body.spec.policyTypes).toEqual(["Ingress", "Egress"])
    expect(policy!.body.spec.ingress).toEqual([])
    expect(policy!.body.spec.egress).toEqual([
      {
        to: [{ namespaceSelector: {}, podSelector: { matchLabels: { "k8s-app": "kube-dns" } } }],
        ports: [{ protocol: "UDP", port: 53 }, { protocol: "TCP", port: 53 }]
      },
      {
        to: [{ ipBlock: { cidr: "203.0.113.7/32" } }],
        ports: [{ protocol: "TCP", port: 443 }, { protocol: "TCP", port: 8443 }]
      }
    ])
    // owned by the Job, so it goes with it
    expect(policy!.body.metadata.ownerReferences[0]).toMatchObject({
      kind: "Job",
      name: Kubernetes.jobName(p.workloadId)
    })
  })

  it("deletes the Job when the harness terminates the driver", async () => {
    const p = paths()
    const argv = await Effect.runPromise(
      backend.argv(specOf({ command: [process.execPath, "-e", "setInterval(() => console.log('tick'), 100)"] }), p)
    )
    const driver = runDriver(argv)
    await eventually(async () => driver.out().includes("tick"), 30_000, "the pod's first tick")
    driver.child.kill("SIGTERM")
    expect(await driver.closed).toBe(143)
    expect(
      fake.requests.some((r) =>
        r.method === "DELETE" &&
        r.path.startsWith(`/apis/batch/v1/namespaces/sandboxes/jobs/${Kubernetes.jobName(p.workloadId)}`)
      )
    ).toBe(true)
    expect(fake.jobs.has(`sandboxes/${Kubernetes.jobName(p.workloadId)}`)).toBe(false)
  })

  it("refuses, before anything is created, a tier without its RuntimeClass and named egress hosts", async () => {
    const before = fake.requests.length
    for (
      const spec of [
        specOf({ isolation: "hostile" }),
        specOf({ egressRules: [{ host: "api.example.com" }] })
      ]
    ) {
      const exit = await Effect.runPromiseExit(backend.argv(spec, paths()))
      expect(Exit.isFailure(exit)).toBe(true)
      expect(String(exit)).toContain("IsolationUnavailable")
    }
    expect(fake.requests.length).toBe(before)
  })
})

describe("secrets on kubernetes", () => {
  let vendor: Server
  const asked: Array<string> = []
  beforeAll(async () => {
    // the harness's secret vendor, on the socket the driver is pointed at (the workload's sockDir)
    vendor = createServer((req, res) => {
      asked.push(`${req.headers.authorization} ${req.url}`)
      if (req.headers.authorization === "Bearer good-token" && req.url === "/v1/secrets/API_KEY") {
        res.writeHead(200).end("k8s-vended 'value'")
      } else res.writeHead(403).end("refused")
    })
    await new Promise<void>((r) => vendor.listen(join(dir, "secrets.sock"), r))
  })
  afterAll(() => vendor.close())

  const declared = specOf({
    command: [
      process.execPath,
      "-e",
      "console.log('key ' + require('node:crypto').createHash('sha256').update(process.env.API_KEY).digest('hex')); process.exit(3)"
    ],
    secrets: [{ envName: "API_KEY", secretRef: "lantern.secret://api-key" }]
  })
  const drive = (argv: ReadonlyArray<string>, token: string) => {
    const child = spawn(argv[0]!, argv.slice(1), {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, LANTERN_IDENTITY_TOKEN: token }
    })
    let out = ""
    let err = ""
    child.stdout.on("data", (d: Buffer) => (out += d.toString()))
    child.stderr.on("data", (d: Buffer) => (err += d.toString()))
    return { closed: new Promise<number | null>((r) => child.on("close", (c) => r(c))), out: () => out, err: () => err }
  }

  it("vends them with the identity token, puts them in a Secret owned by the Job, and the pod reads them", async () => {
    const backend = Kubernetes.kubernetesBackend(settings())
    await Effect.runPromise(backend.probe)
    const p = paths()
    const name = Kubernetes.jobName(p.workloadId)
    const argv = await Effect.runPromise(backend.argv(declared, p))
    // the driver's file holds the API token, never a secret's value
    expect(readFileSync(argv[2]!, "utf8")).not.toContain("k8s-vended")
    const from = fake.requests.length
    const driver = drive(argv, "good-token")
    expect(await driver.closed, driver.err()).toBe(3)
    expect(driver.out()).toContain(`key ${createHash("sha256").update("k8s-vended 'value'").digest("hex")}`)
    expect(asked).toContain("Bearer good-token /v1/secrets/API_KEY")
    const made = fake.requests.slice(from).filter((r) => r.method === "POST" || r.method === "PATCH").map((r) =>
      `${r.method} ${r.path.split("/").slice(-2).join("/")}`
    )
    // the Job suspended, its policy and secret, then the Job resumed: its pod never runs unfenced or without them
    expect(made).toEqual([
      "POST sandboxes/jobs",
      "POST sandboxes/networkpolicies",
      "POST sandboxes/secrets",
      `PATCH jobs/${name}`
    ])
    const job = fake.jobs.get(`sandboxes/${name}`)
    expect(job.spec.template.spec.containers[0].env).toContainEqual({
      name: "API_KEY",
      valueFrom: { secretKeyRef: { name, key: "API_KEY" } }
    })
    // the value is in the Secret only (base64, as the API stores it), which the Job owns
    expect(JSON.stringify(job)).not.toContain("k8s-vended")
    const secret = fake.secrets.get(`sandboxes/${name}`)
    expect(Buffer.from(secret.data.API_KEY, "base64").toString()).toBe("k8s-vended 'value'")
    expect(secret.metadata.ownerReferences[0]).toMatchObject({ kind: "Job", name, uid: job.metadata.uid })
    expect(secret.immutable).toBe(true)
  })

  it("creates nothing when the vendor refuses (exit 126)", async () => {
    const backend = Kubernetes.kubernetesBackend(settings())
    await Effect.runPromise(backend.probe)
    const argv = await Effect.runPromise(backend.argv(declared, paths()))
    const from = fake.requests.length
    const driver = drive(argv, "stolen-token")
    expect(await driver.closed).toBe(126)
    expect(driver.err()).toContain("secret API_KEY was not vended (403)")
    expect(fake.requests.slice(from).filter((r) => r.method === "POST")).toEqual([])
  })
})

describe("a hostile workload from the API", () => {
  let nats: TestServer
  let stack: StackProcess

  beforeAll(async () => {
    nats = await startServer("lantern-k8s")
    fake.runtimeClasses.add("kata")
    stack = await startStack({
      natsUrl: nats.handle.url,
      env: {
        LANTERN_SPAWNER_BACKENDS: "process,bwrap,gvisor,kubernetes",
        LANTERN_K8S_API: fake.url,
        LANTERN_K8S_TOKEN: "k8s-test-token",
        LANTERN_K8S_INSECURE_SKIP_TLS_VERIFY: "true",
        LANTERN_K8S_NAMESPACE: "sandboxes",
        LANTERN_K8S_RUNTIME_CLASSES: "hostile=kata",
        LANTERN_WORKLOAD_DIR: join(dir, "wl")
      }
    })
  }, 180_000)

  afterAll(async () => {
    await stack?.stop()
    await nats?.cleanup()
  })

  it("is placed on kubernetes with the Kata RuntimeClass, its output journaled and its exit code kept", async () => {
    onTestFailed(() => console.error(stack.output()))
    const call = api(stack)
    expect((await call("POST", "/v1/secrets", { name: "k8s-key", value: "k8s-stack-secret-41" })).status).toBe(201)
    const r = await call("POST", "/v1/workloads", {
      ...specOf({
        isolation: "hostile",
        network: "none",
        egressRules: [],
        command: [
          process.execPath,
          "-e",
          "console.log('from the pod ' + process.env.LANTERN_INPUT + ', key length ' + process.env.K8S_KEY.length); process.exit(3)"
        ],
        secrets: [{ envName: "K8S_KEY", secretRef: "lantern.secret://k8s-key" }]
      }),
      metadata: { name: "hostile-k8s" },
      input: "via the API"
    })
    expect(r.status, r.text).toBe(201)
    expect(r.json.backend).toBe("kubernetes")
    const done = await eventually(
      async () => {
        const w = (await call("GET", `/v1/workloads/${r.json.id}`)).json
        return ["exited", "terminated", "failed"].includes(w.state) ? w : null
      },
      60_000,
      "the workload to end"
    )
    expect(done.state).toBe("exited")
    expect(done.exitCode).toBe(3)
    const events = (await call("GET", `/v1/workloads/${r.json.id}/events`)).json.items
    expect(events.filter((e: any) => e.type === "WorkloadOutput").map((e: any) => e.payload.text).join("")).toContain(
      "from the pod via the API, key length 19"
    )
    expect(done.secretsVended).toEqual(["K8S_KEY"])
    const job = fake.jobs.get(`sandboxes/${Kubernetes.jobName(r.json.id)}`)
    expect(job.spec.template.spec.runtimeClassName).toBe("kata")
  }, 120_000)
})

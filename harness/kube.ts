// The Kubernetes backend's driver (ADR 0046), run by the harness in place of a local sandbox: it creates the workload's
// Job (a RuntimeClass per tier, restricted pod security, no service-account token, limits, a deadline) and a
// default-deny NetworkPolicy owned by the Job, follows the pod's log to stdout, and exits with the container's exit
// code; SIGTERM deletes the Job (and with it the pod, the policy and the secret). It talks to the API server only,
// with @kubernetes/client-node. Declared secrets (ADR 0065) are vended from the harness's vendor with the workload's
// identity token before anything is created (a refusal creates nothing, exit 126) and put in a Secret named as the
// Job and owned by it, which the pod's environment references. The Job is created suspended and resumed once its
// NetworkPolicy and Secret exist, so no pod of it ever runs before its default-deny policy.
// Usage: node harness/kube.ts <driver.json>
import { readFileSync, rmSync } from "node:fs"
import { Writable } from "node:stream"
import * as k8s from "@kubernetes/client-node"
import { PatchStrategy, setHeaderOptions } from "@kubernetes/client-node"
import { vendAll } from "./Vend.ts"

export interface DriverConfig {
  readonly server: string
  readonly token: string
  readonly skipTLSVerify: boolean
  readonly caData?: string
  readonly namespace: string
  readonly job: k8s.V1Job
  readonly networkPolicy: k8s.V1NetworkPolicy
  /** The harness's secret vendor and the declared secrets' environment names. */
  readonly secrets?: { readonly socket: string; readonly names: ReadonlyArray<string> }
}

const path = process.argv[2]
if (path === undefined) {
  process.stderr.write("usage: harness/kube.ts <driver.json>\n")
  process.exit(2)
}
const config = JSON.parse(readFileSync(path, "utf8")) as DriverConfig
rmSync(path, { force: true }) // it holds the API token

const kc = new k8s.KubeConfig()
kc.loadFromOptions({
  clusters: [{
    name: "lantern",
    server: config.server,
    skipTLSVerify: config.skipTLSVerify,
    ...(config.caData === undefined ? {} : { caData: config.caData })
  }],
  users: [{ name: "lantern", token: config.token }],
  contexts: [{ name: "lantern", cluster: "lantern", user: "lantern" }],
  currentContext: "lantern"
})
const batch = kc.makeApiClient(k8s.BatchV1Api)
const core = kc.makeApiClient(k8s.CoreV1Api)
const networking = kc.makeApiClient(k8s.NetworkingV1Api)
const namespace = config.namespace
const name = config.job.metadata!.name!
const selector = `lantern.dev/workload=${config.job.metadata!.labels!["lantern.dev/workload"]}`
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const say = (line: string) => process.stderr.write(`lantern kubernetes: ${line}\n`)

let deleting = false
const remove = async () => {
  if (deleting) return
  deleting = true
  await batch.deleteNamespacedJob({ name, namespace, propagationPolicy: "Background" }).catch((e: unknown) =>
    say(`could not delete job ${name}: ${e instanceof Error ? e.message : String(e)}`)
  )
}
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.on(signal, () => {
    void remove().finally(() => process.exit(143))
  })
}

const exitCodeOf = (pod: k8s.V1Pod): number | null => {
  const state = pod.status?.containerStatuses?.find((c) => c.name === "main")?.state
  return state?.terminated?.exitCode ?? null
}

/** Refused by the vendor: nothing was created, and the workload ends as the relay's would (126). */
class Refused extends Error {}

const main = async () => {
  const names = config.secrets?.names ?? []
  const vended = names.length === 0
    ? []
    : await vendAll(config.secrets!.socket, names, process.env["LANTERN_IDENTITY_TOKEN"] ?? "").catch((e: unknown) => {
      throw new Refused(e instanceof Error ? e.message : String(e))
    })
  const job = await batch.createNamespacedJob({ namespace, body: config.job })
  // the policy and the secret belong to the Job: deleting the Job (or its TTL) removes them too
  const owned = {
    ownerReferences: [{
      apiVersion: "batch/v1",
      kind: "Job",
      name,
      uid: job.metadata?.uid ?? "",
      blockOwnerDeletion: true
    }]
  }
  await networking.createNamespacedNetworkPolicy({
    namespace,
    body: { ...config.networkPolicy, metadata: { ...config.networkPolicy.metadata, ...owned } }
  })
  if (vended.length > 0) {
    await core.createNamespacedSecret({
      namespace,
      body: {
        apiVersion: "v1",
        kind: "Secret",
        type: "Opaque",
        immutable: true,
        metadata: { name, labels: config.job.metadata!.labels!, ...owned },
        data: Object.fromEntries(vended.map(([k, v]) => [k, Buffer.from(v, "utf8").toString("base64")]))
      }
    })
  }
  // the Job was created suspended: its pod starts only now that the policy fences it (and its secret exists)
  await batch.patchNamespacedJob(
    { name, namespace, body: { spec: { suspend: false } } },
    setHeaderOptions("Content-Type", PatchStrategy.MergePatch)
  )
  // the pod, once scheduled and started (or already finished)
  let pod: k8s.V1Pod | undefined
  for (;;) {
    const pods = await core.listNamespacedPod({ namespace, labelSelector: selector })
    pod = pods.items.find((p) => ["Running", "Succeeded", "Failed"].includes(p.status?.phase ?? ""))
    if (pod !== undefined) break
    const status = (await batch.readNamespacedJobStatus({ name, namespace })).status
    if ((status?.failed ?? 0) > 0) {
      say(`job ${name} failed before its pod ran`)
      return 125
    }
    await sleep(200)
  }
  const podName = pod.metadata!.name!
  const out = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      process.stdout.write(chunk, () => callback())
    }
  })
  const logged = new Promise<void>((resolve) => out.on("finish", () => resolve()))
  await new k8s.Log(kc).log(namespace, podName, "main", out, { follow: true })
  await logged
  // the log ends when the container does; its exit code is in the pod's status
  for (;;) {
    const current = await core.readNamespacedPod({ name: podName, namespace })
    const code = exitCodeOf(current)
    if (code !== null) return code
    await sleep(200)
  }
}

main().then(
  (code) => process.exit(code),
  async (e: unknown) => {
    say(e instanceof Error ? e.message : String(e))
    if (e instanceof Refused) process.exit(126)
    await remove()
    process.exit(125)
  }
)

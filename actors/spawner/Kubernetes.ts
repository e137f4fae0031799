// The `kubernetes` sandbox backend (ADR 0046): a Job per workload in LANTERN_K8S_NAMESPACE, its pod run by the
// RuntimeClass configured for the workload's tier (gVisor for standard and untrusted, Kata for hostile, by name),
// with restricted pod security (non-root, read-only root file system, no privilege escalation, every capability
// dropped, the default seccomp profile, no service-account token), limits and requests, `activeDeadlineSeconds`, and
// a default-deny NetworkPolicy that lets out only DNS and the spec's IP-literal egress rules. At start it checks that
// each configured RuntimeClass exists; a tier whose class is missing is not provided (412, never a downgrade).
import { readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import * as k8s from "@kubernetes/client-node"
import { Config, Effect, Option, Redacted } from "effect"
import { isIP } from "node:net"
import { type Tier, TIERS, type WorkloadSpec } from "../../schema/Workload.ts"
import { type Backend, IsolationUnavailable, KUBE, type Paths } from "./Backends.ts"

export interface Settings {
  readonly server: string
  readonly token: string
  readonly skipTLSVerify: boolean
  readonly namespace: string
  /** RuntimeClass per tier; a tier absent here is not provided (`trusted` runs with the cluster's default runtime). */
  readonly runtimeClasses: Readonly<Partial<Record<Tier, string>>>
  /** The image of a spec without one. */
  readonly image: string
}

const SERVICE_ACCOUNT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"

/** LANTERN_K8S_API set: the backend's settings; unset: none (the backend is not configured). */
export const settingsConfig = Config.all({
  server: Config.option(Config.String("LANTERN_K8S_API")),
  token: Config.option(Config.Redacted("LANTERN_K8S_TOKEN")),
  tokenFile: Config.String("LANTERN_K8S_TOKEN_FILE").pipe(Config.withDefault(SERVICE_ACCOUNT_TOKEN)),
  skipTLSVerify: Config.Boolean("LANTERN_K8S_INSECURE_SKIP_TLS_VERIFY").pipe(Config.withDefault(false)),
  namespace: Config.String("LANTERN_K8S_NAMESPACE").pipe(Config.withDefault("lantern-workloads")),
  runtimeClasses: Config.String("LANTERN_K8S_RUNTIME_CLASSES").pipe(
    Config.withDefault("standard=gvisor,untrusted=gvisor,hostile=kata")
  ),
  image: Config.String("LANTERN_K8S_IMAGE").pipe(Config.withDefault("node:24-slim"))
}).pipe(
  Config.map((c): Settings | null => {
    if (Option.isNone(c.server)) return null
    const classes: Partial<Record<Tier, string>> = {}
    for (const pair of c.runtimeClasses.split(",").map((x) => x.trim()).filter((x) => x !== "")) {
      const [tier, name] = pair.split("=").map((x) => x.trim())
      if ((TIERS as ReadonlyArray<string>).includes(tier ?? "") && name !== undefined && name !== "") {
        classes[tier as Tier] = name
      }
    }
    const token = Option.match(c.token, {
      onSome: (t) => Redacted.value(t),
      onNone: () => {
        try {
          return readFileSync(c.tokenFile, "utf8").trim()
        } catch {
          return ""
        }
      }
    })
    return {
      server: c.server.value,
      token,
      skipTLSVerify: c.skipTLSVerify,
      namespace: c.namespace,
      runtimeClasses: classes,
      image: c.image
    }
  })
)

const kubeConfig = (s: Settings) => {
  const kc = new k8s.KubeConfig()
  kc.loadFromOptions({
    clusters: [{ name: "lantern", server: s.server, skipTLSVerify: s.skipTLSVerify }],
    users: [{ name: "lantern", token: s.token }],
    contexts: [{ name: "lantern", cluster: "lantern", user: "lantern" }],
    currentContext: "lantern"
  })
  return kc
}

/** A DNS-1123 name for the workload's Job: `lantern-` and its id with `_` as `-`. */
export const jobName = (workloadId: string) => `lantern-${workloadId.replace(/_/g, "-")}`

const LABELS = (tenant: string, workloadId: string) => ({
  "app.kubernetes.io/managed-by": "lantern",
  "lantern.dev/workload": workloadId,
  "lantern.dev/tenant": tenant
})

/** The Job of a workload: pure, so its every field is tested. */
export const jobOf = (
  spec: WorkloadSpec,
  options: {
    readonly workloadId: string
    readonly tenant: string
    readonly namespace: string
    readonly runtimeClass: string | undefined
    readonly image: string
    readonly input: string | null
  }
): k8s.V1Job => {
  const labels = LABELS(options.tenant, options.workloadId)
  const limits = { cpu: String(spec.spec.limits.vcpu), memory: `${spec.spec.limits.memoryMb}Mi` }
  const env: Array<k8s.V1EnvVar> = [
    ...Object.entries(spec.spec.env ?? {}).map(([name, value]) => ({ name, value })),
    { name: "LANTERN_WORKLOAD_ID", value: options.workloadId },
    ...(options.input === null ? [] : [{ name: "LANTERN_INPUT", value: options.input }]),
    // declared secrets: from the Secret the driver makes with the vended values, owned by the Job (ADR 0065)
    ...(spec.spec.secrets ?? []).map((s) => ({
      name: s.envName,
      valueFrom: { secretKeyRef: { name: jobName(options.workloadId), key: s.envName } }
    }))
  ]
  return {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: { name: jobName(options.workloadId), namespace: options.namespace, labels },
    spec: {
      // created suspended: the driver resumes it once its NetworkPolicy (and Secret) exist, so its pod never runs
      // unfenced, not even for the moment between the Job and its policy
      suspend: true,
      backoffLimit: 0,
      activeDeadlineSeconds: spec.spec.limits.timeoutSeconds,
      ttlSecondsAfterFinished: 600,
      template: {
        metadata: { labels },
        spec: {
          restartPolicy: "Never",
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          ...(options.runtimeClass === undefined ? {} : { runtimeClassName: options.runtimeClass }),
          securityContext: {
            runAsNonRoot: true,
            runAsUser: 65534,
            runAsGroup: 65534,
            fsGroup: 65534,
            seccompProfile: { type: "RuntimeDefault" }
          },
          containers: [{
            name: "main",
            image: spec.spec.image ?? options.image,
            command: [...spec.spec.command],
            ...(spec.spec.args === undefined ? {} : { args: [...spec.spec.args] }),
            env,
            resources: { limits, requests: limits },
            securityContext: {
              allowPrivilegeEscalation: false,
              privileged: false,
              readOnlyRootFilesystem: true,
              runAsNonRoot: true,
              capabilities: { drop: ["ALL"] }
            },
            volumeMounts: [{ name: "tmp", mountPath: "/tmp" }]
          }],
          volumes: [{ name: "tmp", emptyDir: { sizeLimit: "256Mi" } }]
        }
      }
    }
  }
}

/** Default deny, both ways; out: DNS to the cluster's resolver, and each IP-literal egress rule on its ports. */
export const networkPolicyOf = (spec: WorkloadSpec, workloadId: string, tenant: string): k8s.V1NetworkPolicy => ({
  apiVersion: "networking.k8s.io/v1",
  kind: "NetworkPolicy",
  metadata: { name: jobName(workloadId), labels: LABELS(tenant, workloadId) },
  spec: {
    podSelector: { matchLabels: { "lantern.dev/workload": workloadId } },
    policyTypes: ["Ingress", "Egress"],
    ingress: [],
    egress: [
      {
        to: [{ namespaceSelector: {}, podSelector: { matchLabels: { "k8s-app": "kube-dns" } } }],
        ports: [{ protocol: "UDP", port: 53 }, { protocol: "TCP", port: 53 }]
      },
      ...(spec.spec.network === "allowlist" ? spec.spec.egressRules ?? [] : []).map((r) => {
        const ip = r.host.replace(/^\[|\]$/g, "")
        return {
          to: [{ ipBlock: { cidr: isIP(ip) === 6 ? `${ip}/128` : `${ip}/32` } }],
          ports: (r.ports ?? [443]).map((port) => ({ protocol: "TCP", port }))
        }
      })
    ]
  }
})

/** The backend; its tiers are those whose RuntimeClass the probe found (and `trusted`). */
export const kubernetesBackend = (settings: Settings): Backend => {
  const verified = new Set<Tier>(["trusted"])
  const refuse = (tier: Tier, reason: string) => Effect.fail(new IsolationUnavailable({ tier, reason }))
  return {
    name: "kubernetes",
    provides: (tier) => verified.has(tier),
    probe: Effect.tryPromise(async () => {
      const node = kubeConfig(settings).makeApiClient(k8s.NodeV1Api)
      const missing: Array<string> = []
      for (const [tier, name] of Object.entries(settings.runtimeClasses) as Array<[Tier, string]>) {
        const found = await node.readRuntimeClass({ name }).then(() => true, () => false)
        if (found) verified.add(tier)
        else missing.push(`${tier} (RuntimeClass ${name} not found)`)
      }
      return missing.length === 0
        ? { ok: true as const }
        : verified.size > 1
        ? { ok: true as const }
        : { ok: false as const, reason: `no configured RuntimeClass exists: ${missing.join(", ")}` }
    }).pipe(
      Effect.catch((e) =>
        Effect.succeed({ ok: false as const, reason: `the API server at ${settings.server}: ${String(e.cause ?? e)}` })
      )
    ),
    argv(spec, paths: Paths) {
      const tier = spec.spec.isolation
      if (!verified.has(tier)) return refuse(tier, "the kubernetes backend has no RuntimeClass for it")
      const named = (spec.spec.network === "allowlist" ? spec.spec.egressRules ?? [] : []).filter((r) =>
        isIP(r.host.replace(/^\[|\]$/g, "")) === 0
      )
      if (named.length > 0) {
        return refuse(
          tier,
          `the kubernetes backend enforces egress with a NetworkPolicy, which takes IP literals only (${
            named[0]!.host
          })`
        )
      }
      if (paths.dir === undefined || paths.workloadId === undefined || paths.tenant === undefined) {
        return refuse(tier, "the kubernetes backend needs the workload's folder, id and tenant")
      }
      const file = join(paths.dir, "kube.json")
      const driver = {
        server: settings.server,
        token: settings.token,
        skipTLSVerify: settings.skipTLSVerify,
        namespace: settings.namespace,
        job: jobOf(spec, {
          workloadId: paths.workloadId,
          tenant: paths.tenant,
          namespace: settings.namespace,
          runtimeClass: settings.runtimeClasses[tier],
          image: settings.image,
          input: paths.input ?? null
        }),
        networkPolicy: networkPolicyOf(spec, paths.workloadId, paths.tenant),
        // the driver vends these with the workload's identity token and puts them in the Job's Secret
        secrets: {
          socket: join(paths.sockDir, "secrets.sock"),
          names: (spec.spec.secrets ?? []).map((s) => s.envName)
        }
      }
      return Effect.sync(() => {
        writeFileSync(file, JSON.stringify(driver), { mode: 0o600 })
        return [process.execPath, paths.kube ?? KUBE, file]
      })
    }
  }
}

// The cockpit's frame: sign-in until a key is held, then the navigation and the view the hash names.
import { createMemo, Match, Show, Switch } from "solid-js"
import { makeClient } from "./api.ts"
import { createRoute, href } from "./route.ts"
import { createSession } from "./session.ts"
import { Access } from "./views/Access.tsx"
import { Agents } from "./views/Agents.tsx"
import { EvalRun, Evals } from "./views/Evals.tsx"
import { Queue } from "./views/Queue.tsx"
import { RunDetail } from "./views/RunDetail.tsx"
import { Runs } from "./views/Runs.tsx"
import { SessionDetail, Sessions } from "./views/Sessions.tsx"
import { SignIn } from "./views/SignIn.tsx"
import { Spend } from "./views/Spend.tsx"
import { TaskDetail } from "./views/TaskDetail.tsx"
import { WorkloadDetail, Workloads } from "./views/Workloads.tsx"

export const App = () => {
  const session = createSession()
  const route = createRoute()
  const client = createMemo(() => {
    const token = session.token()
    return token === null ? null : makeClient(token, session.signOut)
  })
  return (
    <Show when={client()} keyed fallback={<SignIn onSignIn={session.signIn} />}>
      {(c) => (
        <div class="shell">
          <header class="top">
            <span class="brand">Lantern</span>
            <nav aria-label="Views">
              <a
                href={href({ view: "runs" })}
                aria-current={["runs", "run"].includes(route().view) ? "page" : undefined}
              >
                Runs
              </a>
              <a
                href={href({ view: "queue" })}
                aria-current={["queue", "task"].includes(route().view) ? "page" : undefined}
              >
                Queue
              </a>
              <a href={href({ view: "agents" })} aria-current={route().view === "agents" ? "page" : undefined}>
                Agents
              </a>
              <a
                href={href({ view: "sessions" })}
                aria-current={["sessions", "session"].includes(route().view) ? "page" : undefined}
              >
                Sessions
              </a>
              <a
                href={href({ view: "evals" })}
                aria-current={["evals", "evalRun"].includes(route().view) ? "page" : undefined}
              >
                Evals
              </a>
              <a
                href={href({ view: "workloads" })}
                aria-current={["workloads", "workload"].includes(route().view) ? "page" : undefined}
              >
                Workloads
              </a>
              <a href={href({ view: "spend" })} aria-current={route().view === "spend" ? "page" : undefined}>
                Spend
              </a>
              <a href={href({ view: "access" })} aria-current={route().view === "access" ? "page" : undefined}>
                Access
              </a>
            </nav>
            <button type="button" class="quiet" onClick={session.signOut}>Sign out</button>
          </header>
          <main>
            <Switch>
              <Match when={route().view === "agents"}>
                <Agents client={c} />
              </Match>
              <Match when={route().view === "spend"}>
                <Spend client={c} />
              </Match>
              <Match when={route().view === "access"}>
                <Access client={c} />
              </Match>
              <Match when={route().view === "queue"}>
                <Queue client={c} />
              </Match>
              <Match
                when={(() => {
                  const r = route()
                  return r.view === "task" ? r.id : null
                })()}
                keyed
              >
                {(id) => <TaskDetail client={c} id={id} />}
              </Match>
              <Match when={route().view === "sessions"}>
                <Sessions client={c} />
              </Match>
              <Match
                when={(() => {
                  const r = route()
                  return r.view === "session" ? r.id : null
                })()}
                keyed
              >
                {(id) => <SessionDetail client={c} id={id} />}
              </Match>
              <Match when={route().view === "evals"}>
                <Evals client={c} />
              </Match>
              <Match
                when={(() => {
                  const r = route()
                  return r.view === "evalRun" ? r.id : null
                })()}
                keyed
              >
                {(id) => <EvalRun client={c} id={id} />}
              </Match>
              <Match when={route().view === "workloads"}>
                <Workloads client={c} />
              </Match>
              <Match
                when={(() => {
                  const r = route()
                  return r.view === "workload" ? r.id : null
                })()}
                keyed
              >
                {(id) => <WorkloadDetail client={c} id={id} />}
              </Match>
              <Match
                when={(() => {
                  const r = route()
                  return r.view === "run" ? r.id : null
                })()}
                keyed
              >
                {(id) => <RunDetail client={c} id={id} />}
              </Match>
              <Match when={route().view === "runs"}>
                <Runs client={c} />
              </Match>
            </Switch>
          </main>
        </div>
      )}
    </Show>
  )
}

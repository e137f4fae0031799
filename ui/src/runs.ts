// The live list of runs: a page of `GET /v1/runs` once the tenant stream (`GET /v1/stream`) says where it starts,
// then every frame of that stream marks its run and re-reads it (a few at a time), so rows change in place, keep
// their identity (createStore + reconcile) and new runs appear at the top without a reload; the page is listed again
// a moment later, for runs the projections had not caught up with.
import { createSignal, onCleanup } from "solid-js"
import { createStore, reconcile } from "solid-js/store"
import type { RunActivity } from "../../schema/Api.ts"
import type { RunView } from "../../schema/Run.ts"
import { ApiError, type Client, type RunFilter } from "./api.ts"
import { createEventStream } from "./sse.ts"

/** `lantern doctor`'s probe runs are left out of lists, as `GET /v1/runs` leaves them out. */
const PROBE_AGENT = "lantern-doctor-probe"

export const matches = (run: RunView, filter: RunFilter): boolean =>
  (filter.status === undefined || run.status === filter.status) &&
  (filter.since === undefined || Date.parse(run.createdAt) >= filter.since) &&
  (filter.agentName === undefined ? run.agentName !== PROBE_AGENT : run.agentName === filter.agentName)

/** Newest first by creation time, ties by id (descending), as `GET /v1/runs` orders them. */
export const order = (a: RunView, b: RunView): number =>
  a.createdAt === b.createdAt ? (a.id < b.id ? 1 : a.id > b.id ? -1 : 0) : a.createdAt < b.createdAt ? 1 : -1

/** When the first page is listed again: projections are this far behind the journal at most, in practice. */
const CATCH_UP_MS = 2_000
const RELIST_MS = 30_000

/** Re-reads of marked runs wait this long, so a burst of events of one run costs one read. */
const COALESCE_MS = 120

export const createRunList = (client: Client, filter: () => RunFilter) => {
  const [state, setState] = createStore<{ rows: Array<RunView> }>({ rows: [] })
  const [loading, setLoading] = createSignal(true)
  const [error, setError] = createSignal<string | null>(null)
  /** Where the next page of older runs starts; null when every run under the filter is listed. */
  const [cursor, setCursor] = createSignal<string | null>(null)
  let fetching = false
  const known = new Map<string, RunView>()
  const marked = new Set<string>()
  let timer: ReturnType<typeof setTimeout> | undefined
  let started = false

  /** Where each listed run is in `state.rows`, as the last publish left them. */
  let index = new Map<string, number>()
  const publish = () => {
    const f = filter()
    const rows = [...known.values()].filter((r) => matches(r, f)).sort(order)
    index = new Map(rows.map((r, i) => [r.id, i]))
    setState("rows", reconcile(rows, { key: "id" }))
  }
  /**
   * A listed run changed and stays where it is (still under the filter; the order is by creation, which does not
   * change): its row alone is reconciled. Reconciling the whole list walks every run (over 10,000 after scrolling a
   * while, tens of milliseconds each time), too slow for a busy tenant's stream (bench/Cockpit.ts).
   */
  const patch = (run: RunView) => {
    const i = index.get(run.id)
    if (i === undefined || !matches(run, filter())) return publish()
    setState("rows", i, reconcile(run))
  }

  /** Lists since the last one started: an older list that answers late is dropped. */
  let generation = 0

  const load = async () => {
    const mine = ++generation
    setLoading(true)
    try {
      const page = await client.listRuns(filter())
      if (mine !== generation) return
      known.clear()
      for (const run of page.items) known.set(run.id, run)
      setCursor(page.nextCursor)
      setError(null)
    } catch (e) {
      if (mine === generation) setError(e instanceof Error ? e.message : String(e))
    } finally {
      if (mine === generation) {
        setLoading(false)
        publish()
      }
    }
  }

  /**
   * The first page again, merged into what is listed. The list reads projections a moment behind the journal, and
   * the stream starts at the journal's present: a run the list was behind on, whose events came before the stream
   * started, is found by listing again a moment later (and every RELIST_MS after, as a safety net).
   */
  const relist = async () => {
    const mine = generation
    try {
      const page = await client.listRuns(filter())
      if (mine !== generation) return
      for (const run of page.items) {
        const had = known.get(run.id)
        if (had === undefined || had.updatedAt <= run.updatedAt) known.set(run.id, run)
      }
      publish()
    } catch {
      // the next one, or the stream, will do
    }
  }
  const relists = [setTimeout(relist, CATCH_UP_MS), setInterval(relist, RELIST_MS)]
  onCleanup(() => relists.forEach((t) => clearTimeout(t)))

  /** The next page of older runs, added below the ones listed (once at a time). */
  const more = async () => {
    const from = cursor()
    if (from === null || fetching) return
    fetching = true
    const mine = generation
    try {
      const page = await client.listRuns(filter(), 200, from)
      if (mine !== generation) return
      for (const run of page.items) if (!known.has(run.id)) known.set(run.id, run)
      setCursor(page.nextCursor)
      publish()
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e))
    } finally {
      fetching = false
    }
  }

  const flush = async () => {
    timer = undefined
    const ids = [...marked]
    marked.clear()
    const changed: Array<RunView> = []
    let added = false
    await Promise.all(ids.map(async (id) => {
      try {
        const run = await client.getRun(id)
        const had = known.get(id)
        // a read that an older read overtook does not win
        if (had === undefined || had.updatedAt <= run.updatedAt) {
          known.set(id, run)
          if (had === undefined) added = true
          else changed.push(run)
        }
      } catch (e) {
        if (!(e instanceof ApiError && e.status === 404)) marked.add(id)
      }
    }))
    // a new run takes its place in the order: the list is published again; a known one changes in its row
    if (added) publish()
    else for (const run of changed) patch(run)
    if (marked.size > 0 && timer === undefined) timer = setTimeout(flush, 1000)
  }

  const stream = createEventStream("/v1/stream", {
    token: client.token,
    onMessage: (m) => {
      if (m.event === "ready") {
        // the first connection lists the runs from where the stream starts; a resumed one misses nothing
        if (!started) {
          started = true
          void load()
        }
        return
      }
      if (m.event === "error" || m.event === "message") return
      const activity = JSON.parse(m.data) as RunActivity
      const row = known.get(activity.runId)
      if (row !== undefined && row.status !== activity.status) {
        const next = { ...row, status: activity.status }
        known.set(activity.runId, next)
        patch(next)
      }
      marked.add(activity.runId)
      if (timer === undefined) timer = setTimeout(flush, COALESCE_MS)
    }
  })
  onCleanup(() => clearTimeout(timer))

  return {
    rows: () => state.rows,
    loading,
    error: () => error() ?? stream.error()?.message ?? null,
    live: stream.readyState,
    /** The filter changed: list again under it. */
    reload: load,
    /** Only the time filter changed: the runs listed are filtered again, the newest first already being there. */
    refilter: publish,
    /** Whether older runs remain to be listed, and listing the next page of them. */
    hasMore: () => cursor() !== null,
    more
  }
}

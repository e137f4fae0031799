// A live list of rows (runs, tasks): a page of the list once the stream says where it starts, then every frame of
// that stream may change its row at once (`apply`) and marks it to be read again (a burst of one row's frames costs
// one read), so rows change in place and keep their identity (createStore + reconcile); new rows take their place in
// the order without a reload. Lists are read from projections a moment behind the journal, and the stream starts at
// the journal's present: the first page is listed again a moment later, and now and again after, as a safety net.
import { createSignal, onCleanup } from "solid-js"
import { createStore, reconcile } from "solid-js/store"
import { ApiError } from "./api.ts"
import { createEventStream } from "./sse.ts"

/** What a live list holds: an id, a creation time that orders it and a last change that says which read is newer. */
export interface Row {
  readonly id: string
  readonly createdAt: string
  readonly updatedAt: string
}

/** Newest first by creation time, ties by id (descending; ids are time-ordered), as the API lists runs and tasks. */
export const newestFirst = (a: Row, b: Row): number =>
  a.createdAt === b.createdAt ? (a.id < b.id ? 1 : a.id > b.id ? -1 : 0) : a.createdAt < b.createdAt ? 1 : -1

export interface Page<T> {
  readonly items: ReadonlyArray<T>
  /** Where the next page of older rows starts; null (or absent) when there is none. */
  readonly nextCursor?: string | null
}

/** What a frame of the stream says: the row it is about and, when it can, the row as it leaves it before a read. */
export interface Frame<T> {
  readonly id: string
  readonly apply?: (row: T) => T
}

export interface Source<T extends Row, F> {
  /** The SSE path (its `ready` frame says where the stream starts). */
  readonly stream: string
  readonly token: string
  /** A page of the list under `filter`: the first (cursor null) or the one starting at `cursor`. */
  readonly list: (filter: F, cursor: string | null) => Promise<Page<T>>
  readonly get: (id: string) => Promise<T>
  readonly matches: (row: T, filter: F) => boolean
  /** A frame's data: the row it marks, or null for a frame about no row (passed to `onOther`). */
  readonly frame: (data: string) => Frame<T> | null
  /** Every frame's data, after it is applied. */
  readonly onFrame?: (data: string) => void
}

/** When the first page is listed again: projections are this far behind the journal at most, in practice. */
const CATCH_UP_MS = 2_000
const RELIST_MS = 30_000
/** Re-reads of marked rows wait this long, so a burst of events of one row costs one read. */
const COALESCE_MS = 120

export const createLiveList = <T extends Row, F>(source: Source<T, F>, filter: () => F) => {
  const [state, setState] = createStore<{ rows: Array<T> }>({ rows: [] })
  const [loading, setLoading] = createSignal(true)
  const [error, setError] = createSignal<string | null>(null)
  /** Where the next page of older rows starts; null when every row under the filter is listed. */
  const [cursor, setCursor] = createSignal<string | null>(null)
  let fetching = false
  const known = new Map<string, T>()
  const marked = new Set<string>()
  let timer: ReturnType<typeof setTimeout> | undefined
  let started = false
  /** Lists since the last one started: an older list that answers late is dropped. */
  let generation = 0

  /** Where each listed row is in `state.rows`, as the last publish left them. */
  let index = new Map<string, number>()
  const publish = () => {
    const f = filter()
    const rows = [...known.values()].filter((r) => source.matches(r, f)).sort(newestFirst)
    index = new Map(rows.map((r, i) => [r.id, i]))
    setState("rows", reconcile(rows, { key: "id" }))
  }
  /**
   * A listed row changed and stays where it is (still under the filter; the order is by creation, which does not
   * change): its row alone is reconciled. Reconciling the whole list walks every row (over 10,000 after scrolling a
   * while, tens of milliseconds each time), too slow for a busy tenant's stream (bench/Cockpit.ts).
   */
  const patch = (row: T) => {
    const i = index.get(row.id)
    if (i === undefined || !source.matches(row, filter())) return publish()
    setState("rows", i, reconcile(row))
  }
  /** Keeps `row` unless what is known is newer (a read that an older read overtook does not win); whether it did. */
  const keep = (row: T): boolean => {
    const had = known.get(row.id)
    if (had !== undefined && had.updatedAt > row.updatedAt) return false
    known.set(row.id, row)
    return true
  }

  const load = async () => {
    const mine = ++generation
    setLoading(true)
    try {
      const page = await source.list(filter(), null)
      if (mine !== generation) return
      known.clear()
      for (const row of page.items) known.set(row.id, row)
      setCursor(page.nextCursor ?? null)
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

  /** The first page again, merged into what is listed (see the top of this file). */
  const relist = async () => {
    const mine = generation
    try {
      const page = await source.list(filter(), null)
      if (mine !== generation) return
      for (const row of page.items) keep(row)
      publish()
    } catch {
      // the next one, or the stream, will do
    }
  }
  const relists = [setTimeout(relist, CATCH_UP_MS), setInterval(relist, RELIST_MS)]
  onCleanup(() => relists.forEach((t) => clearTimeout(t)))

  /** The next page of older rows, added below the ones listed (once at a time). */
  const more = async () => {
    const from = cursor()
    if (from === null || fetching) return
    fetching = true
    const mine = generation
    try {
      const page = await source.list(filter(), from)
      if (mine !== generation) return
      for (const row of page.items) if (!known.has(row.id)) known.set(row.id, row)
      setCursor(page.nextCursor ?? null)
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
    const changed: Array<T> = []
    let added = false
    await Promise.all(ids.map(async (id) => {
      try {
        const row = await source.get(id)
        const isNew = !known.has(id)
        if (!keep(row)) return
        if (isNew) added = true
        else changed.push(row)
      } catch (e) {
        if (!(e instanceof ApiError && e.status === 404)) marked.add(id)
      }
    }))
    // a new row takes its place in the order: the list is published again; a known one changes in its row
    if (added) publish()
    else for (const row of changed) patch(row)
    if (marked.size > 0 && timer === undefined) timer = setTimeout(flush, 1000)
  }

  const stream = createEventStream(source.stream, {
    token: source.token,
    onMessage: (m) => {
      if (m.event === "ready") {
        // the first connection lists the rows from where the stream starts; a resumed one misses nothing
        if (!started) {
          started = true
          void load()
        }
        return
      }
      if (m.event === "error" || m.event === "message") return
      const frame = source.frame(m.data)
      if (frame !== null) {
        const row = known.get(frame.id)
        const next = row === undefined || frame.apply === undefined ? row : frame.apply(row)
        if (next !== undefined && next !== row) {
          known.set(frame.id, next)
          patch(next)
        }
        marked.add(frame.id)
        if (timer === undefined) timer = setTimeout(flush, COALESCE_MS)
      }
      source.onFrame?.(m.data)
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
    /** Only a filter the list applies itself changed: the rows known are filtered again. */
    refilter: publish,
    /** Whether older rows remain to be listed, and listing the next page of them. */
    hasMore: () => cursor() !== null,
    more,
    /** A row as an action answered it, shown at once. */
    put: (row: T) => {
      keep(row)
      publish()
    }
  }
}

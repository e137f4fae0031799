// Which rows of a long list to render: those in the scrolled viewport and a margin around it, with the heights of
// the rows left out above and below (the list keeps its full scroll height, the DOM only what can be seen).

export interface Window {
  /** The first row rendered. */
  readonly start: number
  /** One past the last row rendered. */
  readonly end: number
  /** The height of the rows above `start`, in pixels. */
  readonly top: number
  /** The height of the rows from `end` on, in pixels. */
  readonly bottom: number
}

export const windowOf = (o: {
  readonly scrollTop: number
  readonly viewport: number
  readonly rowHeight: number
  readonly count: number
  readonly overscan: number
}): Window => {
  const start = Math.min(o.count, Math.max(0, Math.floor(o.scrollTop / o.rowHeight) - o.overscan))
  const end = Math.max(start, Math.min(o.count, Math.ceil((o.scrollTop + o.viewport) / o.rowHeight) + o.overscan))
  return { start, end, top: start * o.rowHeight, bottom: (o.count - end) * o.rowHeight }
}

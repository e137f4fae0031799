// Under `lantern dev` the page names its reload stream in a meta tag (edge/Cockpit.ts adds it there only): the page
// reloads when the cockpit has been rebuilt. Served by `lantern serve`, the page has no such tag and listens to nothing.

/** Listens for rebuilds when the page was served by `lantern dev`; whether it does. */
export const listenForReloads = (): boolean => {
  const path = document.querySelector<HTMLMetaElement>("meta[name=\"lantern-dev-reload\"]")?.content
  if (path === undefined || !path.startsWith("/")) return false
  const source = new EventSource(path)
  source.addEventListener("reload", () => location.reload())
  return true
}

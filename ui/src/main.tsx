// The cockpit's entry: one App rendered into #app (index.html loads this file as a module; nothing runs inline).
import { render } from "solid-js/web"
import { App } from "./App.tsx"
import { listenForReloads } from "./devReload.ts"
import "./style.css"

render(() => <App />, document.getElementById("app")!)
listenForReloads()

// One clock for everything on the page that refreshes itself (metrics
// history, logs, the node list, ...): one wake-up per refresh, its requests
// sent together and their results applied in one render, instead of a timer
// per panel, each waking the page and re-rendering it on its own.
//
// The clock stops while the tab is hidden (nobody sees it; the charts catch
// up from the node's ring when it shows again) and slows down when nobody
// has touched the page for a while (a console left open on a second screen
// still moves, every IDLE_POLL_MS).
export const POLL_MS = 2000;
export const IDLE_POLL_MS = 10000;
export const IDLE_AFTER_MS = 5 * 60 * 1000;

// A refresh task fetches, then returns what to apply (state setters), or
// nothing when nothing changed: the clock applies every task's result in
// one synchronous step, so Preact renders the page once per refresh.
export type Task = () => Promise<(() => void) | void>;

// Each task with the least time between its runs (0: every refresh), when
// it last started and whether it is running (a task never runs twice at once).
interface Entry {
  minMs: number;
  last: number;
  busy: boolean;
  soon: boolean;  // asked to run at once (runSoon), maybe while busy
}
const tasks = new Map<Task, Entry>();
let timer: number | undefined;
let soonQueued = false;
let lastInput = Date.now();
let started = false;

function interval(): number {
  return Date.now() - lastInput > IDLE_AFTER_MS ? IDLE_POLL_MS : POLL_MS;
}

// How often the page refreshes now, for the pages to say so.
export function refreshSeconds(): number {
  return interval() / 1000;
}

function visible() {
  return document.visibilityState !== "hidden";
}

function schedule() {
  if (timer !== undefined) window.clearTimeout(timer);
  timer = undefined;
  if (tasks.size > 0 && visible()) timer = window.setTimeout(() => void tick(), interval());
}

async function run(which: (e: Entry) => boolean) {
  const now = Date.now();
  const due: Task[] = [];
  for (const [t, e] of tasks) {
    if (e.busy || !(e.soon || which(e))) continue;
    e.last = now;
    e.busy = true;
    e.soon = false;
    due.push(t);
  }
  if (due.length === 0) return;
  const results = await Promise.all(due.map((t) => t().catch(() => undefined)));
  let more = false;
  for (const t of due) {
    const e = tasks.get(t);
    if (e) e.busy = false;
    if (e?.soon) more = true;
  }
  // Only for tasks still registered: a removed one's page is gone.
  results.forEach((apply, i) => apply && tasks.has(due[i]) && apply());
  if (more) soon();
}

// Runs the tasks asked for (new ones, runSoon) a microtask later, so the
// tasks one render adds share one first run.
function soon() {
  if (soonQueued) return;
  soonQueued = true;
  queueMicrotask(() => {
    soonQueued = false;
    void run(() => false);
    if (timer === undefined) schedule();
  });
}

async function tick() {
  if (timer !== undefined) window.clearTimeout(timer);
  timer = undefined;
  const now = Date.now();
  // Half a period of slack: a 5 s task on a 2 s clock runs every 6 s, not 8.
  await run((e) => now - e.last >= e.minMs - POLL_MS / 2);
  if (timer === undefined) schedule();
}

function start() {
  if (started) return;
  started = true;
  document.addEventListener("visibilitychange", () => {
    if (visible()) void tick();  // catch up at once
    else schedule();  // clears the timer
  });
  const touched = () => {
    const wasIdle = interval() === IDLE_POLL_MS;
    lastInput = Date.now();
    if (wasIdle && visible()) void tick();  // back from idle: fresh numbers at once
  };
  for (const ev of ["pointermove", "pointerdown", "keydown", "wheel", "focus"]) {
    window.addEventListener(ev, touched, { passive: true });
  }
}

// Adds a task to the clock: it runs at once and then on every refresh at
// least minMs after its last run, until the returned function removes it.
export function every(task: Task, minMs = 0): () => void {
  start();
  tasks.set(task, { minMs, last: 0, busy: false, soon: true });
  soon();
  return () => {
    tasks.delete(task);
    if (tasks.size === 0) schedule();
  };
}

// Runs a task of the clock now (once the run in flight, if any, is done):
// for a page that starts showing something new.
export function runSoon(task: Task) {
  const e = tasks.get(task);
  if (!e) return;
  e.soon = true;
  if (!e.busy) soon();
}

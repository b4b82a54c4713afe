/**
 * The process one run of one case lives in: forked by run.ts, it answers with one ChildMessage over
 * IPC and exits. Started by hand (e.g. under `node --cpu-prof`), it prints the message instead.
 * argv: <case name> <RunSettings as JSON>.
 */
import type { Metrics, RunSettings } from './case.js';
import { cases } from './cases.js';

/** What the child sends back. */
export type ChildMessage =
  | { readonly ok: true; readonly metrics: Metrics }
  | { readonly ok: false; readonly error: string };

// If run.ts dies, the IPC channel closes: stop rather than keep loading a shared machine.
process.on('disconnect', () => process.exit(1));

const [name, settingsJson] = process.argv.slice(2);
const found = cases.find((c) => c.name === name);

let message: ChildMessage;
try {
  if (found === undefined || settingsJson === undefined) throw new Error(`no case named ${name}`);
  const settings = JSON.parse(settingsJson) as RunSettings;
  message = { ok: true, metrics: await found.run(found.params, settings) };
} catch (error) {
  message = { ok: false, error: error instanceof Error ? (error.stack ?? error.message) : String(error) };
}
// Exit rather than wait for the event loop to drain: a case may leave idle keep-alive sockets behind.
const exit = () => process.exit(message.ok ? 0 : 1);
if (process.send === undefined) {
  process.stdout.write(`${JSON.stringify(message, null, 2)}\n`, exit);
} else {
  process.send(message, exit);
}

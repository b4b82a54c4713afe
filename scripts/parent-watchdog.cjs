// Preloaded into child servers started for tests, the demo and the benchmark (`node -r` this file).
// If the process that started us goes away without stopping us (crash, SIGKILL), exit too, so no
// server is ever left running on its own.
'use strict';
const parent = process.ppid;
setInterval(() => {
  let alive = process.ppid === parent;
  if (alive) {
    try {
      process.kill(parent, 0);
    } catch {
      alive = false;
    }
  }
  if (!alive) process.exit(0);
}, 500).unref();

/**
 * Graceful shutdown: on SIGTERM (or Ctrl-C), stop taking work, then close the producer — it sends
 * what is buffered and waits for every record to settle, giving up after a deadline so the process
 * never hangs. Node then exits on its own: the producer holds no timer or socket once closed.
 *
 *   STREAM_NAME=my-stream AWS_REGION=eu-west-1 npx tsx examples/graceful-shutdown.ts
 *   npm run example -- graceful-shutdown         # against a local Kinesis started for it
 *
 * Either way it sends for a moment, then stops itself with SIGTERM.
 */
import { KinesisProducer } from 'kinesis-producer';

const producer = new KinesisProducer({
  streamName: process.env.STREAM_NAME ?? 'example-stream',
  ...(process.env.KINESIS_ENDPOINT ? { endpoint: process.env.KINESIS_ENDPOINT } : {}),
});

let stored = 0;
let failed = 0;
producer.on('recordFailed', (error) => {
  failed++;
  console.error(`failed: ${error.code} ${error.message}`);
});

// The "application": emits a record every couple of milliseconds until it is told to stop.
let running = true;
let sent = 0;
const work = (async () => {
  while (running) {
    producer.send(
      { partitionKey: `sensor-${sent % 20}`, data: JSON.stringify({ reading: sent, at: Date.now() }) },
      (error) => {
        if (!error) stored++;
      },
    );
    sent++;
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
})();

async function shutdown(signal: string): Promise<void> {
  running = false;
  await work;
  console.log(
    `${signal}: stopped taking work after ${sent} records; ${producer.outstandingRecords} not yet settled`,
  );
  // Everything still buffered is sent; records not settled within 10 s fail with code CloseTimeout.
  await producer.close({ timeoutMs: 10_000 });
  console.log(`closed: ${stored} stored, ${failed} failed, ${producer.outstandingRecords} outstanding`);
  // No process.exit(): with the producer closed, nothing keeps Node running.
}

process.once('SIGTERM', () => void shutdown('SIGTERM'));
process.once('SIGINT', () => void shutdown('SIGINT'));

// For the demonstration, the process signals itself after a moment.
setTimeout(() => process.kill(process.pid, 'SIGTERM'), 1500).unref();

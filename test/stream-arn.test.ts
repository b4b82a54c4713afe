import { describe, expect, it } from 'vitest';
import { InvalidOptionError, InvalidRecordError, KinesisProducer } from '../src/index.js';
import { FakeKinesis } from './support/fake-kinesis.js';

// README: "an ARN not of the form arn:<partition>:kinesis:<region>:<12-digit account>:stream/<name>
// ... is refused where it is given", a <name> being 1-128 characters of a-z A-Z 0-9 _ . -
const notStreamArns = [
  // an enhanced fan-out consumer's ARN, copied by mistake
  'arn:aws:kinesis:us-east-1:123456789012:stream/orders/consumer/app:1700000000',
  // no region
  'arn:aws:kinesis::123456789012:stream/orders',
  // a stream name no stream can have
  'arn:aws:kinesis:us-east-1:123456789012:stream/or:ders',
  `arn:aws:kinesis:us-east-1:123456789012:stream/${'a'.repeat(129)}`,
  // not a partition
  'arn:awsome:kinesis:us-east-1:123456789012:stream/orders',
];

describe('stream ARNs that name no stream', () => {
  it.each(notStreamArns)('the constructor refuses %s', (arn) => {
    const client = new FakeKinesis(1).client;
    expect(() => new KinesisProducer({ streamARN: arn, client })).toThrow(InvalidOptionError);
  });

  it.each(notStreamArns)('put() refuses a record naming %s', async (arn) => {
    const client = new FakeKinesis(1).client;
    const producer = new KinesisProducer({ client });
    await expect(producer.put({ partitionKey: 'k', data: 'x', streamARN: arn })).rejects.toBeInstanceOf(
      InvalidRecordError,
    );
    await producer.close({ timeoutMs: 10 }).catch(() => {});
  });
});

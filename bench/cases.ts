/**
 * Every benchmark case, in the order run.ts runs and reports them. To add cases, write a module that
 * exports them (see bench/README.md) and spread its list in here.
 */
import { awaitFloorCases } from './await-floor.js';
import type { Case } from './case.js';
import { codecCases } from './codec.js';
import { deaggregationCases } from './deaggregation.js';
import { latencyCases } from './latency.js';
import { memoryCases } from './memory.js';
import { producerSendingCases } from './producer-sending.js';
import { sdkPeerCases } from './sdk-peers.js';
import { shardLimitCases } from './shard-limit.js';
import { skewCases } from './skew.js';

export const cases: readonly Case[] = [
  ...codecCases,
  ...deaggregationCases,
  ...sdkPeerCases,
  ...producerSendingCases,
  ...awaitFloorCases,
  ...latencyCases,
  ...memoryCases,
  ...shardLimitCases,
  ...skewCases,
];

/**
 * Every benchmark case, in the order run.ts runs and reports them. To add cases, write a module that
 * exports them (see bench/README.md) and spread its list in here.
 */
import type { Case } from './case.js';
import { codecCases } from './codec.js';
import { sdkPeerCases } from './sdk-peers.js';

export const cases: readonly Case[] = [...codecCases, ...sdkPeerCases];

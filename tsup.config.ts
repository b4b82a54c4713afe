import { defineConfig } from 'tsup';

// p-retry (and its one dependency) ship only as ES modules. The ESM build imports them; the CJS build
// bundles them, so `require('kinesis-producer')` works on every supported Node without require(esm).
const esmOnly = ['p-retry', 'is-network-error'];

export default defineConfig([
  {
    entry: { index: 'src/index.ts' },
    format: ['esm'],
    target: 'node20',
    platform: 'node',
    dts: true,
    sourcemap: true,
    treeshake: true,
  },
  {
    entry: { index: 'src/index.ts' },
    format: ['cjs'],
    target: 'node20',
    platform: 'node',
    dts: true,
    sourcemap: true,
    treeshake: true,
    noExternal: esmOnly,
  },
]);

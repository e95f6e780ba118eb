// Run by `junction build` for a JavaScript plugin: bundles the project's
// entry module with rolldown (the SDK aliased to the copy this junction
// ships, `junction:` imports left to the component model), then turns the
// bundle into a component of the `plugin` world with componentize-js.
// One argument: a JSON object {toolchain, entry, sdk, wit, bundle, out}.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const args = JSON.parse(process.argv[2]);
const load = (path) => import(pathToFileURL(join(args.toolchain, 'node_modules', path)).href);
const { rolldown } = await load('rolldown/dist/index.mjs');
const { componentize } = await load('@bytecodealliance/componentize-js/src/componentize.js');

const bundle = await rolldown({
  input: args.entry,
  external: [/^junction:/],
  platform: 'neutral',
  resolve: { alias: { 'junction-sdk': args.sdk } },
  logLevel: 'warn',
});
await bundle.write({ file: args.bundle, format: 'esm', codeSplitting: false });
await bundle.close();

const { component } = await componentize({
  sourcePath: args.bundle,
  witPath: args.wit,
  worldName: 'plugin',
  // The plugin world has no wasi:http; the host gives HTTP through invoke-url.
  disableFeatures: ['http', 'fetch-event'],
});
await writeFile(args.out, component);

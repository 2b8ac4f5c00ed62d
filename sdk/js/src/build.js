#!/usr/bin/env node
// recharge-policy-build POLICY.js -o OUT.wasm [--wit DIR]
//
// Bundles the policy module (its default export implements `PolicyRules`) with
// the SDK's adapter into one ES module, then runs componentize-js over the
// contract with every WASI feature disabled, so the component imports only the
// recharge:policy interfaces: no stdio, clocks, randomness, HTTP or files.

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { componentize } from '@bytecodealliance/componentize-js';
import { rolldown } from 'rolldown';

const SDK = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const WORLD = 'recharge-policy';
/** componentize-js 0.23's whole feature list: a policy gets none of them. */
const DISABLED = ['stdio', 'random', 'clocks', 'http', 'fetch-event'];
const USAGE = 'usage: recharge-policy-build POLICY.js -o OUT.wasm [--wit DIR]';

function parseArgs(args) {
  const options = { wit: join(SDK, 'wit') };
  for (let at = 0; at < args.length; at += 1) {
    const arg = args[at];
    if (arg === '-o' || arg === '--out') options.out = args[++at];
    else if (arg === '--wit') options.wit = args[++at];
    else if (arg === '-h' || arg === '--help') options.help = true;
    else if (!arg.startsWith('-') && !options.policy) options.policy = arg;
    else throw new Error(`unexpected argument ${arg}\n${USAGE}`);
  }
  if (!options.help && (!options.policy || !options.out)) throw new Error(USAGE);
  return options;
}

/** The policy and the adapter as one module, `@recharge/policy-sdk` resolved to this SDK. */
async function bundle(policy, into) {
  const entry = join(into, 'entry.js');
  await writeFile(
    entry,
    `import rules from ${JSON.stringify(policy)};\n` +
      `import { exportPolicy } from ${JSON.stringify(join(SDK, 'src', 'component.js'))};\n` +
      'export const policy = exportPolicy(rules);\n',
  );
  const sdkModules = {
    '@recharge/policy-sdk': join(SDK, 'src', 'index.js'),
    '@recharge/policy-sdk/component': join(SDK, 'src', 'component.js'),
  };
  const build = await rolldown({
    input: entry,
    platform: 'neutral',
    external: [/^recharge:policy\//],
    plugins: [{ name: 'recharge-policy-sdk', resolveId: (id) => sdkModules[id] ?? null }],
  });
  const file = join(into, 'policy.bundle.js');
  await build.write({ file, format: 'esm' });
  await build.close();
  return file;
}

async function main() {
  const options = parseArgs(process.argv.slice(2));
  if (options.help) return console.log(USAGE);
  const started = Date.now();
  const work = await mkdtemp(join(tmpdir(), 'recharge-policy-'));
  try {
    const source = await bundle(resolve(options.policy), work);
    const { component } = await componentize({
      sourcePath: source,
      witPath: resolve(options.wit),
      worldName: WORLD,
      disableFeatures: DISABLED,
    });
    await writeFile(options.out, component);
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    console.log(`${options.out}: ${component.length} bytes in ${seconds} s`);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

main().catch((error) => {
  console.error(`recharge-policy-build: ${error.message ?? error}`);
  process.exitCode = 1;
});

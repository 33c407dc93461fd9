// Builds the addon with node-gyp against the headers of the running Node (no download).
// MULTIPROC_SANITIZE=1 builds with AddressSanitizer and UBSan into build/ (see README).
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const root = join(dirname(new URL(import.meta.url).pathname), '..');

/** The prefix holding include/node/node_api.h for this Node, or undefined to let node-gyp decide. */
export function localNodeDir() {
  const candidates = [process.env.npm_config_nodedir, dirname(dirname(process.execPath)), '/usr', '/usr/local'];
  return candidates.find((d) => d && existsSync(join(d, 'include', 'node', 'node_api.h')));
}

export function nodeGyp(args, env = {}) {
  const gyp = require.resolve('node-gyp/bin/node-gyp.js');
  const nodedir = localNodeDir();
  const full = [gyp, ...args, ...(nodedir ? [`--nodedir=${nodedir}`] : [])];
  const r = spawnSync(process.execPath, full, { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const sanitize = process.env.MULTIPROC_SANITIZE === '1';
  const env = sanitize
    ? { CXXFLAGS: '-fsanitize=address,undefined -fno-omit-frame-pointer -g', LDFLAGS: '-fsanitize=address,undefined' }
    : {};
  const gyp = join(root, 'binding.gyp');
  const configured = join(root, 'build', 'config.gypi');
  const fresh = !existsSync(configured) || statSync(gyp).mtimeMs > statSync(configured).mtimeMs
    || existsSync(join(root, 'build', 'sanitize')) !== sanitize;
  nodeGyp([fresh ? 'rebuild' : 'build', '-j', '2'], env);
  if (sanitize) spawnSync('touch', [join(root, 'build', 'sanitize')]);
}

// Builds the prebuilt binaries that the published package ships (run by `prepack`):
// prebuilds/<platform>-<arch>/multiproc.node for this machine and, on Linux, for the other
// architectures a cross compiler is installed for (g++-aarch64-linux-gnu for linux-arm64).
//
// Each binary is a clean Release build made in a throwaway directory, never build/ (which may hold
// a Debug or an AddressSanitizer build, see build-native.mjs), with compiler flags from the
// environment ignored, then stripped and checked: the right ELF machine, no sanitizer runtime, and
// nothing undefined but libc/libstdc++ symbols and what node provides (Node-API, libuv). NAPI_VERSION is pinned in
// binding.gyp, so one binary per platform serves every Node >= 20.
//
// MULTIPROC_PREBUILD_CROSS=0 skips the cross builds (faster local packs).
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nodeGyp } from './build-native.mjs';

const require = createRequire(import.meta.url);
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const prebuilds = join(root, 'prebuilds');
const hostTag = `${process.platform}-${process.arch}`;

/** Linux targets other than the host that can be cross-built: node arch -> GNU triplet and Debian package. */
const LINUX_CROSS = {
  arm64: { triplet: 'aarch64-linux-gnu', pkg: 'g++-aarch64-linux-gnu', machine: /ARM aarch64|AArch64/ },
  x64: { triplet: 'x86_64-linux-gnu', pkg: 'g++-x86-64-linux-gnu', machine: /x86-64|X86-64/ },
};

/** What binding.gyp builds from, copied into each throwaway build directory. */
const BUILD_INPUTS = ['binding.gyp', 'native'];

const scratch = [];
process.on('exit', () => { for (const d of scratch) rmSync(d, { recursive: true, force: true }); });

function log(msg) { console.log(`prebuild: ${msg}`); }

function fail(msg) {
  console.error(`prebuild: ERROR: ${msg}`);
  process.exit(1);
}

function has(cmd) {
  return spawnSync('sh', ['-c', `command -v "$1"`, 'sh', cmd], { stdio: 'ignore' }).status === 0;
}

function run(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.error || r.status !== 0) fail(`${cmd} ${args.join(' ')} failed: ${r.error?.message ?? r.stderr}`);
  return r.stdout;
}

/**
 * Builds Release in a fresh copy of binding.gyp + native/ and returns the path of the (unstripped)
 * binary. `toolchain` (cross builds) is { arch, triplet }.
 */
function build(toolchain) {
  const dir = mkdtempSync(join(tmpdir(), 'multiproc-prebuild-'));
  scratch.push(dir);
  for (const src of BUILD_INPUTS) cpSync(join(root, src), join(dir, src), { recursive: true });
  // binding.gyp runs `node -p "require('node-addon-api').include_dir"` from the build dir.
  const addonApi = dirname(dirname(require.resolve('node-addon-api/package.json')));
  const env = {
    NODE_PATH: [addonApi, process.env.NODE_PATH].filter(Boolean).join(':'),
    // Whatever the caller exported (sanitizers, -g, -O0) stays out of the shipped binary.
    CFLAGS: '', CXXFLAGS: '', CPPFLAGS: '', LDFLAGS: '', MULTIPROC_SANITIZE: '',
  };
  const args = ['rebuild', '--release', `--directory=${dir}`, '-j', String(availableParallelism()), '--loglevel=warn'];
  if (toolchain) {
    const t = toolchain.triplet;
    Object.assign(env, { CC: `${t}-gcc`, CXX: `${t}-g++`, LINK: `${t}-g++`, AR: `${t}-ar` });
    args.push(`--arch=${toolchain.arch}`);
  }
  nodeGyp(args, env); // exits on failure
  const out = join(dir, 'build', 'Release', 'multiproc.node');
  if (!existsSync(out)) fail(`node-gyp succeeded but ${out} is missing`);
  return out;
}

/** Strips, checks and installs `binary` as prebuilds/<tag>/multiproc.node. `tools` prefixes binutils ('' or 'aarch64-linux-gnu-'). */
function ship(binary, tag, { tools = '', machine } = {}) {
  if (process.platform === 'linux') {
    if (has(`${tools}strip`)) run(`${tools}strip`, ['--strip-unneeded', binary]);
    else log(`${tools}strip not found: ${tag} binary is shipped unstripped`);
  } else if (process.platform === 'darwin') {
    run('strip', ['-x', binary]);
  }

  const notes = [];
  if (process.platform === 'linux') {
    if (machine) {
      // `file` says "ARM aarch64"; without it, readelf -h says "Machine: AArch64".
      const what = has('file') ? run('file', ['-b', binary]).trim() : /Machine:\s*(.*)/.exec(run(`${tools}readelf`, ['-h', binary]))?.[1] ?? '';
      if (!machine.test(what)) fail(`${tag}: expected ${machine}, got a binary for: ${what}`);
      notes.push(what.split(',').slice(0, 2).join(','));
    }
    if (has(`${tools}readelf`)) {
      const needed = [...run(`${tools}readelf`, ['-d', binary]).matchAll(/\(NEEDED\)\s+Shared library: \[(.+?)\]/g)].map((m) => m[1]);
      const bad = needed.filter((l) => /asan|ubsan|tsan|lsan/.test(l));
      if (bad.length) fail(`${tag}: binary links a sanitizer runtime (${bad.join(', ')})`);
      notes.push(`needs ${needed.join(' ')}`);
    }
    if (has(`${tools}nm`)) {
      // Undefined dynamic symbols: versioned ones come from libc/libstdc++/libgcc; unversioned ones must be
      // resolved by the node process: Node-API, and the libuv 1.x calls of the fd watcher (native/channel.cc).
      const undef = run(`${tools}nm`, ['-D', '--undefined-only', binary]).split('\n').map((l) => l.trim().split(/\s+/)).filter((f) => f.length === 2);
      const fromNode = /^(napi|node_api|uv)_/;
      const stray = undef.filter(([kind, sym]) => kind === 'U' && !sym.includes('@') && !fromNode.test(sym)).map(([, s]) => s);
      if (stray.length) fail(`${tag}: unexpected unversioned undefined symbols: ${stray.join(', ')}`);
      if (undef.some(([, s]) => s.startsWith('__asan') || s.startsWith('__ubsan'))) fail(`${tag}: binary has sanitizer instrumentation`);
      const max = (prefix) => undef.map(([, s]) => s.split('@').pop()).filter((v) => v.startsWith(prefix + '_') && /^[A-Z]+_\d/.test(v))
        .map((v) => v.slice(prefix.length + 1)).sort((a, b) => a.localeCompare(b, 'en', { numeric: true })).pop();
      notes.push(`GLIBC >= ${max('GLIBC') ?? '?'}, GLIBCXX >= ${max('GLIBCXX') ?? '?'}, CXXABI >= ${max('CXXABI') ?? '?'}`);
      // The oldest Linux that official Node 20 binaries run on has glibc 2.28 and GCC 8's libstdc++
      // (3.4.25): a prebuild needing more would fail to load there with a bare dlopen error.
      const newer = (v, limit) => v !== undefined && v.localeCompare(limit, 'en', { numeric: true }) > 0;
      if (newer(max('GLIBC'), '2.28') || newer(max('GLIBCXX'), '3.4.25')) {
        fail(`${tag}: binary needs GLIBC ${max('GLIBC')} / GLIBCXX ${max('GLIBCXX')}, newer than Node 20's floor (2.28 / 3.4.25); avoid the symbol that brings it in`);
      }
      const count = (re) => undef.filter(([, s]) => re.test(s)).length;
      notes.push(`imports ${count(/^(napi|node_api)_/)} Node-API + ${count(/^uv_/)} libuv functions from node`);
    }
  }

  const dest = join(prebuilds, tag, 'multiproc.node');
  mkdirSync(dirname(dest), { recursive: true });
  cpSync(binary, dest + '.tmp');
  renameSync(dest + '.tmp', dest);

  if (tag === hostTag) {
    // The host binary must load in this Node and export the contract of lib/native.ts.
    const probe = `const m = require(${JSON.stringify(dest)}); if (typeof m.Channel !== 'function' || typeof m.pipe !== 'function') throw new Error('bad exports: ' + Object.keys(m));`;
    const r = spawnSync(process.execPath, ['-e', probe], { encoding: 'utf8' });
    if (r.status !== 0) fail(`${tag}: the built binary does not load: ${r.stderr}`);
    notes.push('loads in ' + process.version);
  }
  log(`${tag}: ${dest.slice(root.length + 1)} (${(statSync(dest).size / 1024).toFixed(0)} KiB; ${notes.join('; ')})`);
  return tag;
}

// node-gyp lets npm_config_* and npm_package_config_node_gyp_* variables override its command line
// (e.g. npm_config_debug, npm_config_arch): only our own arguments decide what gets shipped.
for (const key of Object.keys(process.env)) {
  if (/^npm_(config|package_config_node_gyp)_(debug|arch|target|target_arch|dist_url|directory|thin|jobs)$/i.test(key)) delete process.env[key];
}

const built = [];
const t0 = Date.now();
built.push(ship(build(null), hostTag));

if (process.platform === 'linux') {
  for (const [arch, tc] of Object.entries(LINUX_CROSS)) {
    if (arch === process.arch) continue;
    const tag = `linux-${arch}`;
    if (process.env.MULTIPROC_PREBUILD_CROSS === '0') {
      log(`${tag}: skipped (MULTIPROC_PREBUILD_CROSS=0)`);
    } else if (has(`${tc.triplet}-g++`)) {
      built.push(ship(build({ arch, triplet: tc.triplet }), tag, { tools: `${tc.triplet}-`, machine: tc.machine }));
      continue;
    } else if (arch === 'arm64') {
      // Only arm64 is worth a line: x64 from an arm64 host is the rarer case.
      log(`${tag}: skipped, no ${tc.triplet}-g++ (to ship it too: apt-get install ${tc.pkg})`);
    }
  }
}

// Binaries not built by this run (e.g. collected from other CI runners into prebuilds/) ship as
// found, unless they are older than the sources: that is a leftover of an earlier pack.
const newestSource = Math.max(...BUILD_INPUTS.flatMap((p) => {
  const full = join(root, p);
  const files = statSync(full).isDirectory() ? readdirSync(full, { recursive: true }).map((f) => join(full, f)) : [full];
  return files.map((f) => statSync(f).mtimeMs);
}));
const foreign = existsSync(prebuilds) ? readdirSync(prebuilds).filter((d) => !built.includes(d)) : [];
for (const tag of foreign) {
  const bin = join(prebuilds, tag, 'multiproc.node');
  if (existsSync(bin) && statSync(bin).mtimeMs < newestSource) {
    fail(`prebuilds/${tag}/multiproc.node was not rebuilt by this run and is older than the sources in ${BUILD_INPUTS.join(', ')}: ` +
      `rebuild it, or remove prebuilds/${tag} to publish without it.`);
  }
}
if (foreign.length) log(`also shipping, as found (not built here): ${foreign.map((d) => `prebuilds/${d}`).join(', ')}`);
log(`done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

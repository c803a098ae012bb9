/**
 * The install proof: the tarballs in dist/ (scripts/package.sh) are
 * published to a local registry (verdaccio, installed from
 * scripts/registry/package-lock.json) and installed into fresh projects
 * outside the repository, with no Zig reachable, the way a user would:
 *
 * 1. a Bun project `bun add shm-cache`, imports it by name and writes; the
 *    same app compiled by `bun build --compile`, with the library embedded,
 *    runs with no node_modules;
 * 2. a Deno project imports `npm:shm-cache` and reads what Bun wrote, with
 *    only --allow-ffi, --allow-read and --allow-env;
 * 3. `mod.ts` served over http (as JSR serves it), cached by `deno install`,
 *    runs under Deno `--cached-only`, finds the platform package through
 *    its `npm:` specifier and reads it too;
 * 4. the installed CLI (`shm-cache`, under Bun and under Deno) lists the
 *    cache, prints its stats with every process's hits summed, verifies it.
 *
 * Run by scripts/package-test.sh, not by `deno test tests/`. Deno only.
 *
 * @module
 */

import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, extname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { VERSION } from "../../lib/ffi/platform.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const DIST = join(ROOT, "dist");
const BIN = join(ROOT, "node_modules/.bin");
const VERDACCIO = join(ROOT, "scripts/registry/node_modules/verdaccio/bin/verdaccio");
const STEP_TIMEOUT_MS = 180_000;

/** PATH with only the directories of node, bun and deno: no Zig on it. */
function pathWithoutZig(): string {
  const dirs = new Set([BIN]);
  for (const dir of (Deno.env.get("PATH") ?? "").split(delimiter)) {
    if (existsSync(join(dir, "node")) && !existsSync(join(dir, "zig"))) dirs.add(dir);
  }
  for (const dir of dirs) assert.ok(!existsSync(join(dir, "zig")), `zig in ${dir}`);
  return [...dirs].join(delimiter);
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end (bounded), in a clean environment plus `env`. */
async function run(cmd: string, args: string[], cwd: string, env: Record<string, string>) {
  const out = await new Deno.Command(cmd, {
    args,
    cwd,
    clearEnv: true,
    env,
    stdin: "null",
    signal: AbortSignal.timeout(STEP_TIMEOUT_MS),
  }).output();
  const dec = new TextDecoder();
  const result: Run = {
    code: out.code,
    stdout: dec.decode(out.stdout),
    stderr: dec.decode(out.stderr),
  };
  return result;
}

function ok(result: Run, what: string): Run {
  assert.equal(
    result.code,
    0,
    `${what} failed (exit ${result.code}):\n${result.stdout}\n${result.stderr}`,
  );
  return result;
}

/** A free TCP port on 127.0.0.1, asked of the OS. */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/**
 * verdaccio on a free port, storage in `dir`. Our packages (`shm-cache`,
 * `@shm-cache/*`) exist only there; anything else (the library's own
 * dependencies) it fetches from `upstream`, the registry npm uses here.
 */
async function startRegistry(
  dir: string,
  upstream: string,
): Promise<{ url: string; stop: () => Promise<void> }> {
  const port = freePort();
  const config = join(dir, "config.yaml");
  writeFileSync(
    config,
    [
      `storage: ${join(dir, "storage")}`,
      `auth:`,
      `  htpasswd:`,
      `    file: ${join(dir, "htpasswd")}`,
      `uplinks:`,
      `  upstream:`,
      `    url: ${upstream}`,
      `packages:`,
      `  "shm-cache":`,
      `    access: $all`,
      `    publish: $authenticated`,
      `  "@shm-cache/*":`,
      `    access: $all`,
      `    publish: $authenticated`,
      `  "**":`,
      `    access: $all`,
      `    publish: $authenticated`,
      `    proxy: upstream`,
      `log: { type: stdout, format: json, level: info }`,
      "",
    ].join("\n"),
  );
  const child = new Deno.Command("node", {
    args: [VERDACCIO, "--config", config, "--listen", `127.0.0.1:${port}`],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stop = async () => {
    try {
      child.kill("SIGTERM");
    } catch {
      // already gone
    }
    await child.status;
  };
  // Ready when it logs its address (a line on stdout), or failed if it exits.
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  const deadline = setTimeout(() => child.kill("SIGKILL"), 60_000);
  try {
    while (!seen.includes(`127.0.0.1:${port}`)) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`verdaccio exited before listening:\n${seen}`);
      seen += value;
    }
  } catch (error) {
    await stop();
    throw error;
  } finally {
    clearTimeout(deadline);
  }
  // Keep draining its output so that it never blocks on a full pipe.
  (async () => {
    for (;;) if ((await reader.read()).done) break;
  })();
  child.stderr.pipeTo(new WritableStream());
  return { url: `http://127.0.0.1:${port}/`, stop };
}

/** Creates a registry user and returns an .npmrc that publishes as it. */
async function npmrcFor(registry: string, dir: string): Promise<string> {
  const response = await fetch(`${registry}-/user/org.couchdb.user:proof`, {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ name: "proof", password: "proof-password-1" }),
  });
  const body = await response.json();
  assert.ok(response.ok && body.token, `adding a registry user: ${JSON.stringify(body)}`);
  const hostPath = registry.replace(/^http:/, "");
  const npmrc = join(dir, "npmrc");
  writeFileSync(npmrc, `registry=${registry}\n${hostPath}:_authToken=${body.token}\n`);
  return npmrc;
}

const MIME: Record<string, string> = { ".ts": "application/typescript", ".js": "text/javascript" };

/** Serves mod.ts and lib/ of the repository over http, as JSR serves a package. */
function serveSources(): { url: string; server: Deno.HttpServer } {
  let port = 0;
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: (a) => port = a.port },
    (req) => {
      const path = decodeURIComponent(new URL(req.url).pathname).replace(/^\/+/, "");
      const allowed = (path === "mod.ts" || path.startsWith("lib/")) && !path.includes("..");
      const file = join(ROOT, path);
      if (!allowed || !existsSync(file)) return new Response("not found", { status: 404 });
      return new Response(readFileSync(file), {
        headers: { "content-type": MIME[extname(file)] ?? "application/octet-stream" },
      });
    },
  );
  return { url: `http://127.0.0.1:${port}/`, server };
}

const CACHE_OPTIONS = "{ dir: process.argv[2], capacity: 64, maxKeyBytes: 64, maxValueBytes: 256 }";

// Each app prints what it read and its own handle's hits.
const BUN_APP = `import process from "node:process";
import { SharedCache } from "shm-cache";
import { KeyvShmCache } from "shm-cache/keyv";
if (typeof KeyvShmCache !== "function") throw new Error("shm-cache/keyv");
using cache = SharedCache.open("proof", ${CACHE_OPTIONS});
cache.set("greeting", { from: "bun", n: 42 });
for (let i = 0; i < 3; i++) if (cache.get("greeting") === undefined) throw new Error("miss");
console.log(JSON.stringify({ value: cache.get("greeting"), hits: cache.stats().hits }));
`;

const denoApp = (specifier: string) =>
  `import process from "node:process";
import { SharedCache } from "${specifier}";
using cache = SharedCache.open("proof", ${CACHE_OPTIONS});
console.log(JSON.stringify({ value: cache.get("greeting"), hits: cache.stats().hits }));
`;

const GREETING = { from: "bun", n: 42 };

/** The value an app read (it must be Bun's) and its hits. */
function readBack(result: Run): number {
  const { value, hits } = JSON.parse(result.stdout.trim());
  assert.deepEqual(value, GREETING);
  assert.ok(Number.isInteger(hits) && hits > 0, `hits ${hits}`);
  return hits;
}

/** The root package carries JavaScript, types, README, LICENSE and its manifest only. */
async function checkRootTarball(tarball: string, env: Record<string, string>): Promise<void> {
  const listed = ok(await run("tar", ["tzf", tarball], DIST, env), "tar tzf").stdout.trim().split(
    "\n",
  );
  const allowed = /^package\/(.+\.js|.+\.d\.ts|README\.md|LICENSE|package\.json)$/;
  assert.deepEqual(listed.filter((f) => !allowed.test(f)), [], "unexpected files in the tarball");
  assert.deepEqual(listed.filter((f) => /\/(tests|bench|zig|scripts)\//.test(f)), []);
  assert.ok(listed.includes("package/mod.js") && listed.includes("package/mod.d.ts"));
}

Deno.test("install proof: Bun writes through `bun add shm-cache`, Deno reads through npm: and over http, the CLI sums them", async () => {
  const tarballs = [...Deno.readDirSync(DIST)].filter((e) => e.name.endsWith(".tgz"));
  assert.equal(tarballs.length, 7, "scripts/package.sh has run: 7 tarballs in dist/");
  const work = mkdtempSync(join(tmpdir(), "shm-cache-install-"));
  const cacheDir = join(work, "caches");
  Deno.mkdirSync(cacheDir, { mode: 0o700 });
  const path = pathWithoutZig();
  const home = join(work, "home");
  Deno.mkdirSync(home);
  const baseEnv = { PATH: path, HOME: home, DENO_NO_UPDATE_CHECK: "1", TMPDIR: work };
  let registry: Awaited<ReturnType<typeof startRegistry>> | undefined;
  let sources: ReturnType<typeof serveSources> | undefined;
  try {
    Deno.mkdirSync(join(work, "registry"));
    const upstream = ok(
      await run("npm", ["config", "get", "registry"], work, {
        ...Deno.env.toObject(),
        HOME: Deno.env.get("HOME") ?? home,
      }),
      "npm config get registry",
    ).stdout.trim();
    registry = await startRegistry(join(work, "registry"), upstream);
    sources = serveSources();
    const npmrc = await npmrcFor(registry.url, work);
    const npmEnv = {
      ...baseEnv,
      NPM_CONFIG_USERCONFIG: npmrc,
      NPM_CONFIG_CACHE: join(work, "npm"),
    };
    await checkRootTarball(join(DIST, `shm-cache-${VERSION}.tgz`), baseEnv);
    for (const { name } of tarballs) {
      ok(await run("npm", ["publish", join(DIST, name)], work, npmEnv), `npm publish ${name}`);
    }

    // 1. Bun: bun add, import by name, write.
    const bunDir = join(work, "bun-app");
    Deno.mkdirSync(bunDir);
    writeFileSync(join(bunDir, "package.json"), `{ "name": "bun-app", "private": true }\n`);
    writeFileSync(join(bunDir, "bunfig.toml"), `[install]\nregistry = "${registry.url}"\n`);
    writeFileSync(join(bunDir, "app.ts"), BUN_APP);
    const bunEnv = { ...baseEnv, BUN_INSTALL_CACHE_DIR: join(work, "bun-cache") };
    ok(await run("bun", ["add", `shm-cache@${VERSION}`], bunDir, bunEnv), "bun add shm-cache");
    const installed = JSON.parse(
      readFileSync(join(bunDir, "node_modules/shm-cache/package.json"), "utf8"),
    );
    assert.equal(installed.version, VERSION);
    assert.ok(
      existsSync(join(bunDir, "node_modules/@shm-cache/linux-x64-gnu/libshm_cache.so")),
      "bun installed the platform package",
    );
    let hits = readBack(ok(await run("bun", ["app.ts", cacheDir], bunDir, bunEnv), "bun app.ts"));

    // 1b. bun build --compile with the library as one more entry point: the
    // executable runs with no node_modules around it.
    const library = "./node_modules/@shm-cache/linux-x64-gnu/libshm_cache.so";
    ok(
      await run(
        "bun",
        ["build", "--compile", "app.ts", library, "--outfile", "app-bin"],
        bunDir,
        bunEnv,
      ),
      "bun build --compile",
    );
    Deno.renameSync(join(bunDir, "node_modules"), join(bunDir, "node_modules.away"));
    const compiled = ok(await run(join(bunDir, "app-bin"), [cacheDir], bunDir, baseEnv), "app-bin");
    Deno.renameSync(join(bunDir, "node_modules.away"), join(bunDir, "node_modules"));
    hits += readBack(compiled);

    // 2. Deno: npm:shm-cache, three permissions only.
    const denoDir = join(work, "deno-app");
    Deno.mkdirSync(denoDir);
    writeFileSync(join(denoDir, "app.ts"), denoApp(`npm:shm-cache@${VERSION}`));
    const denoEnv = {
      ...baseEnv,
      DENO_DIR: join(work, "deno-dir"),
      NPM_CONFIG_REGISTRY: registry.url,
    };
    // Deno 2.9 skips npm versions younger than 24 hours unless told not to.
    const fresh = "--minimum-dependency-age=0";
    const perms = [fresh, "--allow-ffi", "--allow-read", "--allow-env"];
    ok(
      await run("deno", ["check", fresh, "app.ts"], denoDir, denoEnv),
      "deno check (the .d.ts files)",
    );
    hits += readBack(ok(
      await run("deno", ["run", ...perms, "app.ts", cacheDir], denoDir, denoEnv),
      "deno run npm:shm-cache",
    ));

    // 3. mod.ts over http: only the npm: specifiers can find the library.
    // `deno install` caches everything, then the app runs --cached-only:
    // nothing is fetched at run time.
    const remoteDir = join(work, "remote-app");
    Deno.mkdirSync(remoteDir);
    writeFileSync(join(remoteDir, "app.ts"), denoApp(`${sources.url}mod.ts`));
    // JSR rewrites the sources' bare imports of the package's dependencies
    // (package.json) to npm: specifiers when it publishes; over plain http,
    // the app's import map does the same.
    const dependencies: Record<string, string> = JSON.parse(
      readFileSync(join(ROOT, "package.json"), "utf8"),
    ).dependencies ?? {};
    const imports = Object.fromEntries(
      Object.entries(dependencies).map(([name, version]) => [name, `npm:${name}@${version}`]),
    );
    writeFileSync(join(remoteDir, "deno.json"), JSON.stringify({ imports }));
    const allowImport = `--allow-import=${new URL(sources.url).host}`;
    const remoteEnv = { ...denoEnv, DENO_DIR: join(work, "deno-dir-remote") };
    ok(
      await run(
        "deno",
        ["install", fresh, allowImport, "--entrypoint", "app.ts"],
        remoteDir,
        remoteEnv,
      ),
      "deno install --entrypoint (mod.ts over http)",
    );
    hits += readBack(ok(
      await run(
        "deno",
        ["run", "--cached-only", ...perms, allowImport, "app.ts", cacheDir],
        remoteDir,
        remoteEnv,
      ),
      "deno run --cached-only mod.ts over http",
    ));

    // 4. The installed CLI, under Bun (its bin) and under Deno (npm:).
    const cli = join(bunDir, "node_modules/.bin/shm-cache");
    ok(await run(cli, ["--help"], bunDir, bunEnv), "shm-cache --help");
    const listed = JSON.parse(
      ok(await run(cli, ["ls", "--dir", cacheDir, "--json"], bunDir, bunEnv), "shm-cache ls")
        .stdout,
    );
    assert.deepEqual(listed.map((c: { name: string }) => c.name), ["proof"]);
    const stats = JSON.parse(
      ok(await run(cli, ["stats", "proof", "--dir", cacheDir, "--json"], bunDir, bunEnv), "stats")
        .stdout,
    );
    assert.equal(stats.hits, hits, "stats sums the hits of every process that used the cache");
    const verified = ok(
      await run(cli, ["verify", "proof", "--dir", cacheDir], bunDir, bunEnv),
      "verify",
    );
    assert.equal(verified.stdout.trim(), "ok");
    const denoStats = ok(
      await run(
        "deno",
        [
          "run",
          ...perms,
          `npm:shm-cache@${VERSION}`,
          "stats",
          "proof",
          "--dir",
          cacheDir,
          "--json",
        ],
        denoDir,
        denoEnv,
      ),
      "deno run npm:shm-cache stats",
    );
    assert.equal(JSON.parse(denoStats.stdout).hits, hits);
  } finally {
    await sources?.server.shutdown();
    await registry?.stop();
    rmSync(work, { recursive: true, force: true });
  }
});

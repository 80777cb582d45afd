#!/usr/bin/env node
// grpc-web end-to-end test in a real headless browser.
//
//   node tests/browser/run.mjs --pos-bin target/debug/pos [--chromium PATH] [--buf PATH]
//
// (after `npm ci` in tests/browser; `cargo xtask test` does all of this.)
//
// 1. `buf generate` (buf.gen.yaml) -> gen/, with the local protoc-gen-es;
// 2. esbuild bundles src/app.ts -> dist/app.js;
// 3. starts `<pos-bin> up --demo --listen 127.0.0.1:0 --data-dir <tmp>` and
//    reads <tmp>/demo.json (POS_CORS_ALLOWED_ORIGINS is unset for it, so
//    that its default CORS policy is what is tested);
// 4. serves index.html + app.js from a static server on another 127.0.0.1
//    port, so that every call from the page is cross-origin (CORS);
// 5. a CORS preflight check from node (OPTIONS with Origin = the page's);
// 6. opens the page in headless Chromium (playwright-core) and reads the
//    checks' results from `window.__results` (30 s at most).
//
// Prints `browser-grpc-web: PASS|FAIL <name>[: detail]` per check and finally
// `browser-grpc-web: N passed, M failed`; exits 1 on any failure. Chromium and
// pos are always stopped (pos with SIGTERM) and temp dirs removed.

import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { accessSync, constants, existsSync, readFileSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer } from "node:http";
import { homedir, tmpdir } from "node:os";
import { delimiter, dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const PREFIX = "browser-grpc-web";
const HERE = dirname(fileURLToPath(import.meta.url));
const RESULTS_TIMEOUT_MS = 30_000;
const POS_STARTUP_TIMEOUT_MS = 60_000;
const POS_STOP_TIMEOUT_MS = 10_000;
const LISTENING = /listening on (\S+):(\d+)/;
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
// What a grpc-web client sends; the server must allow these cross-origin.
const PREFLIGHT_HEADERS = ["authorization", "content-type", "x-grpc-web", "x-user-agent"];

// ---------------------------------------------------------------- output

let passed = 0;
let failed = 0;

function check(name, ok, detail = "") {
  if (ok) passed++;
  else failed++;
  console.log(`${PREFIX}: ${ok ? "PASS" : "FAIL"} ${name}${detail ? `: ${detail}` : ""}`);
}

function log(message) {
  console.log(`${PREFIX}: ${message}`);
}

// ---------------------------------------------------------------- cleanup

// Resources (pos, page server, Chromium) register how to release them here;
// `cleanup()` releases them in reverse order, at the end or on SIGINT/SIGTERM.
// One registered after cleanup started (e.g. Chromium still launching when
// the signal came) is released at once.
const cleanups = { stack: [], late: [], draining: undefined };
let interrupted = false;

async function quietly(step) {
  try {
    await step();
  } catch (e) {
    log(`cleanup: ${e.message}`);
  }
}

function onCleanup(step) {
  if (cleanups.draining) cleanups.late.push(quietly(step));
  else cleanups.stack.push(step);
}

function cleanup() {
  cleanups.draining ??= (async () => {
    while (cleanups.stack.length > 0) await quietly(cleanups.stack.pop());
  })();
  return cleanups.draining.then(() => Promise.all(cleanups.late));
}

function handleSignals() {
  for (const signal of ["SIGINT", "SIGTERM"]) {
    process.on(signal, () => {
      if (interrupted) process.exit(130); // second signal: give up at once
      interrupted = true;
      log(`${signal}: stopping and cleaning up (again to abort)`);
      void cleanup();
    });
  }
}

// ---------------------------------------------------------------- arguments

function parseArgs(argv) {
  const usage = "usage: node run.mjs --pos-bin PATH [--chromium PATH] [--buf PATH]";
  const args = { posBin: undefined, chromium: undefined, buf: undefined };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split(/=(.*)/s, 2);
    const value = () => inline ?? argv[++i];
    if (flag === "--pos-bin") args.posBin = value();
    else if (flag === "--chromium") args.chromium = value();
    else if (flag === "--buf") args.buf = value();
    else if (flag === "-h" || flag === "--help") {
      console.log(usage);
      process.exit(0);
    } else {
      console.error(`${usage}\nunknown argument: ${argv[i]}`);
      process.exit(2);
    }
  }
  if (!args.posBin) {
    console.error(usage);
    process.exit(2);
  }
  args.posBin = resolve(args.posBin);
  if (args.chromium) args.chromium = resolve(args.chromium);
  if (args.buf) args.buf = resolve(args.buf);
  return args;
}

// ---------------------------------------------------------------- tools

function isExecutable(path) {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function onPath(name) {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (dir && isExecutable(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

/** `--buf`, else `buf` as xtask finds it: PATH, `$POS_CACHE_DIR/npm`; else our node_modules. */
function findBuf(given) {
  if (given) {
    if (!isExecutable(given)) throw new Error(`--buf ${given} is not an executable`);
    return given;
  }
  const cache = process.env.POS_CACHE_DIR || join(homedir(), ".cache/pos-mesh");
  const candidates = [
    onPath("buf"),
    join(cache, "npm/node_modules/.bin/buf"),
    join(HERE, "node_modules/.bin/buf"),
  ];
  for (const candidate of candidates) {
    if (candidate && isExecutable(candidate)) {
      const probe = spawnSync(candidate, ["--version"], { stdio: "ignore" });
      if (probe.status === 0) return candidate;
    }
  }
  throw new Error(
    "`buf` not found (PATH, $POS_CACHE_DIR/npm, tests/browser/node_modules); " +
      "run `cargo xtask setup` or `npm install --prefix ~/.cache/pos-mesh/npm @bufbuild/buf`",
  );
}

function findChromium(given) {
  if (given) {
    if (!isExecutable(given)) throw new Error(`--chromium ${given} is not an executable`);
    return given;
  }
  const candidates = [process.env.CHROMIUM, "/usr/bin/chromium", onPath("chromium")];
  for (const candidate of candidates) {
    if (candidate && isExecutable(candidate)) return candidate;
  }
  throw new Error("`chromium` not found; install it with: apt-get install -y chromium");
}

function generate(givenBuf) {
  if (!existsSync(join(HERE, "node_modules/.bin/protoc-gen-es"))) {
    throw new Error("node_modules missing; run `npm ci` in tests/browser first");
  }
  const buf = findBuf(givenBuf);
  log(`+ ${buf} generate (in ${HERE})`);
  const result = spawnSync(buf, ["generate"], { cwd: HERE, stdio: "inherit" });
  if (result.error) throw result.error;
  if (result.status !== 0) throw new Error(`buf generate failed (exit ${result.status})`);
}

async function bundle() {
  const esbuild = await import("esbuild");
  log("+ esbuild src/app.ts -> dist/app.js");
  await esbuild.build({
    entryPoints: [join(HERE, "src/app.ts")],
    outfile: join(HERE, "dist/app.js"),
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    sourcemap: "inline",
    logLevel: "warning",
  });
}

// ---------------------------------------------------------------- pos

/** Starts `pos up --demo`; resolves to {proc, host, port} on `listening on`. */
function startPos(posBin, dataDir) {
  const command = [posBin, "up", "--demo", "--listen", "127.0.0.1:0", "--data-dir", dataDir];
  log(`starting ${command.join(" ")}`);
  // `pos up`'s default CORS policy (`*`) is what is tested, whatever the shell has.
  const env = { ...process.env };
  delete env.POS_CORS_ALLOWED_ORIGINS;
  const proc = spawn(command[0], command.slice(1), { env, stdio: ["ignore", "pipe", "inherit"] });
  onCleanup(() => stopPos(proc));
  return new Promise((resolvePromise, reject) => {
    let settled = false;
    const settle = (fn, value) => {
      if (!settled) {
        settled = true;
        clearTimeout(timer);
        fn(value);
      }
    };
    const timer = setTimeout(
      () => settle(reject, new Error(`pos printed no 'listening on' line within ${POS_STARTUP_TIMEOUT_MS / 1000} s`)),
      POS_STARTUP_TIMEOUT_MS,
    );
    proc.on("error", (e) => settle(reject, new Error(`cannot start pos: ${e.message}`)));
    proc.on("exit", (code, signal) =>
      settle(reject, new Error(`pos exited (${signal ?? `code ${code}`}) before printing 'listening on'`)),
    );
    createInterface({ input: proc.stdout }).on("line", (line) => {
      console.log(`  [pos] ${line}`);
      const match = LISTENING.exec(line);
      if (match) settle(resolvePromise, { host: match[1], port: Number(match[2]) });
    });
  }).then((addr) => ({ proc, ...addr }));
}

/** SIGTERM, up to 10 s to exit, then SIGKILL. */
async function stopPos(proc) {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = once(proc, "exit");
  proc.kill("SIGTERM");
  const timeout = new Promise((r) => setTimeout(r, POS_STOP_TIMEOUT_MS, "timeout"));
  if ((await Promise.race([exited, timeout])) === "timeout") {
    log(`pos did not exit within ${POS_STOP_TIMEOUT_MS / 1000} s of SIGTERM; killing it`);
    proc.kill("SIGKILL");
    await exited;
  } else {
    log(`pos stopped (${proc.signalCode ?? `exit code ${proc.exitCode}`})`);
  }
}

// ---------------------------------------------------------------- page server

const INDEX_HTML = `<!doctype html>
<html>
<head><meta charset="utf-8"><link rel="icon" href="data:,"><title>pos-mesh grpc-web browser test</title></head>
<body>
<h1>pos-mesh grpc-web browser test</h1>
<ul id="results"></ul>
<script type="module" src="/app.js"></script>
</body>
</html>
`;

/** Serves / (index.html) and /app.js on 127.0.0.1:<free port>. */
async function startPageServer() {
  const appJs = await readFile(join(HERE, "dist/app.js"));
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405).end();
    } else if (path === "/" || path === "/index.html") {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end(INDEX_HTML);
    } else if (path === "/app.js") {
      res.writeHead(200, { "content-type": "text/javascript; charset=utf-8" }).end(appJs);
    } else {
      res.writeHead(404).end();
    }
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return server;
}

// ---------------------------------------------------------------- checks

/** A CORS preflight as the browser would send it for a grpc-web call. */
async function preflightCheck(serverUrl, pageOrigin) {
  const name = "CORS preflight (OPTIONS ListProducts)";
  let res;
  try {
    res = await fetch(`${serverUrl}/pos.v1.StoreService/ListProducts`, {
      method: "OPTIONS",
      headers: {
        origin: pageOrigin,
        "access-control-request-method": "POST",
        "access-control-request-headers": PREFLIGHT_HEADERS.join(","),
      },
      signal: AbortSignal.timeout(10_000),
    });
  } catch (e) {
    check(name, false, `request failed: ${e.message}`);
    return;
  }
  const allowOrigin = res.headers.get("access-control-allow-origin");
  const allowMethods = res.headers.get("access-control-allow-methods") ?? "";
  const allowHeaders = (res.headers.get("access-control-allow-headers") ?? "")
    .split(",")
    .map((h) => h.trim().toLowerCase())
    .filter(Boolean);
  const missing = allowHeaders.includes("*")
    ? []
    : PREFLIGHT_HEADERS.filter((h) => !allowHeaders.includes(h));
  const methodOk =
    allowMethods === "" || // optional when the request method is a CORS-safelisted one
    allowMethods.split(",").some((m) => ["post", "*"].includes(m.trim().toLowerCase()));
  const problems = [];
  if (res.status < 200 || res.status > 299) problems.push(`status ${res.status}`);
  if (allowOrigin !== pageOrigin && allowOrigin !== "*") {
    problems.push(`access-control-allow-origin=${JSON.stringify(allowOrigin)} (want ${pageOrigin} or *)`);
  }
  if (missing.length > 0) problems.push(`access-control-allow-headers lacks ${missing.join(", ")}`);
  if (!methodOk) problems.push(`access-control-allow-methods=${JSON.stringify(allowMethods)} lacks POST`);
  const detail =
    problems.length > 0
      ? problems.join("; ")
      : `status ${res.status}, allow-origin ${allowOrigin}, allow-headers ${allowHeaders.join(",")}`;
  check(name, problems.length === 0, detail);
}

/** Opens the page in Chromium and turns `window.__results` into check lines. */
async function browserChecks(context, pageUrl, config) {
  const consoleLines = [];
  const page = await context.newPage();
  page.on("console", (msg) => {
    if (msg.type() === "error" || msg.type() === "warning") {
      consoleLines.push(`console.${msg.type()}: ${msg.text()}`);
    }
  });
  page.on("pageerror", (e) => consoleLines.push(`page error: ${e.message}`));
  page.on("requestfailed", (req) =>
    consoleLines.push(`request failed: ${req.method()} ${req.url()}: ${req.failure()?.errorText}`),
  );
  await page.addInitScript((cfg) => {
    window.__POS_CONFIG = cfg;
  }, config);

  log(`opening ${pageUrl} in chromium`);
  let timedOut = false;
  try {
    await page.goto(pageUrl, { timeout: RESULTS_TIMEOUT_MS });
    await page.waitForFunction(() => window.__done === true, null, { timeout: RESULTS_TIMEOUT_MS });
  } catch (e) {
    timedOut = true;
    check("browser app finished", false, e.message.split("\n")[0]);
  }
  const results = await page.evaluate(() => window.__results ?? []).catch(() => []);
  for (const r of results) check(r.name, r.ok, r.detail);
  if (!timedOut && results.length === 0) check("browser app results", false, "no results recorded");
  for (const line of consoleLines) log(`  [browser] ${line}`);
}

// ---------------------------------------------------------------- main

async function main() {
  const args = parseArgs(process.argv.slice(2));
  handleSignals();
  let tmp;
  try {
    if (!isExecutable(args.posBin)) throw new Error(`--pos-bin ${args.posBin} is not an executable`);
    const chromiumPath = findChromium(args.chromium);
    generate(args.buf);
    await bundle();

    tmp = await mkdtemp(join(tmpdir(), "pos-browser-"));
    const dataDir = join(tmp, "data");
    const profileDir = join(tmp, "chromium-profile");

    const pos = await startPos(args.posBin, dataDir);
    const serverUrl = `http://${pos.host}:${pos.port}`;
    const demo = JSON.parse(readFileSync(join(dataDir, "demo.json"), "utf8"));
    if (
      !demo.owner_token ||
      !demo.device_tokens?.length ||
      !demo.device_ids?.length ||
      demo.store_id === undefined
    ) {
      throw new Error(
        `demo.json lacks owner_token / device_tokens / device_ids / store_id: ${JSON.stringify(Object.keys(demo))}`,
      );
    }

    const pageServer = await startPageServer();
    onCleanup(() => {
      const closed = once(pageServer, "close");
      pageServer.close();
      pageServer.closeAllConnections();
      return closed;
    });
    const pageOrigin = `http://127.0.0.1:${pageServer.address().port}`;
    log(`pos at ${serverUrl}; page at ${pageOrigin} (cross-origin)`);

    await preflightCheck(serverUrl, pageOrigin);

    const { chromium } = await import("playwright-core");
    log(`launching ${chromiumPath}`);
    const context = await chromium.launchPersistentContext(profileDir, {
      executablePath: chromiumPath,
      headless: true,
      args: CHROMIUM_ARGS,
      timeout: 60_000,
      handleSIGINT: false, // we close it ourselves, in order
      handleSIGTERM: false,
    });
    onCleanup(() => context.close());
    if (interrupted) return;
    await browserChecks(context, `${pageOrigin}/`, {
      baseUrl: serverUrl,
      tabletToken: demo.device_tokens[0],
      deviceId: String(demo.device_ids[0]),
      ownerToken: demo.owner_token,
      storeId: String(demo.store_id),
    });
  } catch (e) {
    if (!interrupted) check("harness", false, e.message);
  } finally {
    await cleanup();
    // Last, once Chromium (whose profile is in it) and pos are gone.
    if (tmp) await rm(tmp, { recursive: true, force: true });
    if (interrupted) {
      log("interrupted");
      process.exitCode = 130;
    } else {
      console.log(`${PREFIX}: ${passed} passed, ${failed} failed`);
      process.exitCode = failed > 0 || passed === 0 ? 1 : 0;
    }
  }
}

await main();

// Browser side of the grpc-web end-to-end test (bundled by run.mjs with esbuild).
//
// Calls a running `pos up --demo` from a page on a *different* origin, with
// Connect-ES's grpc-web transport (an independent client: no code shared with
// the server), and records one result per check in `window.__results`
// ({name, ok, detail}); `window.__done` turns true when all checks finished.
//
// grpc-web-text: Connect-ES speaks only binary grpc-web (`useBinaryFormat:
// false` selects application/grpc-web+json, which is not grpc-web-text and
// which the server does not serve). So the text check runs the same Connect
// transport over `grpcWebTextFetch`, a fetch wrapper that does exactly what
// a grpc-web-text client does on the wire: content-type
// application/grpc-web-text, base64 request body, base64 response body
// (possibly several padded chunks). It fails unless the server answers in
// grpc-web-text.
//
// The tablet's live bill is a server stream over grpc-web (WatchCurrentTrade):
// it must bring the bill at once, each change within 1 s of the call that made
// it (timed from the moment that call was sent, so the time includes the call
// itself), and after payment the PAID bill with its payment, then a message
// without a bill.
//
// Configuration comes from `window.__POS_CONFIG` (set by run.mjs before the
// page loads) or else from the page URL's query string:
//   ?base=http://127.0.0.1:PORT&tablet=TOKEN&device=DEVICE_ID&owner=TOKEN&store=STORE_ID

import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { ErrorInfoSchema } from "../gen/google/rpc/error_details_pb";
import { StoreService } from "../gen/pos/v1/store_pb";
import { TradeService, TradeStatus, type WatchCurrentTradeResponse } from "../gen/pos/v1/trade_pb";

interface Config {
  baseUrl: string;
  tabletToken: string;
  /** The device id of the tablet of `tabletToken`. */
  deviceId: string;
  ownerToken: string;
  storeId: string;
}

interface Result {
  name: string;
  ok: boolean;
  detail: string;
}

declare global {
  interface Window {
    __POS_CONFIG?: Partial<Config>;
    __results: Result[];
    __done: boolean;
  }
}

const EXPECTED_MENU = ["Bibimbap", "Kimchi", "Sikhye"];
const CALL_TIMEOUT_MS = 10_000;

window.__results = [];
window.__done = false;

function config(): Config {
  const query = new URLSearchParams(window.location.search);
  const given = window.__POS_CONFIG ?? {};
  const cfg: Config = {
    baseUrl: given.baseUrl ?? query.get("base") ?? "",
    tabletToken: given.tabletToken ?? query.get("tablet") ?? "",
    deviceId: String(given.deviceId ?? query.get("device") ?? ""),
    ownerToken: given.ownerToken ?? query.get("owner") ?? "",
    storeId: String(given.storeId ?? query.get("store") ?? ""),
  };
  const missing = Object.entries(cfg)
    .filter(([, v]) => v === "")
    .map(([k]) => k);
  if (missing.length > 0) {
    throw new Error(`missing configuration: ${missing.join(", ")}`);
  }
  return cfg;
}

function record(name: string, ok: boolean, detail: string): void {
  window.__results.push({ name, ok, detail });
  const line = document.createElement("li");
  line.textContent = `${ok ? "PASS" : "FAIL"} ${name}: ${detail}`;
  document.getElementById("results")?.appendChild(line);
}

/** Runs one check; an exception (e.g. a failed fetch) makes it fail. */
async function check(name: string, body: () => Promise<[boolean, string]>): Promise<void> {
  try {
    const [ok, detail] = await body();
    record(name, ok, detail);
  } catch (e) {
    const err = ConnectError.from(e);
    record(name, false, `unexpected error: code=${Code[err.code]} message=${err.message}`);
  }
}

function bearer(token: string): HeadersInit {
  return { authorization: `Bearer ${token}` };
}

async function listProductNames(transport: Transport, token: string): Promise<[boolean, string]> {
  const client = createClient(StoreService, transport);
  // The menu comes in pages: follow nextPageToken until the last page.
  const names: string[] = [];
  let pageToken = "";
  do {
    const res = await client.listProducts(
      { page: { pageSize: 0, pageToken } },
      { headers: bearer(token), timeoutMs: CALL_TIMEOUT_MS },
    );
    names.push(...res.products.map((p) => p.name));
    pageToken = res.nextPageToken;
  } while (pageToken !== "");
  const ok = JSON.stringify(names) === JSON.stringify(EXPECTED_MENU);
  return [ok, `products ${JSON.stringify(names)} (want ${JSON.stringify(EXPECTED_MENU)})`];
}

const TEXT_CONTENT_TYPE = "application/grpc-web-text";

function base64Encode(bytes: Uint8Array): string {
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary);
}

/** Decodes base64 that may be several concatenated, separately padded chunks. */
function base64Decode(text: string): Uint8Array {
  const clean = text.replace(/\s+/g, "");
  if (clean.length % 4 !== 0) {
    throw new Error(`grpc-web-text body length ${clean.length} is not a multiple of 4`);
  }
  const out: number[] = [];
  for (let i = 0; i < clean.length; i += 4) {
    for (const c of atob(clean.slice(i, i + 4))) out.push(c.charCodeAt(0));
  }
  return new Uint8Array(out);
}

/** Content-types of the grpc-web-text responses seen, for the check details. */
const textResponseTypes: string[] = [];

/** `fetch` for the Connect grpc-web transport that puts grpc-web-text on the wire. */
async function grpcWebTextFetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
  const headers = new Headers(init?.headers);
  headers.set("content-type", TEXT_CONTENT_TYPE);
  headers.set("accept", TEXT_CONTENT_TYPE);
  const payload = new Uint8Array(await new Response(init?.body ?? null).arrayBuffer());
  const res = await fetch(input, { ...init, headers, body: base64Encode(payload) });
  const contentType = res.headers.get("content-type") ?? "";
  textResponseTypes.push(contentType);
  if (!contentType.toLowerCase().startsWith(TEXT_CONTENT_TYPE)) {
    throw new Error(`HTTP ${res.status}: response content-type ${JSON.stringify(contentType)} is not grpc-web-text`);
  }
  const body = base64Decode(await res.text());
  const decodedHeaders = new Headers(res.headers);
  decodedHeaders.set("content-type", contentType.replace(/grpc-web-text/i, "grpc-web"));
  return new Response(body, { status: res.status, statusText: res.statusText, headers: decodedHeaders });
}

/** The longest a change may take to reach a watching tablet. */
const DELIVERY_LIMIT_MS = 1_000;
/** How long to wait for a stream message before calling it lost (well past the
 * limit, so a slow delivery is measured and reported rather than cut off). */
const STREAM_WAIT_MS = 10_000;

interface Arrival<T> {
  message: T;
  /** performance.now() when the page had it. */
  at: number;
}

/** Reads a server stream in the background so that a check can wait for its
 * next message with a timeout, and knows when each one arrived. */
class StreamReader<T> {
  private readonly arrived: Arrival<T>[] = [];
  private ended: Error | undefined;
  private wake: (() => void) | undefined;

  constructor(stream: AsyncIterable<T>) {
    void this.pump(stream);
  }

  private async pump(stream: AsyncIterable<T>): Promise<void> {
    try {
      for await (const message of stream) {
        this.arrived.push({ message, at: performance.now() });
        this.wake?.();
      }
      this.ended = new Error("the stream ended");
    } catch (e) {
      const err = ConnectError.from(e);
      this.ended = new Error(`the stream failed: code=${Code[err.code]} message=${err.message}`);
    }
    this.wake?.();
  }

  /** The next message, or an error when none comes within `timeoutMs`. */
  async next(timeoutMs: number): Promise<Arrival<T>> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const first = this.arrived.shift();
      if (first !== undefined) return first;
      if (this.ended !== undefined) throw this.ended;
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`no stream message within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }
}

type BillMessage = Arrival<WatchCurrentTradeResponse>;

/** What a bill message shows, for check details. */
function describe(arrival: BillMessage): string {
  const trade = arrival.message.trade;
  if (trade === undefined) return "no bill";
  const payment = trade.payment === undefined ? "" : `, paid ${trade.payment.amount}`;
  return `bill ${trade.id} ${TradeStatus[trade.status]} amount ${trade.amount} with ${trade.orders.length} order(s)${payment}`;
}

/** `ms` rounded, and whether it is within the delivery limit. */
function timely(ms: number): [boolean, string] {
  return [ms <= DELIVERY_LIMIT_MS, `${Math.round(ms)} ms (limit ${DELIVERY_LIMIT_MS} ms)`];
}

/** The tablet watches its bill while it orders and the owner takes payment:
 * three checks, the later ones failing when an earlier step could not run. */
async function watchBillChecks(transport: Transport, cfg: Config): Promise<void> {
  const tablet = createClient(TradeService, transport);
  const owner = createClient(TradeService, transport);
  const tabletCall = { headers: bearer(cfg.tabletToken), timeoutMs: CALL_TIMEOUT_MS };
  const products = await createClient(StoreService, transport).listProducts(
    { page: { pageSize: 0, pageToken: "" } },
    tabletCall,
  );
  const product = products.products[0];
  if (product === undefined) throw new Error("the demo menu is empty");
  // A first order before watching, so "the bill at once" is a bill with an order.
  const first = await tablet.placeOrder(
    { lines: [{ productId: product.id, count: 1n }], idempotencyKey: "browser-watch-1" },
    tabletCall,
  );
  const firstId = first.order?.id ?? "";

  const stop = new AbortController();
  const opened = performance.now();
  const stream = new StreamReader(
    tablet.watchCurrentTrade({}, { headers: bearer(cfg.tabletToken), signal: stop.signal }),
  );
  const steps: [string, () => Promise<[boolean, string]>][] = [
    [
      "tablet WatchCurrentTrade (grpc-web stream): its bill at once",
      async () => {
        const got = await stream.next(STREAM_WAIT_MS);
        const orders = got.message.trade?.orders.map((o) => o.id) ?? [];
        const [fast, took] = timely(got.at - opened);
        const ok = fast && orders.length === 1 && orders[0] === firstId;
        return [ok, `${describe(got)} after ${took} (want the bill with order ${firstId})`];
      },
    ],
    [
      "tablet WatchCurrentTrade: a new order arrives within 1 s",
      async () => {
        const sent = performance.now();
        const placed = await tablet.placeOrder(
          { lines: [{ productId: product.id, count: 2n }], idempotencyKey: "browser-watch-2" },
          tabletCall,
        );
        const answered = performance.now() - sent;
        const id = placed.order?.id ?? "";
        const got = await stream.next(STREAM_WAIT_MS);
        const orders = got.message.trade?.orders.map((o) => o.id) ?? [];
        const [fast, took] = timely(got.at - sent);
        const ok = fast && orders.includes(id) && got.message.trade?.status === TradeStatus.OPEN;
        return [
          ok,
          `${describe(got)} ${took} after PlaceOrder was sent (its answer took ${Math.round(answered)} ms; want order ${id} on it)`,
        ];
      },
    ],
    [
      "tablet WatchCurrentTrade: payment -> the PAID bill, then no bill, within 1 s",
      async () => {
        const bill = await owner.getOpenTrade(
          { deviceId: BigInt(cfg.deviceId) },
          { headers: bearer(cfg.ownerToken), timeoutMs: CALL_TIMEOUT_MS },
        );
        const sent = performance.now();
        await owner.payCash(
          {
            deviceId: BigInt(cfg.deviceId),
            expectedAmount: bill.trade?.amount,
            idempotencyKey: "browser-watch-pay",
          },
          { headers: bearer(cfg.ownerToken), timeoutMs: CALL_TIMEOUT_MS },
        );
        const paid = await stream.next(STREAM_WAIT_MS);
        const cleared = await stream.next(STREAM_WAIT_MS);
        const [paidFast, paidTook] = timely(paid.at - sent);
        const [clearedFast, clearedTook] = timely(cleared.at - sent);
        const ok =
          paidFast &&
          clearedFast &&
          paid.message.trade?.status === TradeStatus.PAID &&
          paid.message.trade.id === bill.trade?.id &&
          paid.message.trade.payment?.amount === bill.trade?.amount &&
          cleared.message.trade === undefined;
        return [
          ok,
          `${describe(paid)} after ${paidTook}, then ${describe(cleared)} after ${clearedTook} (want bill ${bill.trade?.id} PAID with its payment, then no bill)`,
        ];
      },
    ],
  ];
  try {
    let broken: string | undefined;
    for (const [name, step] of steps) {
      if (broken !== undefined) {
        record(name, false, `not run: ${broken}`);
        continue;
      }
      await check(name, step);
      const last = window.__results.at(-1);
      if (last !== undefined && !last.ok) broken = `"${name}" failed`;
    }
  } finally {
    stop.abort();
  }
}

async function main(): Promise<void> {
  const cfg = config();
  const binary = createGrpcWebTransport({ baseUrl: cfg.baseUrl, useBinaryFormat: true });
  const text = createGrpcWebTransport({
    baseUrl: cfg.baseUrl,
    useBinaryFormat: true,
    fetch: grpcWebTextFetch,
  });

  // (a) A tablet lists the demo menu (grpc-web binary).
  await check("tablet ListProducts (grpc-web binary)", () =>
    listProductNames(binary, cfg.tabletToken),
  );

  // (b) The owner reads their store (grpc-web binary).
  await check("owner GetMyStore (grpc-web binary)", async () => {
    const client = createClient(StoreService, binary);
    const res = await client.getMyStore(
      {},
      { headers: bearer(cfg.ownerToken), timeoutMs: CALL_TIMEOUT_MS },
    );
    const id = res.store?.id;
    const ok = id !== undefined && String(id) === cfg.storeId;
    return [ok, `store.id=${String(id)} (want ${cfg.storeId})`];
  });

  // (c) No token: UNAUTHENTICATED, with ErrorInfo reason TOKEN_MISSING in
  // grpc-status-details-bin (which the server must expose through CORS).
  let unauthenticated: ConnectError | undefined;
  await check("no token -> Unauthenticated (grpc-web binary)", async () => {
    const client = createClient(StoreService, binary);
    try {
      const res = await client.listProducts({}, { timeoutMs: CALL_TIMEOUT_MS });
      return [false, `call succeeded without a token (${res.products.length} products)`];
    } catch (e) {
      const err = ConnectError.from(e);
      unauthenticated = err;
      const ok = err.code === Code.Unauthenticated;
      return [ok, `code=${Code[err.code]} (${err.code}) message=${JSON.stringify(err.rawMessage)}`];
    }
  });
  await check("no token -> ErrorInfo TOKEN_MISSING", async () => {
    if (unauthenticated === undefined) {
      return [false, "the call without a token did not fail"];
    }
    const infos = unauthenticated.findDetails(ErrorInfoSchema);
    const reasons = infos.map((i) => i.reason);
    const ok = reasons.includes("TOKEN_MISSING");
    return [
      ok,
      `ErrorInfo reasons ${JSON.stringify(reasons)} of ${unauthenticated.details.length} detail(s) (want TOKEN_MISSING)`,
    ];
  });

  // (d) The same tablet call over grpc-web-text (base64 bodies), and the
  // no-token error (trailers-only response) in that format too.
  await check("tablet ListProducts (grpc-web-text)", async () => {
    const [ok, detail] = await listProductNames(text, cfg.tabletToken);
    return [ok, `${detail}, response ${textResponseTypes.at(-1)}`];
  });
  await check("no token -> Unauthenticated (grpc-web-text)", async () => {
    const client = createClient(StoreService, text);
    try {
      const res = await client.listProducts({}, { timeoutMs: CALL_TIMEOUT_MS });
      return [false, `call succeeded without a token (${res.products.length} products)`];
    } catch (e) {
      const err = ConnectError.from(e);
      const reasons = err.findDetails(ErrorInfoSchema).map((i) => i.reason);
      const ok = err.code === Code.Unauthenticated && reasons.includes("TOKEN_MISSING");
      return [ok, `code=${Code[err.code]} (${err.code}) ErrorInfo reasons ${JSON.stringify(reasons)}`];
    }
  });

  // (e) The tablet's live bill over grpc-web (binary): a server stream.
  await watchBillChecks(binary, cfg).catch((e: unknown) => {
    const err = ConnectError.from(e);
    record("tablet WatchCurrentTrade (grpc-web stream)", false, `setup failed: ${err.message}`);
  });
}

main()
  .catch((e: unknown) => {
    record("browser app", false, `aborted: ${e instanceof Error ? e.message : String(e)}`);
  })
  .finally(() => {
    window.__done = true;
  });

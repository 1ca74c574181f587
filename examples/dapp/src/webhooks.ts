// A webhook receiver as a dApp's backend runs one: a small HTTP server that verifies every
// delivery with the Standard Webhooks reference verifier (`standardwebhooks`) before believing
// it, answers 400 to one that does not verify, and counts a redelivered message once (delivery is
// at least once: the same `webhook-id` may come again).

import { type IncomingMessage, type Server, type ServerResponse, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Webhook, WebhookVerificationError } from "standardwebhooks";

import type { StreamedEvent } from "./sse.js";

/** Every topic an endpoint may subscribe to. */
export const TOPICS = [
  "intent.started",
  "intent.tx_signed",
  "intent.step_final",
  "intent.step_failed",
  "intent.waiting",
  "intent.compensating",
  "intent.alert",
  "intent.fulfilled",
  "intent.refunded",
  "intent.failed",
  "intent.completed",
  "intent.retried",
  "intent.held",
  "intent.resumed",
] as const;

/** A delivery's body. */
export interface Payload {
  type: string;
  timestamp: string;
  data: { intent_id: string } & StreamedEvent;
}

/** A delivery that verified: its payload, and its raw body and headers as they came. */
export interface Delivery {
  payload: Payload;
  body: string;
  headers: Record<string, string>;
}

const HEADERS = ["webhook-id", "webhook-timestamp", "webhook-signature"] as const;

export class Receiver {
  /** Verified deliveries, one per message id, in arrival order. */
  readonly deliveries: Delivery[] = [];
  /** Deliveries refused (answered 400): their signatures did not verify. */
  refused = 0;
  /** Messages delivered again (answered 2xx, counted once). */
  redelivered = 0;
  private verifier: Webhook | undefined;
  private readonly waiters = new Set<() => void>();

  private constructor(private readonly server: Server) {}

  /** A receiver listening on 127.0.0.1, on a free port. */
  static async start(): Promise<Receiver> {
    let receiver: Receiver | undefined;
    const server = createServer((req, res) => void receiver?.handle(req, res));
    receiver = new Receiver(server);
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", resolve);
    });
    return receiver;
  }

  /** Where baton posts deliveries. */
  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hook`;
  }

  /** Verifies deliveries with the endpoint's secret (`whsec_…`) from now on. */
  trust(secret: string): void {
    this.verifier = new Webhook(secret);
  }

  /**
   * Verifies `body` as delivered with `headers`: the payload, or `undefined` with the verifier's
   * reason when it does not verify.
   */
  verify(body: string, headers: Record<string, string>): { payload?: Payload; error?: string } {
    if (this.verifier === undefined) return { error: "no secret yet" };
    try {
      return { payload: this.verifier.verify(body, headers) as Payload };
    } catch (e) {
      if (e instanceof WebhookVerificationError) return { error: e.message };
      throw e;
    }
  }

  /** Resolves with the first delivery `wanted` accepts (already here or to come), or `undefined` after `ms`. */
  async waitFor(wanted: (d: Delivery) => boolean, ms: number): Promise<Delivery | undefined> {
    const deadline = Date.now() + ms;
    for (;;) {
      const found = this.deliveries.find(wanted);
      if (found !== undefined || Date.now() >= deadline) return found;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, Math.max(0, deadline - Date.now()));
        this.waiters.add(done);
        function done() {
          clearTimeout(timer);
          resolve();
        }
      });
    }
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      await this.receive(req, res);
    } catch (e) {
      console.error(`   webhook receiver: ${String(e)}`);
      if (!res.headersSent) answer(res, 500, "receiver error");
    }
  }

  private async receive(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString("utf8");
    if (req.method !== "POST" || req.url !== "/hook") return answer(res, 404, "no such endpoint");
    // Until the secret is known nothing can be believed: 503 asks baton to deliver it later.
    if (this.verifier === undefined) return answer(res, 503, "not ready");
    const headers: Record<string, string> = {};
    for (const name of HEADERS) {
      const value = req.headers[name];
      if (typeof value === "string") headers[name] = value;
    }
    const { payload, error } = this.verify(body, headers);
    if (payload === undefined) {
      this.refused += 1;
      return answer(res, 400, `signature refused: ${error ?? "?"}`);
    }
    if (this.deliveries.some((d) => d.headers["webhook-id"] === headers["webhook-id"])) {
      this.redelivered += 1;
      return answer(res, 204, "");
    }
    this.deliveries.push({ payload, body, headers });
    console.log(`   webhook ${payload.type} (seq ${payload.data.seq}): signature verified`);
    answer(res, 204, "");
    for (const wake of this.waiters) wake();
    this.waiters.clear();
  }
}

function answer(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { "content-type": "text/plain" });
  res.end(text);
}

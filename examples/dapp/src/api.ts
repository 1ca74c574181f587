// baton's REST API v1 as a dApp calls it: quotes, chains, submissions, webhook endpoints. Every
// call carries the API key; an error answer is `{"code", "message"}` and stops the run.

/** What the dApp asks for: the shape of `fixtures/intents/*.json`. */
export interface IntentRequest {
  name?: string;
  description?: string;
  user: string;
  nonce?: string;
  open_deadline: Deadline;
  fill_deadline: Deadline;
  inputs: { chain: number; token: string; amount: string }[];
  outputs: {
    chain: number;
    token: string;
    min_amount: string;
    recipient: string;
    call?: { target: string; data: string };
  }[];
}

/** Unix seconds, or seconds from now. */
export type Deadline = { at: number } | { in: number };

/** A quote, as far as the example reads it. The orders stay `unknown` until checked. */
export interface Quote {
  intent_id: string;
  nonce: string;
  open_deadline: number;
  fill_deadline: number;
  orders: { chain: number; order_id: string; typed_data: unknown; order: unknown }[];
  outputs: { chain: number; token: string; min_amount: string; expected_amount: string; guaranteed_amount: string }[];
  fees: { chain: number; token: string; amount: string; solver_fee: string; gas_fee: string }[];
  eta_secs: number;
  quoted_at: number;
}

export interface ChainStatus {
  chain: number;
  reachable: boolean;
  healthy: boolean;
  paused: boolean;
  /** The head block of the server's view of the chain. */
  head: number | null;
}

export interface Accepted {
  intent_id: string;
  status_url: string;
  events_url: string;
}

/** A webhook endpoint as registered, with its signing secret (shown this once). */
export interface CreatedWebhook {
  id: string;
  url: string;
  events: string[];
  secret: string;
  state: string;
}

/** An answer that was not the one expected: its status and the server's code and message. */
export class ApiError extends Error {
  override name = "ApiError";
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export class Baton {
  constructor(
    readonly base: string,
    private readonly key: string,
  ) {}

  /** `POST /v1/quotes`. */
  quote(intent: IntentRequest): Promise<Quote> {
    return this.call<Quote>("POST", "/v1/quotes", 200, intent);
  }

  /** `GET /v1/chains`: the chains the server serves, with their health. */
  chains(): Promise<ChainStatus[]> {
    return this.call<ChainStatus[]>("GET", "/v1/chains", 200);
  }

  /** `POST /v1/intents` with an `Idempotency-Key`: safe to send again with the same key. */
  submit(body: unknown, idempotencyKey: string): Promise<Accepted> {
    return this.call<Accepted>("POST", "/v1/intents", 202, body, { "idempotency-key": idempotencyKey });
  }

  /** `POST /v1/webhooks`. */
  addWebhook(url: string, events: readonly string[], description: string): Promise<CreatedWebhook> {
    return this.call<CreatedWebhook>("POST", "/v1/webhooks", 201, { url, events, description });
  }

  /** `DELETE /v1/webhooks/{id}`. */
  async deleteWebhook(id: string): Promise<void> {
    await this.call<unknown>("DELETE", `/v1/webhooks/${id}`, 204);
  }

  /** `GET /v1/intents/{id}/events` as a stream of Server-Sent Events, from after `lastEventId`. */
  async events(id: string, lastEventId: string | undefined, signal: AbortSignal): Promise<ReadableStream<Uint8Array>> {
    const headers: Record<string, string> = { ...this.auth(), accept: "text/event-stream" };
    if (lastEventId !== undefined) headers["last-event-id"] = lastEventId;
    const response = await fetch(`${this.base}/v1/intents/${id}/events`, { headers, signal });
    if (response.status !== 200 || response.body === null) throw await error(response, 200);
    return response.body;
  }

  private auth(): Record<string, string> {
    return { authorization: `Bearer ${this.key}` };
  }

  private async call<T>(
    method: string,
    path: string,
    expect: number,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<T> {
    const init: RequestInit = { method, headers: { ...this.auth(), ...headers } };
    if (body !== undefined) {
      init.headers = { ...init.headers, "content-type": "application/json" };
      init.body = JSON.stringify(body);
    }
    const response = await fetch(`${this.base}${path}`, init).catch((e: unknown) => {
      throw new Error(`${method} ${this.base}${path}: ${String((e as { cause?: unknown }).cause ?? e)}`);
    });
    if (response.status !== expect) throw await error(response, expect);
    return (expect === 204 ? undefined : await response.json()) as T;
  }
}

async function error(response: Response, expected: number): Promise<ApiError> {
  const text = await response.text();
  let code = "";
  let message = text;
  try {
    const body = JSON.parse(text) as { code?: unknown; message?: unknown };
    code = typeof body.code === "string" ? body.code : "";
    message = typeof body.message === "string" ? body.message : text;
  } catch {
    // Not JSON: the text is the message.
  }
  const url = new URL(response.url);
  return new ApiError(
    response.status,
    code,
    `${url.pathname} answered ${response.status}${code ? ` ${code}` : ""} (expected ${expected}): ${message}`,
  );
}

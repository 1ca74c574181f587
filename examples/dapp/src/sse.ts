// An intent's event stream: Server-Sent Events read with fetch (an EventSource cannot send the
// Authorization header), parsed as the HTML standard says, followed until the `decided` event. A
// stream that ends early is picked up again after the last event seen (`Last-Event-ID`).

import type { Baton } from "./api.js";
import { Refused, ensure } from "./fail.js";

/** One Server-Sent Event. */
export interface SseEvent {
  id: string | undefined;
  event: string;
  data: string;
}

/** One saga event as the stream sends it (its `data`). */
export interface StreamedEvent {
  seq: number;
  at_ms: number;
  event: { kind: string; [field: string]: unknown };
}

/** The events of a `text/event-stream` body, as they arrive. */
export async function* parseSse(body: ReadableStream<Uint8Array>): AsyncGenerator<SseEvent> {
  const decoder = new TextDecoder();
  let buffer = "";
  let event = "";
  let data: string[] = [];
  let id: string | undefined;
  const reader = body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      let end: number;
      while ((end = buffer.search(/\r\n|\r|\n/)) >= 0) {
        // A lone "\r" at the end may be the first half of "\r\n": wait for the next chunk.
        if (buffer[end] === "\r" && end === buffer.length - 1) break;
        const line = buffer.slice(0, end);
        buffer = buffer.slice(end + (buffer.startsWith("\r\n", end) ? 2 : 1));
        if (line === "") {
          if (data.length > 0) yield { id, event: event || "message", data: data.join("\n") };
          event = "";
          data = [];
          continue;
        }
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? "" : line.slice(colon + 1);
        if (value.startsWith(" ")) value = value.slice(1);
        if (field === "event") event = value;
        else if (field === "data") data.push(value);
        else if (field === "id" && !value.includes("\0")) id = value;
      }
    }
  } finally {
    reader.releaseLock();
    await body.cancel().catch(() => undefined);
  }
}

/**
 * Follows intent `id`'s events, calling `seen` for each, until `decided`; returns that one.
 * Gives up after `timeoutMs`, or when the stream ends early five times in a row.
 */
export async function follow(
  baton: Baton,
  id: string,
  seen: (e: StreamedEvent) => void,
  timeoutMs: number,
): Promise<StreamedEvent> {
  const signal = AbortSignal.timeout(timeoutMs);
  let last: string | undefined;
  try {
    for (let attempt = 1; ; attempt++) {
      const body = await baton.events(id, last, signal);
      for await (const sse of parseSse(body)) {
        const e = JSON.parse(sse.data) as StreamedEvent;
        ensure(e.event.kind === sse.event, `event ${sse.id} says kind ${e.event.kind} in a ${sse.event} event`);
        last = sse.id;
        attempt = 0;
        seen(e);
        if (e.event.kind === "decided") return e;
      }
      ensure(attempt < 5, `the event stream of ${id} ended ${attempt} times without an outcome`);
      await new Promise((r) => setTimeout(r, 1000));
    }
  } catch (e) {
    if (!signal.aborted) throw e;
    throw new Refused(`no outcome for intent ${id} within ${timeoutMs / 1000} s (last event: ${last ?? "none"})`);
  }
}

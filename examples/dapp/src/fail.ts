// A check that did not hold. The run stops there: nothing after it is signed, sent or believed,
// and the process exits with status 1 and the check's message.

export class Refused extends Error {
  override name = "Refused";
}

/** Refuses with `message` unless `ok`. */
export function ensure(ok: boolean, message: string): asserts ok {
  if (!ok) throw new Refused(message);
}

/** `value` as an object, refused (naming `what`) otherwise. */
export function object(value: unknown, what: string): Record<string, unknown> {
  ensure(typeof value === "object" && value !== null && !Array.isArray(value), `${what} is not an object`);
  return value as Record<string, unknown>;
}

/** `value` as an array, refused (naming `what`) otherwise. */
export function array(value: unknown, what: string): unknown[] {
  ensure(Array.isArray(value), `${what} is not an array`);
  return value;
}

/** `value` as a string, refused (naming `what`) otherwise. */
export function string(value: unknown, what: string): string {
  ensure(typeof value === "string", `${what} is not a string`);
  return value;
}

/** `value` (a JSON number, or a decimal or 0x-hex string) as a bigint, refused otherwise. */
export function integer(value: unknown, what: string): bigint {
  ensure(typeof value === "number" || typeof value === "string", `${what} is not a number`);
  try {
    return BigInt(value);
  } catch {
    throw new Refused(`${what} is not an integer: ${String(value)}`);
  }
}

/** Whether two JSON values are the same (objects compared key by key, in any order). */
export function sameJson(a: unknown, b: unknown): boolean {
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => sameJson(x, b[i]));
  }
  if (typeof a === "object" && a !== null && typeof b === "object" && b !== null) {
    const ka = Object.keys(a).sort();
    const kb = Object.keys(b).sort();
    return (
      sameJson(ka, kb) &&
      ka.every((k) => sameJson((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]))
    );
  }
  return a === b;
}

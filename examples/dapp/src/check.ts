// What a careful wallet checks in a quote before the user signs: each order's typed data is one of
// baton's orders for a settler the dApp trusts, for this user, giving exactly what was asked and
// getting at least what was asked, with deadlines ahead and no later than asked. Any doubt refuses.

import { type Address, type Hex, getAddress, isAddressEqual } from "viem";

import type { Deadline, IntentRequest, Quote } from "./api.js";
import { type ChainConfig, type Config, chainOf, tokenOf } from "./config.js";
import { array, ensure, integer, object, sameJson, string } from "./fail.js";
import {
  DOMAIN_FIELDS,
  type Input,
  ORDER_TYPES,
  type OrderData,
  type OrderMessage,
  addressOf,
  decodeOrderData,
  intentId,
  orderDataTypeHash,
  orderDigest,
  word,
} from "./order.js";

/** An order that passed every check: what the wallet signs and what goes back to the server. */
export interface CheckedOrder {
  chain: ChainConfig;
  message: OrderMessage;
  data: OrderData;
  /** The EIP-712 digest (the order id). */
  digest: Hex;
  /** The quote's `order`, unchanged: what `POST /v1/intents` takes back with the signature. */
  order: unknown;
}

/**
 * Checks every order of `quote` against what was `asked`, for `user`, on the chains the server
 * serves (`served`) and the dApp knows (`config`), at time `now` (unix seconds: the latest of the
 * chains' clocks and this machine's).
 */
export function checkQuote(
  quote: Quote,
  asked: IntentRequest,
  user: Address,
  served: Set<number>,
  config: Config,
  now: number,
): CheckedOrder[] {
  const orders = array(quote.orders, "the quote's orders").map((o, i) =>
    checkOrder(object(o, `orders[${i}]`), `orders[${i}]`, user, served, config),
  );
  const origins = new Set(asked.inputs.map((i) => i.chain));
  ensure(
    orders.length === origins.size && orders.every((o) => origins.has(o.chain.id)),
    `the quote has orders on chains [${orders.map((o) => o.chain.id)}]; the inputs are on [${[...origins]}]`,
  );
  const lead = orders[0];
  ensure(lead !== undefined, "the quote has no order");
  for (const o of orders) {
    const what = `the order on chain ${o.chain.id}`;
    ensure(o.message.nonce === lead.message.nonce, `${what} has another nonce than the first order`);
    ensure(
      o.message.openDeadline === lead.message.openDeadline && o.message.fillDeadline === lead.message.fillDeadline,
      `${what} has other deadlines than the first order`,
    );
    ensure(
      o.data.intentId === quote.intent_id.toLowerCase(),
      `${what} is for intent ${o.data.intentId}, the quote for ${quote.intent_id}`,
    );
    ensure(
      sameJson(json(o.data.outputs), json(lead.data.outputs)) && sameJson(json(o.data.calls), json(lead.data.calls)),
      `${what} promises other outputs than the first order`,
    );
    checkInputs(o, asked);
  }
  if (asked.nonce !== undefined) {
    ensure(
      lead.message.nonce === BigInt(asked.nonce),
      `the orders use nonce ${lead.message.nonce}, asked ${asked.nonce}`,
    );
  }
  checkOutputs(lead.data, asked, config);
  checkDeadline("open", lead.message.openDeadline, asked.open_deadline, now);
  checkDeadline("fill", lead.message.fillDeadline, asked.fill_deadline, now);
  ensure(lead.message.fillDeadline >= lead.message.openDeadline, "the fill deadline is before the open deadline");
  // The intent id binds the orders together: recomputed from what was checked, it must be theirs.
  const inputs: Input[] = asked.inputs.map((a) => {
    const chain = chainOf(config, a.chain, "an input");
    return { token: tokenOf(chain, a.token, "an input"), amount: BigInt(a.amount), chainId: BigInt(a.chain) };
  });
  const id = intentId(lead.message, inputs, lead.data);
  ensure(id === quote.intent_id.toLowerCase(), `the orders describe intent ${id}, not the quoted ${quote.intent_id}`);
  for (const o of orders) {
    ensure(
      o.digest === o.quotedId.toLowerCase(),
      `order ${o.quotedId} is not the digest of its typed data (${o.digest})`,
    );
  }
  return orders.map(({ quotedId: _, ...o }) => o);
}

/** One order: its typed data is baton's order type under a trusted settler's domain, for `user`. */
function checkOrder(
  quoted: Record<string, unknown>,
  what: string,
  user: Address,
  served: Set<number>,
  config: Config,
): CheckedOrder & { quotedId: string } {
  const typed = object(quoted.typed_data, `${what}.typed_data`);
  ensure(typed.primaryType === "GaslessCrossChainOrder", `${what} is a ${String(typed.primaryType)}, not an order`);
  const types = object(typed.types, `${what}.typed_data.types`);
  ensure(
    sameJson(types, { EIP712Domain: DOMAIN_FIELDS, ...ORDER_TYPES }),
    `${what}'s EIP-712 types are not ERC-7683's GaslessCrossChainOrder: ${JSON.stringify(types)}`,
  );
  const d = object(typed.domain, `${what}.typed_data.domain`);
  const chainId = Number(integer(d.chainId, `${what}'s domain chainId`));
  ensure(served.has(chainId), `${what} is signed for chain ${chainId}, which the server does not serve`);
  const chain = chainOf(config, chainId, what);
  ensure(
    d.name === "BatonOriginSettler" && d.version === "1",
    `${what}'s domain is ${String(d.name)} v${String(d.version)}, not BatonOriginSettler v1`,
  );
  const verifying = getAddress(string(d.verifyingContract, `${what}'s verifyingContract`));
  ensure(
    isAddressEqual(verifying, chain.originSettler),
    `${what} would be signed for contract ${verifying}, not chain ${chainId}'s origin settler ${chain.originSettler}`,
  );
  ensure(Number(quoted.chain) === chainId, `${what} says chain ${String(quoted.chain)}, its domain ${chainId}`);
  // What is signed is what is submitted.
  ensure(sameJson(typed.message, quoted.order), `${what}'s typed data message is not its order`);
  const m = object(typed.message, `${what}.typed_data.message`);
  const message: OrderMessage = {
    originSettler: getAddress(string(m.originSettler, `${what}.originSettler`)),
    user: getAddress(string(m.user, `${what}.user`)),
    nonce: integer(m.nonce, `${what}.nonce`),
    originChainId: integer(m.originChainId, `${what}.originChainId`),
    openDeadline: Number(integer(m.openDeadline, `${what}.openDeadline`)),
    fillDeadline: Number(integer(m.fillDeadline, `${what}.fillDeadline`)),
    orderDataType: string(m.orderDataType, `${what}.orderDataType`) as Hex,
    orderData: string(m.orderData, `${what}.orderData`) as Hex,
  };
  ensure(isAddressEqual(message.originSettler, verifying), `${what}'s originSettler is not its domain's contract`);
  ensure(message.originChainId === BigInt(chainId), `${what}'s originChainId is not its domain's chain`);
  ensure(isAddressEqual(message.user, user), `${what} is for user ${message.user}, but the signer is ${user}`);
  ensure(
    message.orderDataType.toLowerCase() === orderDataTypeHash(),
    `${what}'s orderDataType is not baton's BatonOrderData: its orderData cannot be read`,
  );
  let data: OrderData;
  try {
    data = decodeOrderData(message.orderData);
  } catch (e) {
    throw new Error(`${what}'s orderData does not decode as BatonOrderData: ${String(e)}`);
  }
  const digest = orderDigest(chainId, chain.originSettler, message);
  return { chain, message, data, digest, order: quoted.order, quotedId: string(quoted.order_id, `${what}.order_id`) };
}

/** The order's inputs are exactly the inputs asked on its chain, in order. */
function checkInputs(order: CheckedOrder, asked: IntentRequest): void {
  const wanted = asked.inputs.filter((a) => a.chain === order.chain.id);
  const what = `the order on chain ${order.chain.id}`;
  ensure(
    order.data.inputs.length === wanted.length,
    `${what} takes ${order.data.inputs.length} input(s); ${wanted.length} asked there`,
  );
  wanted.forEach((a, i) => {
    const input = order.data.inputs[i];
    const token = tokenOf(order.chain, a.token, `input ${a.token}`);
    ensure(
      input !== undefined &&
        isAddressEqual(input.token, token) &&
        input.amount === BigInt(a.amount) &&
        input.chainId === BigInt(order.chain.id),
      `${what} takes ${input?.amount} of ${input?.token}; asked: ${a.amount} of ${a.token} (${token})`,
    );
  });
}

/** Every output asked, in order, to its recipient, with at least its minimum, and its call. */
function checkOutputs(data: OrderData, asked: IntentRequest, config: Config): void {
  ensure(
    data.outputs.length === asked.outputs.length,
    `the orders promise ${data.outputs.length} output(s); ${asked.outputs.length} asked`,
  );
  asked.outputs.forEach((a, j) => {
    const output = data.outputs[j];
    const what = `output ${j}`;
    ensure(output !== undefined, `${what} is missing`);
    const chain = chainOf(config, a.chain, what);
    const token = tokenOf(chain, a.token, what);
    ensure(output.chainId === BigInt(a.chain), `${what} is delivered on chain ${output.chainId}, asked ${a.chain}`);
    ensure(
      output.token === word(token),
      `${what} delivers token ${addressOf(output.token)}, asked ${a.token} (${token})`,
    );
    ensure(
      output.recipient === word(getAddress(a.recipient)),
      `${what} pays ${addressOf(output.recipient)}, asked recipient ${a.recipient}`,
    );
    ensure(
      output.amount >= BigInt(a.min_amount),
      `${what} promises ${output.amount}, less than the ${a.min_amount} asked`,
    );
  });
  const calls = asked.outputs.flatMap((a, j) => (a.call ? [{ j, ...a.call }] : []));
  ensure(data.calls.length === calls.length, `the orders make ${data.calls.length} call(s); ${calls.length} asked`);
  calls.forEach((c, k) => {
    const call = data.calls[k];
    ensure(
      call !== undefined &&
        call.outputIndex === c.j &&
        isAddressEqual(call.target, getAddress(c.target)) &&
        call.data.toLowerCase() === c.data.toLowerCase(),
      `call ${k} is not the call asked after output ${c.j}`,
    );
  });
}

/** A deadline ahead of `now`, and no later than asked. */
function checkDeadline(what: string, deadline: number, asked: Deadline, now: number): void {
  ensure(deadline > now, `the ${what} deadline ${deadline} has passed (now ${now})`);
  const latest = "at" in asked ? asked.at : now + asked.in;
  ensure(deadline <= latest, `the ${what} deadline ${deadline} is later than asked (${latest})`);
}

/** Decoded values as JSON (bigints as decimal strings), for comparison. */
function json(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value, (_, v: unknown) => (typeof v === "bigint" ? v.toString() : v)));
}

// The example dApp, step by step: quote an intent, check the typed data as a careful wallet would,
// sign it with the user's key, submit it (twice, with one Idempotency-Key), follow its events to
// the outcome, see the outcome on chain, and verify baton's webhooks with the Standard Webhooks
// reference verifier. Exit status 0 when every check held, 1 with the failed check's message.

import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { type Address, type Hex, getAddress } from "viem";
import { privateKeyToAccount } from "viem/accounts";

import { Baton, type CreatedWebhook, type IntentRequest } from "./api.js";
import { Chains } from "./chain.js";
import { checkQuote } from "./check.js";
import { type Config, loadConfig } from "./config.js";
import { Refused, ensure, sameJson } from "./fail.js";
import { ORDER_TYPES, type Output, addressOf, domain } from "./order.js";
import { type StreamedEvent, follow } from "./sse.js";
import { Receiver, TOPICS } from "./webhooks.js";

/** Anvil's dev account 2: who receives the output of the built-in intent. */
const RECIPIENT = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";

async function run(): Promise<void> {
  const started = Date.now();
  const config = loadConfig();
  const account = privateKeyToAccount(config.userKey);
  const baton = new Baton(config.server, config.apiKey);
  const chains = new Chains(config, account);
  const asked = intent(config, account.address);

  // 1. The quote: the plan's price and timing, and the orders to sign.
  const quote = await baton.quote(asked);
  console.log(`1. quote for intent ${quote.intent_id}: eta ${quote.eta_secs} s`);
  for (const o of quote.outputs) {
    console.log(
      `   ${o.token} on chain ${o.chain}: at least ${o.min_amount}, expected ${o.expected_amount}, guaranteed ${o.guaranteed_amount}`,
    );
  }
  for (const f of quote.fees) {
    console.log(`   ${f.amount} ${f.token} on chain ${f.chain}: solver fee ${f.solver_fee}, gas ${f.gas_fee}`);
  }

  // 2. The typed data, checked before anything is signed; then the settlers' own view of it.
  const served = new Set((await baton.chains()).map((c) => c.chain));
  const clocks = await Promise.all([...config.chains.keys()].map((c) => chains.time(c)));
  const now = Math.max(Math.floor(Date.now() / 1000), ...clocks);
  const orders = checkQuote(quote, asked, account.address, served, config, now);
  for (const o of orders) {
    const view = await chains.settlerView(o);
    ensure(
      view.orderId === o.digest,
      `chain ${o.chain.id}'s settler computes order id ${view.orderId}, not ${o.digest}`,
    );
    ensure(!view.nonceUsed, `the user's nonce ${o.message.nonce} is already used on chain ${o.chain.id}`);
    console.log(
      `2. order ${o.digest} on chain ${o.chain.id} checked: settler ${o.chain.originSettler}, user ${o.message.user}, ` +
        `inputs and outputs as asked, open by +${o.message.openDeadline - now} s, fill by +${o.message.fillDeadline - now} s, ` +
        `the settler's orderId() agrees`,
    );
  }

  // 3. The settler's allowance, the signatures, and the submission (twice, with one key).
  for (const o of orders) {
    const totals = new Map<Address, bigint>();
    for (const i of o.data.inputs) totals.set(i.token, (totals.get(i.token) ?? 0n) + i.amount);
    for (const [token, amount] of totals) {
      const approval = await chains.ensureAllowance(o.chain, token, account.address, amount);
      const what = await chains.format(o.chain.id, token, amount);
      if (approval === undefined) {
        console.log(`3. chain ${o.chain.id}: the allowance covers ${what}`);
      } else {
        console.log(
          `3. chain ${o.chain.id}: approved the settler to pull ${what} (${approval.hash}, block ${approval.block})`,
        );
      }
    }
  }
  const signed = {
    orders: await Promise.all(
      orders.map(async (o) => ({
        order: o.order,
        signature: await account.signTypedData({
          domain: domain(o.chain.id, o.chain.originSettler),
          types: ORDER_TYPES,
          primaryType: "GaslessCrossChainOrder",
          message: o.message,
        }),
      })),
    ),
  };
  console.log(`   signed ${orders.length} order(s) as ${account.address}`);

  const receiver = await Receiver.start();
  let endpoint: CreatedWebhook | undefined;
  let done = false;
  try {
    endpoint = await baton.addWebhook(receiver.url, TOPICS, "baton example dApp");
    receiver.trust(endpoint.secret);
    console.log(`   webhook endpoint ${endpoint.id} registered for ${receiver.url}`);

    const owed = owedBalances(orders[0]?.data.outputs ?? []);
    const before = await Promise.all(owed.map((o) => chains.balance(o.chain, o.token, o.recipient)));
    const key = randomUUID();
    const accepted = await baton.submit(signed, key);
    const again = await baton.submit(signed, key);
    ensure(
      accepted.intent_id === quote.intent_id,
      `the server accepted intent ${accepted.intent_id}, not the quoted one`,
    );
    ensure(
      again.intent_id === accepted.intent_id,
      `the same Idempotency-Key answered intent ${again.intent_id} the second time`,
    );
    const id = accepted.intent_id;
    console.log(`   submitted: intent ${id} (Idempotency-Key ${key}); submitted again with the key: the same intent`);

    // 4. The events, as they happen, until the outcome.
    console.log(`4. events of ${id}:`);
    const decided = await follow(baton, id, (e) => console.log(`   ${e.seq} ${describe(e)}`), 300_000);
    const outcome = decided.event.outcome as { outcome: string; reason?: string };
    ensure(
      outcome.outcome === "fulfilled",
      `the intent was ${outcome.outcome}${outcome.reason ? `: ${outcome.reason}` : ""}`,
    );

    // 5. The outcome on chain: every recipient got at least the order's amount.
    const received: string[] = [];
    for (const [j, { chain, token, recipient, amount }] of owed.entries()) {
      const grew = (await chains.balance(chain, token, recipient)) - (before[j] ?? 0n);
      const [got, least] = [await chains.format(chain, token, grew), await chains.format(chain, token, amount)];
      ensure(grew >= amount, `on chain ${chain}, ${recipient} received ${got}, less than the order's ${least}`);
      console.log(`5. on chain ${chain}: ${recipient} received ${got} (the order's minimum: ${least})`);
      received.push(`${got} to ${recipient} on chain ${chain}`);
    }

    // 6. The outcome's webhook, verified; and a tampered copy of it, refused.
    const hooks = await checkWebhooks(receiver, id, decided, outcome.outcome);
    const secs = ((Date.now() - started) / 1000).toFixed(1);
    console.log(`7. intent ${id} ${outcome.outcome} in ${secs} s: ${received.join("; ")}; ${hooks}`);
    done = true;
  } finally {
    await receiver.close();
    if (endpoint !== undefined) {
      const hook = endpoint.id;
      // After a failure, the failure is what the run reports; the endpoint is removed if it can be.
      await baton.deleteWebhook(hook).then(
        () => console.log(`   webhook endpoint ${hook} deleted`),
        (e: unknown) => {
          if (done) throw e;
          console.warn(`   could not delete webhook endpoint ${hook}: ${String(e)}`);
        },
      );
    }
  }
}

/**
 * Waits for the webhook of the outcome (it reports the stream's `decided` event), then shows that
 * a copy with its body altered fails verification and is answered 400.
 */
async function checkWebhooks(receiver: Receiver, id: string, decided: StreamedEvent, outcome: string): Promise<string> {
  const type = `intent.${outcome}`;
  const hook = await receiver.waitFor((d) => d.payload.type === type && d.payload.data.intent_id === id, 60_000);
  ensure(hook !== undefined, `no verified ${type} webhook for ${id} within a minute`);
  ensure(
    hook.payload.data.seq === decided.seq && sameJson(hook.payload.data.event, decided.event),
    `the ${type} webhook reports ${JSON.stringify(hook.payload.data)}, the stream's decided event is ${JSON.stringify(decided)}`,
  );
  const tampered = hook.body.replace(type, "intent.refunded");
  ensure(tampered !== hook.body, "could not alter the delivery's body");
  ensure(receiver.verify(tampered, hook.headers).payload === undefined, "a tampered delivery verified");
  const answer = await fetch(receiver.url, {
    method: "POST",
    headers: { ...hook.headers, "content-type": "application/json" },
    body: tampered,
  });
  ensure(answer.status === 400, `the receiver answered ${answer.status} to a tampered delivery`);
  const ours = receiver.deliveries.filter((d) => d.payload.data.intent_id === id);
  console.log(
    `6. webhooks: ${ours.length} deliveries for the intent verified (${ours.map((d) => d.payload.type).join(", ")}); ` +
      `${type} reports the decided event; a tampered copy fails verification and is answered 400` +
      (receiver.redelivered > 0 ? `; ${receiver.redelivered} redelivery(ies) counted once` : ""),
  );
  return `${ours.length} webhooks verified, a tampered one refused`;
}

/** The intent to quote: the file given, or 1,000 USDC on the first chain for at least 0.39 WETH on the second. */
function intent(config: Config, user: Address): IntentRequest {
  if (config.intentFile !== undefined) {
    const file = JSON.parse(readFileSync(config.intentFile, "utf8")) as IntentRequest & { expect?: unknown };
    delete file.expect;
    return file;
  }
  const [origin, destination] = [...config.chains.keys()].sort((a, b) => a - b);
  ensure(origin !== undefined && destination !== undefined, "the built-in intent needs two chains");
  return {
    name: "cross-chain swap",
    description: "Give 1,000 USDC on one chain; deliver at least 0.39 WETH on another within 5 minutes.",
    user,
    open_deadline: { in: 60 },
    fill_deadline: { in: 300 },
    inputs: [{ chain: origin, token: "USDC", amount: "1000000000" }],
    outputs: [
      { chain: destination, token: "WETH", min_amount: "390000000000000000", recipient: getAddress(RECIPIENT) },
    ],
  };
}

/** What the outputs owe each (chain, token, recipient), in total. */
function owedBalances(outputs: readonly Output[]) {
  const owed = new Map<string, { chain: number; token: Address; recipient: Address; amount: bigint }>();
  for (const out of outputs) {
    const [chain, token, recipient] = [Number(out.chainId), addressOf(out.token), addressOf(out.recipient)];
    const key = `${chain}/${token}/${recipient}`;
    const amount = (owed.get(key)?.amount ?? 0n) + out.amount;
    owed.set(key, { chain, token, recipient, amount });
  }
  return [...owed.values()];
}

/** An event in a few words: its kind, its step, the outcome. */
function describe(e: StreamedEvent): string {
  const ev = e.event;
  const step = typeof ev.step === "number" ? ` step ${ev.step}${ev.comp === true ? " (compensation)" : ""}` : "";
  const tx = typeof ev.tx === "string" ? ` tx ${ev.tx as Hex}` : "";
  const outcome = ev.kind === "decided" ? `: ${(ev.outcome as { outcome: string }).outcome}` : "";
  return `${ev.kind}${step}${tx}${outcome}`;
}

run().then(
  () => process.exit(0),
  (e: unknown) => {
    const why = e instanceof Refused ? "refused" : "failed";
    console.error(`${why}: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  },
);

// What the example runs against, from the environment. The chains — RPC URLs, settlers, tokens —
// come from the devnet file `baton devnet up` writes: that is the dApp's own configuration, what it
// trusts. The server's answers are checked against it, never the other way round.

import { readFileSync } from "node:fs";
import { type Address, type Hex, getAddress, isAddress, isHex } from "viem";

import { ensure } from "./fail.js";

/** One chain as the dApp knows it. */
export interface ChainConfig {
  id: number;
  rpcUrl: string;
  /** The ERC-7683 origin settler: the only contract the user's orders may be signed for. */
  originSettler: Address;
  destinationSettler: Address;
  /** Token addresses by symbol. */
  tokens: Record<string, Address>;
}

export interface Config {
  server: string;
  apiKey: string;
  chains: Map<number, ChainConfig>;
  /** The user's private key: only this process sees it. */
  userKey: Hex;
  /** An intent file (the shape of `fixtures/intents/*.json`), when one is given. */
  intentFile: string | undefined;
}

/**
 * `BATON_SERVER` (default `http://127.0.0.1:8080`), `BATON_API_KEY` (a `dapp` key),
 * `BATON_DEVNET` (default `.baton/devnet.json`), `BATON_USER_KEY` (default: the devnet file's
 * user, anvil dev account 1), and an optional intent file as the first argument.
 */
export function loadConfig(): Config {
  const apiKey = process.env.BATON_API_KEY ?? "";
  ensure(apiKey !== "", "BATON_API_KEY is not set: the example needs a dapp API key");
  const devnetPath = process.env.BATON_DEVNET ?? ".baton/devnet.json";
  let devnet: DevnetFile;
  try {
    devnet = JSON.parse(readFileSync(devnetPath, "utf8")) as DevnetFile;
  } catch (e) {
    throw new Error(
      `reading the devnet file ${devnetPath} (run \`baton devnet up\`, or set BATON_DEVNET): ${String(e)}`,
    );
  }
  const chains = new Map<number, ChainConfig>();
  for (const c of devnet.chains ?? []) {
    const tokens: Record<string, Address> = {};
    for (const [symbol, address] of Object.entries(c.tokens)) tokens[symbol] = getAddress(address);
    chains.set(c.chain_id, {
      id: c.chain_id,
      rpcUrl: c.rpc_url,
      originSettler: getAddress(c.origin_settler),
      destinationSettler: getAddress(c.destination_settler),
      tokens,
    });
  }
  ensure(chains.size > 0, `the devnet file ${devnetPath} names no chain`);
  const userKey = process.env.BATON_USER_KEY ?? devnet.accounts?.user?.dev_private_key ?? "";
  ensure(isHex(userKey) && userKey.length === 66, "BATON_USER_KEY must be a 32-byte 0x-hex private key");
  return {
    server: (process.env.BATON_SERVER ?? "http://127.0.0.1:8080").replace(/\/+$/, ""),
    apiKey,
    chains,
    userKey,
    intentFile: process.argv[2],
  };
}

/** The chain `id` of the dApp's configuration; refused when the dApp does not know it. */
export function chainOf(config: Config, id: number, what: string): ChainConfig {
  const chain = config.chains.get(id);
  ensure(chain !== undefined, `${what}: chain ${id} is not one the dApp is configured for`);
  return chain;
}

/** A token named by symbol or address on `chain`, as the dApp knows it. */
export function tokenOf(chain: ChainConfig, token: string, what: string): Address {
  if (isAddress(token)) return getAddress(token);
  const address = chain.tokens[token];
  ensure(address !== undefined, `${what}: the dApp knows no token ${token} on chain ${chain.id}`);
  return address;
}

/** The parts of `baton devnet up`'s file the example reads. */
interface DevnetFile {
  chains?: {
    chain_id: number;
    rpc_url: string;
    tokens: Record<string, string>;
    origin_settler: string;
    destination_settler: string;
  }[];
  accounts?: Record<string, { dev_private_key: string } | undefined>;
}

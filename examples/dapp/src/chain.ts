// The chains as the dApp reads them itself, with viem, from the RPC URLs it is configured with:
// the settler's own view of an order, the user's balance and allowance (and the approval when it
// is short), the chains' clocks, and the balances that show an outcome.

import {
  type Account,
  type Address,
  type Hex,
  type PublicClient,
  type WalletClient,
  createPublicClient,
  createWalletClient,
  defineChain,
  erc20Abi,
  formatUnits,
  http,
  parseAbi,
} from "viem";

import type { ChainConfig, Config } from "./config.js";
import { ensure } from "./fail.js";
import type { CheckedOrder } from "./check.js";

const SETTLER_ABI = parseAbi([
  "struct GaslessCrossChainOrder { address originSettler; address user; uint256 nonce; uint256 originChainId; uint32 openDeadline; uint32 fillDeadline; bytes32 orderDataType; bytes orderData; }",
  "function orderId(GaslessCrossChainOrder order) view returns (bytes32)",
  "function nonceUsed(address user, uint256 nonce) view returns (bool)",
]);

/** A viem public client for each configured chain, and a wallet client for the user. */
export class Chains {
  private readonly clients = new Map<number, { read: PublicClient; write: WalletClient }>();

  constructor(config: Config, account: Account) {
    for (const c of config.chains.values()) {
      const chain = defineChain({
        id: c.id,
        name: `baton devnet ${c.id}`,
        nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
        rpcUrls: { default: { http: [c.rpcUrl] } },
      });
      const transport = http(c.rpcUrl);
      this.clients.set(c.id, {
        read: createPublicClient({ chain, transport, pollingInterval: 250 }),
        write: createWalletClient({ account, chain, transport }),
      });
    }
  }

  private client(chain: number) {
    const c = this.clients.get(chain);
    ensure(c !== undefined, `no client for chain ${chain}`);
    return c;
  }

  /** The latest block's timestamp on `chain`, unix seconds. */
  async time(chain: number): Promise<number> {
    const block = await this.client(chain).read.getBlock({ blockTag: "latest" });
    return Number(block.timestamp);
  }

  /** The settler's own order id for `order`, and whether the user's nonce is still unused. */
  async settlerView(order: CheckedOrder): Promise<{ orderId: Hex; nonceUsed: boolean }> {
    const read = this.client(order.chain.id).read;
    const address = order.chain.originSettler;
    const [orderId, nonceUsed] = await Promise.all([
      read.readContract({ address, abi: SETTLER_ABI, functionName: "orderId", args: [order.message] }),
      read.readContract({
        address,
        abi: SETTLER_ABI,
        functionName: "nonceUsed",
        args: [order.message.user, order.message.nonce],
      }),
    ]);
    return { orderId, nonceUsed };
  }

  /**
   * Makes sure the origin settler may pull `amount` of `token` from `user`: the balance must
   * cover it, and a short allowance is raised to exactly `amount` (a careful wallet approves what
   * is needed, not everything). Returns the approval's transaction and block, when one was sent.
   */
  async ensureAllowance(
    chain: ChainConfig,
    token: Address,
    user: Address,
    amount: bigint,
  ): Promise<{ hash: Hex; block: bigint } | undefined> {
    const { read, write } = this.client(chain.id);
    const [balance, allowance] = await Promise.all([
      this.balance(chain.id, token, user),
      read.readContract({
        address: token,
        abi: erc20Abi,
        functionName: "allowance",
        args: [user, chain.originSettler],
      }),
    ]);
    ensure(balance >= amount, `the user holds ${balance} of ${token} on chain ${chain.id}; the order takes ${amount}`);
    if (allowance >= amount) return undefined;
    const account = write.account;
    ensure(account !== undefined, "the wallet client has no account");
    const hash = await write.writeContract({
      address: token,
      abi: erc20Abi,
      functionName: "approve",
      args: [chain.originSettler, amount],
      account,
      chain: write.chain,
    });
    const receipt = await read.waitForTransactionReceipt({ hash });
    ensure(receipt.status === "success", `the approval ${hash} on chain ${chain.id} reverted`);
    return { hash, block: receipt.blockNumber };
  }

  /** `who`'s balance of `token` on `chain`. */
  balance(chain: number, token: Address, who: Address): Promise<bigint> {
    return this.client(chain).read.readContract({
      address: token,
      abi: erc20Abi,
      functionName: "balanceOf",
      args: [who],
    });
  }

  /** `amount` of `token` on `chain` for people: "0.41 WETH". */
  async format(chain: number, token: Address, amount: bigint): Promise<string> {
    const read = this.client(chain).read;
    const [decimals, symbol] = await Promise.all([
      read.readContract({ address: token, abi: erc20Abi, functionName: "decimals" }),
      read.readContract({ address: token, abi: erc20Abi, functionName: "symbol" }),
    ]);
    return `${formatUnits(amount, decimals)} ${symbol}`;
  }
}

// baton's ERC-7683 orders as a wallet sees them: the EIP-712 types, the `orderData` inside, and the
// intent id that links the orders of one intent. Nothing here trusts the server: the types are
// written out as ERC-7683 and baton's settler define them, and `orderData` is decoded by the dApp.

import {
  type Address,
  type Hex,
  decodeAbiParameters,
  getAddress,
  hashStruct,
  hashTypedData,
  keccak256,
  pad,
  toHex,
} from "viem";

/** ERC-7683's `GaslessCrossChainOrder`: what the user signs. */
export const ORDER_TYPES = {
  GaslessCrossChainOrder: [
    { name: "originSettler", type: "address" },
    { name: "user", type: "address" },
    { name: "nonce", type: "uint256" },
    { name: "originChainId", type: "uint256" },
    { name: "openDeadline", type: "uint32" },
    { name: "fillDeadline", type: "uint32" },
    { name: "orderDataType", type: "bytes32" },
    { name: "orderData", type: "bytes" },
  ],
} as const;

/** The EIP-712 domain's fields: every order is signed under the origin settler's domain. */
export const DOMAIN_FIELDS = [
  { name: "name", type: "string" },
  { name: "version", type: "string" },
  { name: "chainId", type: "uint256" },
  { name: "verifyingContract", type: "address" },
] as const;

/** The EIP-712 encoding of baton's `orderData` type; its hash is every order's `orderDataType`. */
export const ORDER_DATA_TYPE =
  "BatonOrderData(bytes32 intentId,Input[] inputs,Output[] outputs,Call[] calls)" +
  "Call(uint32 outputIndex,address target,bytes data)" +
  "Input(address token,uint256 amount,uint256 chainId)" +
  "Output(bytes32 token,uint256 amount,bytes32 recipient,uint256 chainId)";

/** The whole intent; its EIP-712 struct hash is the intent id every order carries. */
const INTENT_TYPES = {
  BatonIntent: [
    { name: "user", type: "address" },
    { name: "nonce", type: "uint256" },
    { name: "openDeadline", type: "uint32" },
    { name: "fillDeadline", type: "uint32" },
    { name: "inputs", type: "Input[]" },
    { name: "outputs", type: "Output[]" },
    { name: "calls", type: "Call[]" },
  ],
  Input: [
    { name: "token", type: "address" },
    { name: "amount", type: "uint256" },
    { name: "chainId", type: "uint256" },
  ],
  Output: [
    { name: "token", type: "bytes32" },
    { name: "amount", type: "uint256" },
    { name: "recipient", type: "bytes32" },
    { name: "chainId", type: "uint256" },
  ],
  Call: [
    { name: "outputIndex", type: "uint32" },
    { name: "target", type: "address" },
    { name: "data", type: "bytes" },
  ],
} as const;

/** `abi.encode(BatonOrderData)`, as the settler decodes it. */
const ORDER_DATA_ABI = [
  {
    type: "tuple",
    components: [
      { name: "intentId", type: "bytes32" },
      {
        name: "inputs",
        type: "tuple[]",
        components: INTENT_TYPES.Input,
      },
      {
        name: "outputs",
        type: "tuple[]",
        components: INTENT_TYPES.Output,
      },
      {
        name: "calls",
        type: "tuple[]",
        components: INTENT_TYPES.Call,
      },
    ],
  },
] as const;

/** An order's message with its values typed. */
export interface OrderMessage {
  originSettler: Address;
  user: Address;
  nonce: bigint;
  originChainId: bigint;
  openDeadline: number;
  fillDeadline: number;
  orderDataType: Hex;
  orderData: Hex;
}

export interface Input {
  token: Address;
  amount: bigint;
  chainId: bigint;
}

export interface Output {
  token: Hex;
  amount: bigint;
  recipient: Hex;
  chainId: bigint;
}

export interface Call {
  outputIndex: number;
  target: Address;
  data: Hex;
}

/** baton's `orderData`, decoded. */
export interface OrderData {
  intentId: Hex;
  inputs: readonly Input[];
  outputs: readonly Output[];
  calls: readonly Call[];
}

/** The settler's domain on `chainId`. */
export function domain(chainId: number, settler: Address) {
  return { name: "BatonOriginSettler", version: "1", chainId, verifyingContract: settler } as const;
}

/** The EIP-712 digest the user signs; the settler's `orderId(order)` and the quote's `order_id`. */
export function orderDigest(chainId: number, settler: Address, message: OrderMessage): Hex {
  return hashTypedData({
    domain: domain(chainId, settler),
    types: ORDER_TYPES,
    primaryType: "GaslessCrossChainOrder",
    message,
  });
}

export function decodeOrderData(data: Hex): OrderData {
  const [decoded] = decodeAbiParameters(ORDER_DATA_ABI, data);
  return decoded;
}

/** The intent id of the intent these orders make up: inputs in the order they were asked. */
export function intentId(message: OrderMessage, inputs: readonly Input[], data: OrderData): Hex {
  return hashStruct({
    types: INTENT_TYPES,
    primaryType: "BatonIntent",
    data: {
      user: message.user,
      nonce: message.nonce,
      openDeadline: message.openDeadline,
      fillDeadline: message.fillDeadline,
      inputs,
      outputs: data.outputs,
      calls: data.calls,
    },
  });
}

export function orderDataTypeHash(): Hex {
  return keccak256(toHex(ORDER_DATA_TYPE));
}

/** An address as ERC-7683's `bytes32` (left-padded). */
export function word(address: Address): Hex {
  return pad(address.toLowerCase() as Hex, { size: 32 });
}

/** A `bytes32` that holds an address, as the address. */
export function addressOf(word: Hex): Address {
  return getAddress(`0x${word.slice(-40)}`);
}

import type { AccountSnapshot, Decimal, NoticeKind, Purpose, Rates, Timestamp } from './contract.js';
import type { Capabilities, Role } from './index.js';

export interface MemoryAccount {
  snapshot: AccountSnapshot;
  cards: string[];
  state: Uint8Array;
  watermark?: Decimal;
}

/** A fresh account for `MemoryCaps`: override any field. */
export function account(
  id: string,
  fields?: { snapshot?: Partial<AccountSnapshot>; cards?: string[]; state?: Uint8Array; watermark?: Decimal },
): MemoryAccount;

/** In-memory capabilities recording what the rules asked for. */
export class MemoryCaps implements Capabilities {
  constructor(options?: { subject?: MemoryAccount; parent?: MemoryAccount; now?: Timestamp | number; rates?: Rates });
  accounts: { subject?: MemoryAccount; parent?: MemoryAccount };
  charges: { payer: string; card: string; amount: Decimal; purpose: Purpose; key: string }[];
  timers: { account: string; at: Timestamp; tag: bigint }[];
  notices: { account: string; kind: NoticeKind; message: string }[];
  snapshot(who: Role): AccountSnapshot;
  balance(who: Role): Decimal;
  id(who: Role): string;
  status(who: Role): AccountSnapshot['status'];
  hasCard(who: Role, card: string): boolean;
  state(who: Role): Uint8Array;
  setState(who: Role, state: Uint8Array): void;
  watermark(who: Role): Decimal | undefined;
  setWatermark(who: Role, watermark: Decimal | undefined): void;
  setStatus(who: Role, status: AccountSnapshot['status']): void;
  now(): Timestamp;
  rates(): Rates;
  requestCharge(payer: Role, card: string, amount: Decimal, purpose: Purpose, key: string): void;
  wakeAt(who: Role, at: Timestamp, tag: bigint): void;
  notify(who: Role, kind: NoticeKind, message: string): void;
}

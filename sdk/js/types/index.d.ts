// @recharge/policy-sdk: the helpers and the shape of a policy.

import type {
  AccountSnapshot,
  AccountStatus,
  AccountView,
  Answer,
  Decimal,
  Event,
  MinuteQuote,
  MinuteType,
  NoticeKind,
  PolicyErrorValue,
  Purpose,
  QueryKind,
  Rates,
  Refusal,
  Timestamp,
} from './contract.js';

export type * from './contract.js';

// ---- money ----------------------------------------------------------------
export const MAX_SCALE: 28;
export const ZERO: Decimal;
export function decimal(mantissa: bigint, scale?: number): Decimal;
export function parse(text: string): Decimal;
export function tryParse(text: string): Decimal | null;
export function format(value: Decimal): string;
export function display(value: Decimal): string;
export function add(a: Decimal, b: Decimal): Decimal;
export function sub(a: Decimal, b: Decimal): Decimal;
export function mul(a: Decimal, b: Decimal): Decimal;
export function neg(value: Decimal): Decimal;
export function compare(a: Decimal, b: Decimal): -1 | 0 | 1;
export function eq(a: Decimal, b: Decimal): boolean;
export function lt(a: Decimal, b: Decimal): boolean;
export function lte(a: Decimal, b: Decimal): boolean;
export function gt(a: Decimal, b: Decimal): boolean;
export function gte(a: Decimal, b: Decimal): boolean;
export function isPositive(value: Decimal): boolean;
export function isNegative(value: Decimal): boolean;
export function isZero(value: Decimal): boolean;
export function isWholeCents(value: Decimal): boolean;
export function wholeCentsUp(value: Decimal): Decimal;
export function nearestCent(value: Decimal): Decimal;
export function allocationPrice(basicMinutes: bigint, premiumMinutes: bigint, rates: Rates): Decimal;
export function minutesBought(credit: Decimal, rate: Decimal): bigint;
export function fromWit(value: Decimal): Decimal;
export function toWit(value: Decimal): Decimal;
export function toWitExact(value: Decimal): Decimal | null;
export * as money from './money.js';

// ---- errors ---------------------------------------------------------------
export type PolicyErrorCode = PolicyErrorValue['tag'];
export class PolicyError extends Error {
  constructor(code: PolicyErrorCode, message: string);
  readonly code: PolicyErrorCode;
  static forbidden(message: string): PolicyError;
  static invalidSettings(message: string): PolicyError;
  static paymentMethodRequired(message: string): PolicyError;
  static refused(message: string): PolicyError;
  toWit(): PolicyErrorValue;
}
export class Refused extends Error {
  constructor(refusal: Refusal);
  readonly refusal: Refusal;
}
export function describeRefusal(refusal: Refusal): string;

// ---- roles and keys -------------------------------------------------------
export type Role = 'subject' | 'parent';
export const Role: { readonly Subject: 'subject'; readonly Parent: 'parent' };
export function isSubject(actor: string, snapshot: AccountSnapshot): boolean;
export function isParentAgency(actor: string, snapshot: AccountSnapshot): boolean;
export type Actor = 'subject' | 'agency' | 'other';
export const Actor: { readonly Subject: 'subject'; readonly Agency: 'agency'; readonly Other: 'other' };
export function actorOf(caps: Capabilities, actor: string): Actor;
export function chargeKey(kind: string, ...sequence: (bigint | number)[]): string;

// ---- state ----------------------------------------------------------------
/** A typed per-account state: `new State()` is the default. */
export interface PolicyState {
  encode(): Uint8Array;
}
export interface PolicyStateClass<S extends PolicyState> {
  new (): S;
  decode(bytes: Uint8Array): S | null;
}
export function loadState<S extends PolicyState>(caps: Capabilities, who: Role, State: PolicyStateClass<S>): S;
export function saveState(caps: Capabilities, who: Role, state: PolicyState): void;
export function textToBytes(text: string): Uint8Array;
export function bytesToText(bytes: Uint8Array): string | null;
export function encodeFields(fields: unknown[], separator?: string): Uint8Array;
export function decodeFields(bytes: Uint8Array, limit?: number, separator?: string): string[] | null;
export function encodeJson(value: unknown): Uint8Array;
export function decodeJson(bytes: Uint8Array): unknown;
export function parseCounter(text: string): bigint | null;

// ---- the shape of a policy ------------------------------------------------
/** A usage the host has rated, handed to `handle` when `usageMatters` says so. */
export type UsageEvent = { tag: 'usage'; val: { seconds: bigint; minuteType: MinuteType; walletCost: Decimal } };

/** Everything `PolicyRules.handle` may be given. */
export type PolicyEvent = UsageEvent | Event;

/** The capabilities the host lends for one call; a refused call throws `Refused`. */
export interface Capabilities {
  snapshot(who: Role): AccountSnapshot;
  balance(who: Role): Decimal;
  id(who: Role): string;
  status(who: Role): AccountStatus;
  hasCard(who: Role, card: string): boolean;
  state(who: Role): Uint8Array;
  setState(who: Role, state: Uint8Array): void;
  watermark(who: Role): Decimal | undefined;
  setWatermark(who: Role, watermark: Decimal | undefined): void;
  setStatus(who: Role, status: AccountStatus): void;
  now(): Timestamp;
  rates(): Rates;
  requestCharge(payer: Role, card: string, amount: Decimal, purpose: Purpose, key: string): void;
  wakeAt(who: Role, at: Timestamp, tag: bigint): void;
  notify(who: Role, kind: NoticeKind, message: string): void;
}

export function hasMinutes(snapshot: AccountSnapshot): boolean;

/** A billing policy's rules, the twin of the Rust SDK's `PolicyRules`. */
export class PolicyRules {
  handle(event: PolicyEvent, hasParent: boolean, caps: Capabilities): void;
  query(actor: string, what: QueryKind, hasParent: boolean, caps: Capabilities): Answer;
  describe(caps: Capabilities): AccountView;
  usageMatters(balance: Decimal, watermark: Decimal | undefined): boolean;
  estimate(basicMinutes: bigint, premiumMinutes: bigint, rates: Rates): Decimal;
  minutesFor(credit: Decimal, rates: Rates): MinuteQuote;
}

// The contract `recharge:policy@0.1.0` (wit/recharge.wit) as JavaScript values,
// in the shapes the component bindings use: records are objects with camelCase
// fields, enums are kebab-case strings, variants are `{ tag, val }`, `option`
// is the value or `undefined`, `s64`/`u64` are bigints, `u8` is a number,
// `list<u8>` is a Uint8Array.

/** An exact decimal number: `mantissa × 10^-scale`. Money crosses the boundary only in this form. */
export interface Decimal {
  /** The signed digits of the number (a 64-bit integer at the boundary). */
  mantissa: bigint;
  /** How many of the digits sit after the decimal point (0 to 28 at the boundary). */
  scale: number;
}

/** A point in time: milliseconds since 1970-01-01T00:00:00Z (UTC). */
export type Timestamp = bigint;

/** What an account is. */
export type AccountKind = 'user' | 'agency' | 'sub-account';

/** Whether an account may take calls. */
export type AccountStatus = 'active' | 'paused';

/** The two kinds of call minutes, each with its own rate. */
export type MinuteType = 'basic' | 'premium';

/** The per-minute prices in force, USD per minute. */
export interface Rates {
  basic: Decimal;
  premium: Decimal;
}

/** Everything the host knows of an account's money, read in one call. */
export interface AccountSnapshot {
  id: string;
  kind: AccountKind;
  /** The parent agency's id, for sub-accounts. */
  parent?: string;
  /** The wallet balance in USD; only usage takes it below zero. */
  balance: Decimal;
  includedBasicSeconds: bigint;
  includedPremiumSeconds: bigint;
  basicSeconds: bigint;
  premiumSeconds: bigint;
  status: AccountStatus;
}

/** Auto-recharge mode. */
export type RechargeMode = 'fixed' | 'target';

/** Auto-recharge settings as an account saves and reads them. */
export interface AutoRechargeSettings {
  enabled: boolean;
  /** Recharge when the balance falls below this (USD, whole cents, >= 0). */
  threshold: Decimal;
  /** Fixed mode: the unit of a charge; target mode: the balance to refill to. */
  amount: Decimal;
  /** The id of the saved card to charge. */
  card: string;
  mode: RechargeMode;
  /** The most auto-recharge may charge in one UTC calendar month. */
  monthlyLimit?: Decimal;
}

/** A monthly minute allocation for a sub-account, paid by its agency. */
export interface AllocationSettings {
  basicMinutes: bigint;
  premiumMinutes: bigint;
  /** The agency's saved card paying for it. */
  card: string;
}

/** A running allocation, as the policy describes it. */
export interface AllocationView {
  settings: AllocationSettings;
  nextRun: Timestamp;
}

/** What a policy keeps for one account, described for the host's reports. */
export interface AccountView {
  autoRecharge?: AutoRechargeSettings;
  allocation?: AllocationView;
}

/** Minutes bought by an allocation charge. */
export interface MinutePurchase {
  beneficiary: string;
  basicMinutes: bigint;
  premiumMinutes: bigint;
}

/** What a charge is for; the host credits a succeeded charge by it. */
export type Purpose = { tag: 'auto-recharge' } | { tag: 'top-up' } | { tag: 'allocation'; val: MinutePurchase };

/** How a charge ended at the payment gateway. */
export type ChargeOutcome = 'succeeded' | 'declined' | 'failed';

/** The notices a policy may send to an account. */
export type NoticeKind =
  | 'recharge-succeeded'
  | 'recharge-failed'
  | 'recharge-limit-reached'
  | 'account-paused'
  | 'account-resumed'
  | 'allocation-succeeded'
  | 'allocation-failed'
  | 'top-up-failed';

/** Why the host refused a capability call. */
export type Refusal =
  | { tag: 'foreign-account' }
  | { tag: 'unknown-card' }
  | { tag: 'bad-amount'; val: string }
  | { tag: 'price-mismatch' }
  | { tag: 'too-many-charges' }
  | { tag: 'duplicate-key' }
  | { tag: 'invalid'; val: string };

/** A finished call the host has already rated and recorded against the subject. */
export interface RatedCall {
  seconds: bigint;
  minuteType: MinuteType;
  /** What the wallet paid for the seconds not covered by minutes. */
  walletCost: Decimal;
  /** The subject's balance after the call. */
  balance: Decimal;
  /** The subject's watermark, as the policy last set it. */
  watermark?: Decimal;
  hasParent: boolean;
}

/** The outcome of a charge the policy requested. */
export interface PaymentOutcome {
  key: string;
  outcome: ChargeOutcome;
  amount: Decimal;
  purpose: Purpose;
  payer: string;
}

/** Something that happened to the subject account. */
export type Event =
  | { tag: 'save-auto-recharge'; val: { actor: string; settings: AutoRechargeSettings } }
  | { tag: 'save-allocation'; val: { actor: string; settings: AllocationSettings } }
  | { tag: 'top-up'; val: { actor: string; card: string; amount: Decimal } }
  | { tag: 'card-updated'; val: string }
  | { tag: 'payment-outcome'; val: PaymentOutcome }
  | { tag: 'timer'; val: bigint };

/** What a caller may ask about an account. */
export type QueryKind = 'auto-recharge' | 'estimate' | 'service' | 'balance';

/** An answer to a query. */
export type Answer =
  | { tag: 'auto-recharge'; val?: AutoRechargeSettings }
  | { tag: 'estimate'; val: Decimal }
  | { tag: 'service'; val: boolean }
  | { tag: 'balance'; val: AccountSnapshot };

/** Why the policy rejected an event or a query. */
export type PolicyErrorValue =
  | { tag: 'forbidden'; val: string }
  | { tag: 'invalid-settings'; val: string }
  | { tag: 'payment-method-required'; val: string }
  | { tag: 'refused'; val: string };

/** Minutes a sum of credit buys at the given rates. */
export interface MinuteQuote {
  basicMinutes: bigint;
  premiumMinutes: bigint;
}

/** A borrowed `account` resource as the bindings hand it over. */
export interface Account {
  id(): string;
  kind(): AccountKind;
  parent(): string | undefined;
  balance(): Decimal;
  status(): AccountStatus;
  snapshot(): AccountSnapshot;
  setStatus(status: AccountStatus): void;
  cards(): string[];
  hasCard(card: string): boolean;
  state(): Uint8Array;
  setState(state: Uint8Array): void;
  watermark(): Decimal | undefined;
  setWatermark(watermark: Decimal | undefined): void;
}

type Result<T> = { tag: 'ok'; val: T } | { tag: 'err'; val: PolicyErrorValue };

/** The `recharge:policy/policy@0.1.0` export, as `exportPolicy` makes it. */
export interface PolicyExport {
  usage(call: RatedCall): Result<undefined>;
  handle(event: Event, subject: Account, parent: Account | undefined): Result<undefined>;
  query(actor: string, what: QueryKind, subject: Account, parent: Account | undefined): Result<Answer>;
  describe(subject: Account): AccountView;
  estimate(basicMinutes: bigint, premiumMinutes: bigint, rates: Rates): Decimal;
  minutesFor(credit: Decimal, rates: Rates): MinuteQuote;
}

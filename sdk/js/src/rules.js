// The shape of a policy, the JavaScript twin of the Rust SDK's `PolicyRules`.

import { allocationPrice, minutesBought } from './money.js';

/** Whether any of the snapshot's four minute buckets has seconds left. */
export function hasMinutes(snapshot) {
  return (
    snapshot.includedBasicSeconds > 0n ||
    snapshot.includedPremiumSeconds > 0n ||
    snapshot.basicSeconds > 0n ||
    snapshot.premiumSeconds > 0n
  );
}

/**
 * A billing policy's rules over the capabilities the host lends for one call.
 * Extend it and implement `handle`, `query` and `describe`; the other three have
 * the Rust SDK's defaults. Rules are synchronous and keep nothing between calls:
 * what must last goes into the account's state.
 *
 * Errors are thrown: a `PolicyError` rejects the event or query (the host keeps
 * nothing of it), a `Refused` from a capability call that escapes becomes
 * `policy-error.refused`, anything else traps (a `policy_fault`).
 */
export class PolicyRules {
  /**
   * Handle one event about the subject: a `usage` the host has rated, or a
   * contract `event` (`save-auto-recharge`, `top-up`, `payment-outcome`, ...).
   * @returns {void}
   */
  handle(event, hasParent, caps) {
    throw new Error(`${this.constructor.name} does not implement handle`);
  }

  /** Answer `actor`'s question about the subject; nothing may change. */
  query(actor, what, hasParent, caps) {
    throw new Error(`${this.constructor.name} does not implement query`);
  }

  /** The subject's settings, for the host's reports: `{ autoRecharge?, allocation? }`. */
  describe(caps) {
    throw new Error(`${this.constructor.name} does not implement describe`);
  }

  /**
   * The usage hot path's first look, from the subject's balance after the call
   * and the watermark the policy keeps (`caps.setWatermark`): `false` means the
   * event changes nothing and `handle` is not called. The default hands every
   * usage to `handle`.
   */
  usageMatters(balance, watermark) {
    return true;
  }

  /** The monthly price of an allocation (default: whole cents at `rates`). */
  estimate(basicMinutes, premiumMinutes, rates) {
    return allocationPrice(basicMinutes, premiumMinutes, rates);
  }

  /** Whole minutes `credit` buys of each type (default: all on one type). */
  minutesFor(credit, rates) {
    return {
      basicMinutes: minutesBought(credit, rates.basic),
      premiumMinutes: minutesBought(credit, rates.premium),
    };
  }
}

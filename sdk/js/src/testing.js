// An in-memory host for testing rules as plain JavaScript, without a component:
// the same capability methods as the adapter's `caps`, over accounts you set up,
// recording what the rules asked for.

import { Refused } from './errors.js';
import { Role } from './roles.js';
import { decimal, isWholeCents, isPositive } from './money.js';

/** A fresh account for {@link MemoryCaps}: override any field. */
export function account(id, fields = {}) {
  return {
    snapshot: {
      id,
      kind: 'user',
      parent: undefined,
      balance: decimal(0n, 2),
      includedBasicSeconds: 0n,
      includedPremiumSeconds: 0n,
      basicSeconds: 0n,
      premiumSeconds: 0n,
      status: 'active',
      ...fields.snapshot,
    },
    cards: fields.cards ?? [],
    state: fields.state ?? new Uint8Array(0),
    watermark: fields.watermark,
  };
}

/**
 * Capabilities over `{ subject, parent }` accounts made with {@link account}, at
 * `now` (ms) and `rates`. Charges, timers and notices are recorded in
 * `charges`, `timers` and `notices`; state and status change in the accounts.
 */
export class MemoryCaps {
  constructor({ subject, parent, now = 0n, rates } = {}) {
    this.accounts = { [Role.Subject]: subject, [Role.Parent]: parent };
    this.clock = BigInt(now);
    this.prices = rates ?? { basic: decimal(9n, 2), premium: decimal(16n, 2) };
    this.charges = [];
    this.timers = [];
    this.notices = [];
  }

  account(who) {
    const account = this.accounts[who];
    if (!account) throw new Refused({ tag: 'foreign-account' });
    return account;
  }

  snapshot(who) {
    return { ...this.account(who).snapshot };
  }

  balance(who) {
    return this.account(who).snapshot.balance;
  }

  id(who) {
    return this.account(who).snapshot.id;
  }

  status(who) {
    return this.account(who).snapshot.status;
  }

  hasCard(who, card) {
    return Boolean(this.accounts[who]?.cards.includes(card));
  }

  state(who) {
    return this.accounts[who]?.state ?? new Uint8Array(0);
  }

  setState(who, bytes) {
    this.account(who).state = bytes;
  }

  watermark(who) {
    return this.accounts[who]?.watermark;
  }

  setWatermark(who, watermark) {
    this.account(who).watermark = watermark;
  }

  setStatus(who, status) {
    this.account(who).snapshot.status = status;
  }

  now() {
    return this.clock;
  }

  rates() {
    return this.prices;
  }

  requestCharge(payer, card, amount, purpose, key) {
    const account = this.account(payer);
    if (!account.cards.includes(card)) throw new Refused({ tag: 'unknown-card' });
    if (!isPositive(amount) || !isWholeCents(amount)) {
      throw new Refused({ tag: 'bad-amount', val: 'not positive whole cents' });
    }
    this.charges.push({ payer: account.snapshot.id, card, amount, purpose, key });
  }

  wakeAt(who, at, tag) {
    this.timers.push({ account: this.account(who).snapshot.id, at: BigInt(at), tag: BigInt(tag) });
  }

  notify(who, kind, message) {
    this.notices.push({ account: this.account(who).snapshot.id, kind, message });
  }
}

// The adapter between the contract and a `PolicyRules` object: the thin layer
// that `recharge-policy-build` bundles beside the policy, as the Rust SDK's
// `export_policy!` does. It imports the contract's interfaces, so it only runs
// inside a component; no rule lives here.
//
// What each export does with the rules:
// - `handle(event, subject, parent)`: the event with its decimals read as the
//   Rust SDK reads them, and a `caps` over the two borrowed accounts;
// - `usage(call)`: `rules.usageMatters(balance, watermark)` first, from the call
//   alone; only if it says `true` is `rules.handle` called, with a `usage` event
//   and a `caps` that asks the host for the accounts on first need
//   (`current-subject`, `current-parent`), answers the subject's balance and
//   watermark from the call, and drops the handles it asked for when the call ends;
// - `query`, `describe`, `estimate`, `minutes-for`: the rules' answers in the
//   contract's form (`describe` lends the subject alone, as the Rust SDK does).
// A rule's return is `ok`; a thrown `PolicyError` is `err(policy-error)`; a
// `Refused` that escapes is `err(policy-error.refused(its description))`;
// anything else thrown traps, which the host records as a `policy_fault`.

import { currentSubject, currentParent } from 'recharge:policy/balance@0.1.0';
import { requestCharge } from 'recharge:policy/payment@0.1.0';
import { now, currentRates, wakeMeAt } from 'recharge:policy/clock@0.1.0';
import { send } from 'recharge:policy/notify@0.1.0';

import { fromWit, toWit, toWitExact } from './money.js';
import { PolicyError, Refused } from './errors.js';
import { Role } from './roles.js';

/** Run an import, turning the bindings' error for an `err(refusal)` into `Refused`. */
function host(call) {
  try {
    return call();
  } catch (error) {
    if (error && Object.prototype.hasOwnProperty.call(error, 'payload')) throw new Refused(error.payload);
    throw error;
  }
}

/** A rule's outcome as a contract `result`. */
function outcome(run) {
  try {
    return { tag: 'ok', val: run() };
  } catch (error) {
    if (error instanceof PolicyError) return { tag: 'err', val: error.toWit() };
    if (error instanceof Refused) return { tag: 'err', val: PolicyError.refused(error.message).toWit() };
    throw error;
  }
}

/** The key the bindings give an owned handle's drop under (SpiderMonkey may lack `Symbol.dispose`). */
const dispose = Symbol.dispose || Symbol.for('dispose');

const ratesFromWit = (rates) => ({ basic: fromWit(rates.basic), premium: fromWit(rates.premium) });

const snapshotFromWit = (snapshot) => ({ ...snapshot, balance: fromWit(snapshot.balance) });

const snapshotToWit = (snapshot) => ({ ...snapshot, balance: toWit(snapshot.balance) });

const settingsFromWit = (settings) => ({
  ...settings,
  threshold: fromWit(settings.threshold),
  amount: fromWit(settings.amount),
  monthlyLimit: settings.monthlyLimit == null ? undefined : fromWit(settings.monthlyLimit),
});

const settingsToWit = (settings) =>
  settings == null
    ? undefined
    : {
        enabled: settings.enabled,
        threshold: toWit(settings.threshold),
        amount: toWit(settings.amount),
        card: settings.card,
        mode: settings.mode ?? 'fixed',
        monthlyLimit: settings.monthlyLimit == null ? undefined : toWit(settings.monthlyLimit),
      };

function eventFromWit(event) {
  const { tag, val } = event;
  switch (tag) {
    case 'save-auto-recharge':
      return { tag, val: { actor: val.actor, settings: settingsFromWit(val.settings) } };
    case 'top-up':
      return { tag, val: { ...val, amount: fromWit(val.amount) } };
    case 'payment-outcome':
      return { tag, val: { ...val, amount: fromWit(val.amount) } };
    default:
      return event;
  }
}

function answerToWit(answer) {
  switch (answer.tag) {
    case 'auto-recharge':
      return { tag: answer.tag, val: settingsToWit(answer.val) };
    case 'estimate':
      return { tag: answer.tag, val: toWit(answer.val) };
    case 'balance':
      return { tag: answer.tag, val: snapshotToWit(answer.val) };
    default:
      return answer;
  }
}

/**
 * The capabilities of one call, the twin of the Rust SDK's `Capabilities`. Every
 * method names its account by role (`Role.Subject`, `Role.Parent`); a refused
 * call throws `Refused`. Amounts are decimals, times and tags bigints.
 */
class Caps {
  /**
   * @param lent the accounts the call lent (`{subject, parent}`), or `null` to ask for them
   * @param handed what a usage call handed over: the subject's `{balance, watermark}`
   */
  constructor(lent, handed = null) {
    this.lent = lent;
    this.handed = handed;
    this.asked = new Map();
  }

  account(who) {
    if (who !== Role.Subject && who !== Role.Parent) throw new TypeError(`not a role: ${who}`);
    if (this.lent) {
      const account = who === Role.Subject ? this.lent.subject : this.lent.parent;
      if (!account) throw new Refused({ tag: 'foreign-account' });
      return account;
    }
    if (!this.asked.has(who)) {
      try {
        const account = host(who === Role.Subject ? currentSubject : currentParent);
        this.asked.set(who, { account });
      } catch (error) {
        if (!(error instanceof Refused)) throw error;
        this.asked.set(who, { error });
      }
    }
    const { account, error } = this.asked.get(who);
    if (error) throw error;
    if (!account) throw new Refused({ tag: 'foreign-account' });
    return account;
  }

  /** Give back the handles asked for during the call (the host allows only 8 at once). */
  release() {
    for (const { account } of this.asked.values()) account?.[dispose]();
    this.asked.clear();
  }

  /** The account's id, kind, parent, balance, minute buckets and status. */
  snapshot(who) {
    const account = this.account(who);
    return snapshotFromWit(host(() => account.snapshot()));
  }

  /** The wallet balance. */
  balance(who) {
    if (who === Role.Subject && this.handed) return this.handed.balance;
    const account = this.account(who);
    return fromWit(host(() => account.balance()));
  }

  /** The account's id. */
  id(who) {
    const account = this.account(who);
    return host(() => account.id());
  }

  /** `'active'` or `'paused'`. */
  status(who) {
    const account = this.account(who);
    return host(() => account.status());
  }

  /** Whether the account has a saved card `card` (`false` for an account not handed over). */
  hasCard(who, card) {
    let account;
    try {
      account = this.account(who);
    } catch (error) {
      if (error instanceof Refused) return false;
      throw error;
    }
    return host(() => account.hasCard(card));
  }

  /** The policy's state for the account, a `Uint8Array` (empty when none was saved or reachable). */
  state(who) {
    let account;
    try {
      account = this.account(who);
    } catch (error) {
      if (error instanceof Refused) return new Uint8Array(0);
      throw error;
    }
    return host(() => account.state());
  }

  /** Replace the policy's state for the account. */
  setState(who, bytes) {
    const account = this.account(who);
    host(() => account.setState(bytes));
  }

  /** The watermark the policy keeps for the account, or `undefined`. */
  watermark(who) {
    if (who === Role.Subject && this.handed) return this.handed.watermark;
    let account;
    try {
      account = this.account(who);
    } catch (error) {
      if (error instanceof Refused) return undefined;
      throw error;
    }
    const watermark = host(() => account.watermark());
    return watermark == null ? undefined : fromWit(watermark);
  }

  /** Keep `watermark` (a decimal, or `undefined` to clear it) for the account. */
  setWatermark(who, watermark) {
    let exact;
    if (watermark != null) {
      exact = toWitExact(watermark);
      if (!exact) throw new Refused({ tag: 'bad-amount', val: 'watermark: too many digits' });
    }
    const account = this.account(who);
    host(() => account.setWatermark(exact));
  }

  /** Pause or resume the account (`'active'`, `'paused'`). */
  setStatus(who, status) {
    const account = this.account(who);
    host(() => account.setStatus(status));
  }

  /** Now, in milliseconds since the epoch (a bigint). */
  now() {
    return host(now);
  }

  /** The rates in force now, `{ basic, premium }`. */
  rates() {
    return ratesFromWit(host(currentRates));
  }

  /** Ask for one charge, run by the host after the event commits. */
  requestCharge(payer, card, amount, purpose, key) {
    const account = this.account(payer);
    const exact = toWitExact(amount);
    if (!exact) throw new Refused({ tag: 'bad-amount', val: 'too many digits' });
    host(() => requestCharge(account, card, exact, purpose, key));
  }

  /** Ask for a `timer` event with `tag` for the account at `at`. */
  wakeAt(who, at, tag) {
    const account = this.account(who);
    host(() => wakeMeAt(account, BigInt(at), BigInt(tag)));
  }

  /** Send a notice (`'recharge-succeeded'`, ...) to the account. */
  notify(who, kind, message) {
    const account = this.account(who);
    host(() => send(account, kind, message));
  }
}

/**
 * The contract's `policy` export for `rules`: what a component built from it
 * exports as `recharge:policy/policy@0.1.0`.
 */
export function exportPolicy(rules) {
  return {
    usage(call) {
      const balance = fromWit(call.balance);
      const watermark = call.watermark == null ? undefined : fromWit(call.watermark);
      if (!rules.usageMatters(balance, watermark)) return { tag: 'ok', val: undefined };
      const event = {
        tag: 'usage',
        val: { seconds: call.seconds, minuteType: call.minuteType, walletCost: fromWit(call.walletCost) },
      };
      const caps = new Caps(null, { balance, watermark });
      try {
        return outcome(() => {
          rules.handle(event, call.hasParent, caps);
        });
      } finally {
        caps.release();
      }
    },

    handle(event, subject, parent) {
      const caps = new Caps({ subject, parent });
      return outcome(() => {
        rules.handle(eventFromWit(event), parent != null, caps);
      });
    },

    query(actor, what, subject, parent) {
      const caps = new Caps({ subject, parent });
      return outcome(() => answerToWit(rules.query(actor, what, parent != null, caps)));
    },

    describe(subject) {
      const view = rules.describe(new Caps({ subject, parent: undefined }));
      return {
        autoRecharge: settingsToWit(view?.autoRecharge),
        allocation:
          view?.allocation == null
            ? undefined
            : { settings: view.allocation.settings, nextRun: BigInt(view.allocation.nextRun) },
      };
    },

    estimate(basicMinutes, premiumMinutes, rates) {
      return toWit(rules.estimate(basicMinutes, premiumMinutes, ratesFromWit(rates)));
    },

    minutesFor(credit, rates) {
      const quote = rules.minutesFor(fromWit(credit), ratesFromWit(rates));
      return { basicMinutes: BigInt(quote.basicMinutes), premiumMinutes: BigInt(quote.premiumMinutes) };
    },
  };
}

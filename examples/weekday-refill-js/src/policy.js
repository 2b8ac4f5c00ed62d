// An example tenant policy: refill to a target, weekdays only.
//
// An agency that only staffs its phones Monday to Friday does not want its card
// charged at the weekend. This policy reads the account's auto-recharge settings
// as "when the balance falls below `threshold`, refill it to `amount`", but only
// charges on weekdays (UTC); a shortfall at the weekend waits for Monday 00:00.
// A failed charge is not retried: the account gets `recharge_failed` and the next
// weekday shortfall tries again. It sells no monthly allocations.
//
// The same policy as the Rust example `examples/weekday-refill`, decision for
// decision and message for message. Build it with
// `npx recharge-policy-build src/policy.js -o weekday_refill_js.wasm`.

import {
  Actor,
  PolicyError,
  PolicyRules,
  Role,
  ZERO,
  actorOf,
  chargeKey,
  display,
  gte,
  hasMinutes,
  isNegative,
  isPositive,
  isWholeCents,
  loadState,
  lte,
  saveState,
  sub,
  wholeCentsUp,
} from '@recharge/policy-sdk';

import { State } from './state.js';

/** The timer tag for "it is Monday now". */
const MONDAY = 1n;

const DAY_MS = 86_400_000n;
/** chrono's first and last dates (-262143-01-01, 262142-12-31) as days since 1970-01-01. */
const FIRST_DAY = -96_465_293n;
const LAST_DAY = 95_026_236n;

/** Whether `actor` is the subject itself, or (`orParent`) its parent agency. */
function allowed(actor, caps, orParent) {
  switch (actorOf(caps, actor)) {
    case Actor.Subject:
      return true;
    case Actor.Agency:
      return orParent;
    default:
      return false;
  }
}

/** The counter after `key`, wrapping at 64 bits as the Rust example's `u64` does. */
const nextKey = (key) => BigInt.asUintN(64, key + 1n);

/**
 * Monday 00:00 UTC after `now` if `now` falls on a weekend, else `null`.
 * @param {bigint} now milliseconds since the epoch
 * @returns {bigint | null}
 */
export function nextMonday(now) {
  const day = now >= 0n ? now / DAY_MS : -((-now + DAY_MS - 1n) / DAY_MS);
  if (day < FIRST_DAY || day > LAST_DAY) return null;
  // 1970-01-01 was a Thursday: 0 is Monday, 5 Saturday, 6 Sunday.
  const weekday = Number((((day + 3n) % 7n) + 7n) % 7n);
  const wait = { 5: 2n, 6: 1n }[weekday];
  return wait === undefined ? null : (day + wait) * DAY_MS;
}

function validate(settings, caps) {
  if (!settings.enabled) return;
  const moneyOk = (value) => !isNegative(value) && isWholeCents(value);
  if (!moneyOk(settings.threshold) || !moneyOk(settings.amount) || lte(settings.amount, settings.threshold)) {
    throw PolicyError.invalidSettings('threshold and target must be whole cents, the target above the threshold');
  }
  if (!caps.hasCard(Role.Subject, settings.card)) {
    throw PolicyError.paymentMethodRequired(`no saved card ${settings.card}`);
  }
}

/** Refill to the target if below the threshold: now on a weekday, on Monday otherwise. */
function refill(state, caps) {
  const { settings } = state;
  if (!settings || !settings.enabled) return;
  const balance = caps.balance(Role.Subject);
  if (state.inFlight || gte(balance, settings.threshold)) return;
  const monday = nextMonday(caps.now());
  if (monday !== null) {
    // Asked again on every weekend event: the same tag replaces the earlier
    // wake-up, so one Monday wake-up stays pending.
    caps.wakeAt(Role.Subject, monday, MONDAY);
    return;
  }
  const amount = wholeCentsUp(sub(settings.amount, balance));
  const key = chargeKey('weekday', state.nextKey);
  caps.requestCharge(Role.Subject, settings.card, amount, { tag: 'auto-recharge' }, key);
  state.nextKey = nextKey(state.nextKey);
  state.inFlight = true;
}

function outcome(state, result, amount, purpose, caps) {
  if (purpose.tag === 'auto-recharge') state.inFlight = false;
  if (result === 'succeeded') {
    if (purpose.tag === 'auto-recharge') {
      caps.notify(Role.Subject, 'recharge-succeeded', `refilled ${display(amount)}`);
    }
    if (caps.status(Role.Subject) === 'paused') {
      caps.setStatus(Role.Subject, 'active');
      caps.notify(Role.Subject, 'account-resumed', 'payment received');
    }
    return;
  }
  const [kind, what] = purpose.tag === 'top-up' ? ['top-up-failed', 'top-up'] : ['recharge-failed', 'refill'];
  caps.notify(Role.Subject, kind, `${what} of ${display(amount)} failed`);
}

/** The policy. */
export class WeekdayRefill extends PolicyRules {
  handle(event, hasParent, caps) {
    const state = loadState(caps, Role.Subject, State);
    switch (event.tag) {
      case 'save-auto-recharge': {
        const { actor, settings } = event.val;
        if (!allowed(actor, caps, false)) throw PolicyError.forbidden('only the account saves its settings');
        validate(settings, caps);
        state.settings = settings;
        break;
      }
      case 'save-allocation':
        throw PolicyError.forbidden('this policy sells no monthly allocations');
      case 'top-up': {
        const { actor, card, amount } = event.val;
        if (!allowed(actor, caps, false)) throw PolicyError.forbidden('only the account tops itself up');
        if (!isPositive(amount) || !isWholeCents(amount)) {
          throw PolicyError.invalidSettings('amount must be positive whole cents');
        }
        if (!caps.hasCard(Role.Subject, card)) throw PolicyError.paymentMethodRequired(`no saved card ${card}`);
        const key = chargeKey('topup', state.nextKey);
        caps.requestCharge(Role.Subject, card, amount, { tag: 'top-up' }, key);
        state.nextKey = nextKey(state.nextKey);
        break;
      }
      case 'payment-outcome': {
        const { outcome: result, amount, purpose } = event.val;
        outcome(state, result, amount, purpose, caps);
        break;
      }
      default:
        // usage, card-updated, timer: only the refill below reacts.
        break;
    }
    refill(state, caps);
    saveState(caps, Role.Subject, state);
  }

  /** @returns {import('@recharge/policy-sdk').Answer} */
  query(actor, what, hasParent, caps) {
    if (!allowed(actor, caps, true)) {
      throw PolicyError.forbidden('only the account and its agency may ask');
    }
    const snapshot = caps.snapshot(Role.Subject);
    switch (what) {
      case 'auto-recharge':
        return { tag: 'auto-recharge', val: loadState(caps, Role.Subject, State).settings ?? undefined };
      case 'estimate':
        return { tag: 'estimate', val: ZERO };
      case 'service':
        return {
          tag: 'service',
          val: snapshot.status === 'active' && (isPositive(snapshot.balance) || hasMinutes(snapshot)),
        };
      case 'balance':
        return { tag: 'balance', val: snapshot };
      default:
        throw new TypeError(`not a query: ${what}`);
    }
  }

  describe(caps) {
    let settings;
    try {
      settings = loadState(caps, Role.Subject, State).settings;
    } catch (error) {
      if (!(error instanceof PolicyError)) throw error;
    }
    return { autoRecharge: settings ?? undefined, allocation: undefined };
  }
}

export default new WeekdayRefill();

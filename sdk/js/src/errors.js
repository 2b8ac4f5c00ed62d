// The two ways a rule says no, mirroring the Rust SDK's `PolicyError` and
// `Refusal`. Throwing is how a JavaScript rule returns an error: the adapter
// turns a thrown `PolicyError` into the contract's `policy-error`, and a
// `Refused` that escapes a rule into `policy-error.refused` with the refusal's
// description, as the Rust examples do with `.map_err(refused)`. Anything else
// thrown is a bug: the component traps and the host records a `policy_fault`.

/** The contract's `policy-error` cases. */
export const POLICY_ERROR_CODES = Object.freeze([
  'forbidden',
  'invalid-settings',
  'payment-method-required',
  'refused',
]);

/** Why the policy rejects an event or a query; the host keeps nothing of the event. */
export class PolicyError extends Error {
  /**
   * @param {'forbidden'|'invalid-settings'|'payment-method-required'|'refused'} code
   * @param {string} message shown to the account holder as the rejection's message
   */
  constructor(code, message) {
    if (!POLICY_ERROR_CODES.includes(code)) throw new TypeError(`not a policy-error case: ${code}`);
    super(message);
    this.name = 'PolicyError';
    this.code = code;
  }

  /** The actor may not do this. */
  static forbidden(message) {
    return new PolicyError('forbidden', message);
  }

  /** The settings are not valid. */
  static invalidSettings(message) {
    return new PolicyError('invalid-settings', message);
  }

  /** A saved card is needed and missing. */
  static paymentMethodRequired(message) {
    return new PolicyError('payment-method-required', message);
  }

  /** A capability call was refused and the policy gave up. */
  static refused(message) {
    return new PolicyError('refused', message);
  }

  /** The contract's `policy-error` variant. */
  toWit() {
    return { tag: this.code, val: this.message };
  }
}

/**
 * A message for a refusal, the same text as the Rust SDK's `describe_refusal`.
 * @param {{tag: string, val?: string}} refusal the contract's `refusal` variant
 */
export function describeRefusal(refusal) {
  switch (refusal.tag) {
    case 'foreign-account':
      return 'account not handed to this event';
    case 'unknown-card':
      return 'card is not a saved card of the payer';
    case 'bad-amount':
      return `bad amount: ${refusal.val}`;
    case 'price-mismatch':
      return 'allocation price differs from the amount';
    case 'too-many-charges':
      return 'too many charges';
    case 'duplicate-key':
      return 'idempotency key already used';
    case 'invalid':
      return `invalid request: ${refusal.val}`;
    default:
      return `refused: ${refusal.tag}`;
  }
}

/** The host refused a capability call; `refusal` is the contract's `refusal` variant. */
export class Refused extends Error {
  constructor(refusal) {
    super(describeRefusal(refusal));
    this.name = 'Refused';
    this.refusal = refusal;
  }
}

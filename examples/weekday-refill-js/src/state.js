// The policy's per-account state: its settings, whether a refill is in flight,
// and a counter for idempotency keys. One line of text, byte for byte the Rust
// example's: `v1|next_key|in_flight|enabled|threshold|target|card`, settings
// optional. Read and written with the SDK's `loadState` / `saveState`.

import { decodeFields, encodeFields, format, parseCounter, tryParse } from '@recharge/policy-sdk';

/** What the policy remembers about one account; `new State()` is a fresh one. */
export class State {
  constructor(settings = null, inFlight = false, nextKey = 0n) {
    /** @type {import('@recharge/policy-sdk').AutoRechargeSettings | null} */
    this.settings = settings;
    this.inFlight = inFlight;
    this.nextKey = nextKey;
  }

  /** The state as the line the Rust example writes. */
  encode() {
    const fields = ['v1', this.nextKey, this.inFlight ? 1 : 0];
    const { settings } = this;
    if (settings) {
      fields.push(settings.enabled ? 1 : 0, format(settings.threshold), format(settings.amount), settings.card);
    }
    return encodeFields(fields);
  }

  /** The state in `bytes`, or `null` if they cannot be read. */
  static decode(bytes) {
    const fields = decodeFields(bytes, 7);
    if (fields === null || fields[0] !== 'v1' || fields.length < 3) return null;
    const nextKey = parseCounter(fields[1]);
    if (nextKey === null) return null;
    const inFlight = fields[2] === '1';
    if (fields.length === 3) return new State(null, inFlight, nextKey);
    if (fields.length < 7) return null;
    const threshold = tryParse(fields[4]);
    const amount = tryParse(fields[5]);
    if (threshold === null || amount === null) return null;
    // The line keeps no mode or limit: the policy reads every setting as a target.
    const settings = { enabled: fields[3] === '1', threshold, amount, card: fields[6], mode: 'target', monthlyLimit: undefined };
    return new State(settings, inFlight, nextKey);
  }
}

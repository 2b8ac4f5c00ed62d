// Idempotency keys. The host scopes a key to the payer and the policy (H3), so a
// key only has to be unique among the policy's own charges for the account: take
// a fresh number from the account's state for every charge series.

/**
 * The key of the policy's `sequence`-th charge of a `kind`, as the Rust SDK's
 * `Helpers::charge_key` makes it: `chargeKey('topup', 3n)` is `topup/3`; more
 * numbers add parts (`chargeKey('alloc', 1n, 2n)` is `alloc/1/2`).
 */
export function chargeKey(kind, ...sequence) {
  return [kind, ...sequence.map((number) => BigInt(number).toString())].join('/');
}

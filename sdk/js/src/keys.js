// Idempotency keys. The host scopes a key to the payer and the policy (H3), so a
// key only has to be unique among the policy's own charges for the account: take
// a fresh number from the account's state for every charge series.

/** `account/kind/n1/n2...`: `chargeKey('acme', 'topup', 3n)` is `acme/topup/3`. */
export function chargeKey(account, kind, ...numbers) {
  return [account, kind, ...numbers.map((number) => BigInt(number).toString())].join('/');
}

/** Whether `key` is the key {@link chargeKey} makes of the same parts. */
export function isChargeKey(key, account, kind, ...numbers) {
  return key === chargeKey(account, kind, ...numbers);
}

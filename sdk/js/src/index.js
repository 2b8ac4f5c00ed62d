// @recharge/policy-sdk: write a recharge billing policy in JavaScript.
//
// A policy is a module whose default export implements `PolicyRules`; it
// imports only this package, so it runs as plain JavaScript in tests (hand it a
// fake `caps`). `recharge-policy-build policy.js -o policy.wasm` bundles it with
// the adapter (`@recharge/policy-sdk/component`) into a component of
// `recharge:policy@0.1.0` that imports nothing beyond the contract.

export * as money from './money.js';
export {
  decimal,
  parse,
  tryParse,
  format,
  display,
  add,
  sub,
  mul,
  neg,
  compare,
  eq,
  lt,
  lte,
  gt,
  gte,
  isPositive,
  isNegative,
  isZero,
  isWholeCents,
  wholeCentsUp,
  nearestCent,
  allocationPrice,
  minutesBought,
  fromWit,
  toWit,
  toWitExact,
  ZERO,
} from './money.js';
export { PolicyError, Refused, describeRefusal } from './errors.js';
export { Role, Actor, actorOf, isSubject, isParentAgency } from './roles.js';
export { chargeKey } from './keys.js';
export {
  loadState,
  saveState,
  textToBytes,
  bytesToText,
  encodeFields,
  decodeFields,
  encodeJson,
  decodeJson,
  parseCounter,
} from './state.js';
export { PolicyRules, hasMinutes } from './rules.js';

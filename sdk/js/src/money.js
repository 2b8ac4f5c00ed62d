// Exact money on BigInt: the contract's `decimal` record, `mantissa × 10^-scale`.
//
// A decimal is a plain `{ mantissa: bigint, scale: number }`, the very shape the
// component bindings hand over, so no conversion is needed at the boundary. No
// JavaScript number ever holds an amount. Every function here does what the Rust
// SDK's `money` module does to the same decimal, digit for digit and scale for
// scale (`"10.00"` stays at two places, `whole_cents_up(40)` stays at none), so a
// policy written on either SDK sends the host the same amounts.

/** The largest scale the host's decimals carry (rust_decimal's). */
export const MAX_SCALE = 28;

const I64_MIN = -(1n << 63n);
const I64_MAX = (1n << 63n) - 1n;

const pow10 = (digits) => 10n ** BigInt(digits);

/** A decimal `mantissa × 10^-scale`. */
export function decimal(mantissa, scale = 0) {
  if (typeof mantissa !== 'bigint') {
    throw new TypeError(`a decimal's mantissa is a bigint, not ${typeof mantissa}`);
  }
  if (!Number.isInteger(scale) || scale < 0) {
    throw new RangeError(`a decimal's scale is a whole number >= 0, not ${scale}`);
  }
  return { mantissa, scale };
}

/** Zero, at scale 0. */
export const ZERO = decimal(0n, 0);

const DECIMAL_TEXT = /^([+-]?)(\d*)(?:\.(\d*))?$/;

/**
 * Parse `"12.34"`, `"-0.5"`, `"7"`: the digits after the point set the scale.
 * Returns `null` for anything else, or for more than 28 decimal places.
 */
export function tryParse(text) {
  const match = typeof text === 'string' ? DECIMAL_TEXT.exec(text) : null;
  if (!match) return null;
  const [, sign, whole, fraction = ''] = match;
  if (whole === '' && fraction === '') return null;
  if (fraction.length > MAX_SCALE) return null;
  const magnitude = BigInt((whole || '0') + fraction);
  return decimal(sign === '-' ? -magnitude : magnitude, fraction.length);
}

/** {@link tryParse}, throwing a `SyntaxError` for text that is not a decimal. */
export function parse(text) {
  const value = tryParse(text);
  if (value === null) throw new SyntaxError(`not a decimal: ${JSON.stringify(text)}`);
  return value;
}

/** Every digit, at the decimal's own scale: `"10.00"`, `"0.005"`, `"-3"` (Rust's `Display`). */
export function format(value) {
  const { mantissa, scale } = value;
  const digits = (mantissa < 0n ? -mantissa : mantissa).toString().padStart(scale + 1, '0');
  const sign = mantissa < 0n ? '-' : '';
  if (scale === 0) return sign + digits;
  return `${sign}${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
}

/**
 * Money for people: at least two decimals, no trailing zeros beyond them
 * (`17.00`, `0.1627`, `-3.50`), as the Rust SDK's `display` writes notices.
 */
export function display(value) {
  let { mantissa, scale } = value;
  while (scale > 2 && mantissa % 10n === 0n) {
    mantissa /= 10n;
    scale -= 1;
  }
  if (scale < 2) {
    mantissa *= pow10(2 - scale);
    scale = 2;
  }
  return format(decimal(mantissa, scale));
}

/** Both mantissas at the larger of the two scales. */
function aligned(a, b) {
  const scale = Math.max(a.scale, b.scale);
  return [a.mantissa * pow10(scale - a.scale), b.mantissa * pow10(scale - b.scale), scale];
}

/** `a + b`, at the larger scale. */
export function add(a, b) {
  const [x, y, scale] = aligned(a, b);
  return decimal(x + y, scale);
}

/** `a - b`, at the larger scale. */
export function sub(a, b) {
  const [x, y, scale] = aligned(a, b);
  return decimal(x - y, scale);
}

/** `a × b`, at the sum of the scales. */
export function mul(a, b) {
  return decimal(a.mantissa * b.mantissa, a.scale + b.scale);
}

/** `-value`. */
export function neg(value) {
  return decimal(-value.mantissa, value.scale);
}

/** -1, 0 or 1 as `a` is below, equal to or above `b`, whatever their scales. */
export function compare(a, b) {
  const [x, y] = aligned(a, b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/** `a == b` in value (`10.00` equals `10`). */
export const eq = (a, b) => compare(a, b) === 0;
/** `a < b`. */
export const lt = (a, b) => compare(a, b) < 0;
/** `a <= b`. */
export const lte = (a, b) => compare(a, b) <= 0;
/** `a > b`. */
export const gt = (a, b) => compare(a, b) > 0;
/** `a >= b`. */
export const gte = (a, b) => compare(a, b) >= 0;
/** `value > 0`. */
export const isPositive = (value) => value.mantissa > 0n;
/** `value < 0`. */
export const isNegative = (value) => value.mantissa < 0n;
/** `value == 0`. */
export const isZero = (value) => value.mantissa === 0n;

/** Whether the amount has no fraction of a cent. */
export function isWholeCents(value) {
  return value.scale <= 2 || value.mantissa % pow10(value.scale - 2) === 0n;
}

/**
 * Round up to whole cents: a refill never falls short of its target. A value of
 * at most two places comes back as it is (same scale); any other at scale 2.
 */
export function wholeCentsUp(value) {
  if (value.scale <= 2) return value;
  const unit = pow10(value.scale - 2);
  const cents = value.mantissa / unit + (value.mantissa % unit > 0n ? 1n : 0n);
  return decimal(cents, 2);
}

/** Round to `places` decimals, a midpoint away from zero; fewer places stay as they are. */
function roundAwayFromZero(value, places) {
  if (value.scale <= places) return value;
  const unit = pow10(value.scale - places);
  const magnitude = value.mantissa < 0n ? -value.mantissa : value.mantissa;
  const rounded = (magnitude + unit / 2n) / unit;
  return decimal(value.mantissa < 0n ? -rounded : rounded, places);
}

/** Round to `places` decimals, a midpoint to the even neighbour (rust_decimal's `round_dp`). */
function roundHalfEven(value, places) {
  if (value.scale <= places) return value;
  const unit = pow10(value.scale - places);
  const negative = value.mantissa < 0n;
  const magnitude = negative ? -value.mantissa : value.mantissa;
  let rounded = magnitude / unit;
  const twice = (magnitude % unit) * 2n;
  if (twice > unit || (twice === unit && rounded % 2n === 1n)) rounded += 1n;
  return decimal(negative ? -rounded : rounded, places);
}

/** The nearest whole cent, a midpoint away from zero: the price of a bundle of minutes. */
export function nearestCent(value) {
  return roundAwayFromZero(value, 2);
}

/**
 * The price of `basicMinutes` and `premiumMinutes` whole minutes at `rates`, in
 * whole cents (R7: 100 basic + 50 premium at 0.09 / 0.16 = 17.00).
 */
export function allocationPrice(basicMinutes, premiumMinutes, rates) {
  const basic = mul(decimal(BigInt(basicMinutes)), rates.basic);
  const premium = mul(decimal(BigInt(premiumMinutes)), rates.premium);
  return nearestCent(add(basic, premium));
}

/** Whole minutes that `credit` buys at `rate`, as a bigint (0 for a non-positive rate). */
export function minutesBought(credit, rate) {
  if (rate.mantissa <= 0n || credit.mantissa <= 0n) return 0n;
  const minutes = (credit.mantissa * pow10(rate.scale)) / (rate.mantissa * pow10(credit.scale));
  return minutes > I64_MAX ? I64_MAX : minutes;
}

const fitsI64 = (mantissa) => mantissa >= I64_MIN && mantissa <= I64_MAX;

/**
 * A decimal the host sent, as the Rust SDK reads it: a scale beyond 28 keeps the
 * 28 places that fit, truncating the rest.
 */
export function fromWit(value) {
  if (value.scale <= MAX_SCALE) return decimal(value.mantissa, value.scale);
  return decimal(value.mantissa / pow10(value.scale - MAX_SCALE), MAX_SCALE);
}

/** The decimal in the contract's form when it fits exactly (64-bit mantissa, scale <= 28), else `null`. */
export function toWitExact(value) {
  return fitsI64(value.mantissa) && value.scale <= MAX_SCALE ? decimal(value.mantissa, value.scale) : null;
}

/**
 * The decimal in the contract's form for an answer: while it does not fit, one
 * decimal place less (a midpoint to even, as the Rust SDK does), then saturated.
 */
export function toWit(value) {
  let current = value;
  for (;;) {
    const exact = toWitExact(current);
    if (exact) return exact;
    if (current.scale === 0) return decimal(current.mantissa < 0n ? I64_MIN : I64_MAX, 0);
    current = roundHalfEven(current, current.scale - 1);
  }
}

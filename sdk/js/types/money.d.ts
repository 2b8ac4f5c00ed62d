export {
  MAX_SCALE, ZERO, decimal, parse, tryParse, format, display, add, sub, mul, neg, compare, eq, lt, lte, gt, gte,
  isPositive, isNegative, isZero, isWholeCents, wholeCentsUp, nearestCent, allocationPrice, minutesBought,
  fromWit, toWit, toWitExact,
} from './index.js';

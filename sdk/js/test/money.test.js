import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  allocationPrice,
  compare,
  decimal,
  display,
  format,
  fromWit,
  isWholeCents,
  minutesBought,
  parse,
  sub,
  toWit,
  toWitExact,
  tryParse,
  wholeCentsUp,
} from '../src/money.js';
import { chargeKey, decodeFields, encodeFields, parseCounter, bytesToText } from '../src/index.js';

const same = (actual, expected) => assert.deepEqual(actual, parse(expected), `${format(actual)} is ${expected}`);

test('parse keeps the scale and refuses what is not a decimal', () => {
  assert.deepEqual(parse('10.00'), decimal(1000n, 2));
  assert.deepEqual(parse('-0.5'), decimal(-5n, 1));
  assert.deepEqual(parse('+7'), decimal(7n, 0));
  for (const text of ['', '-', '.', '1e5', '1_000', ' 1', '0.' + '1'.repeat(29), '١']) assert.equal(tryParse(text), null, text);
});

test('format writes every digit at the scale, as Rust Display', () => {
  for (const [value, shown] of [
    [decimal(1000n, 2), '10.00'],
    [decimal(5n, 3), '0.005'],
    [decimal(-5n, 2), '-0.05'],
    [decimal(0n, 2), '0.00'],
    [decimal(-3n, 0), '-3'],
  ]) assert.equal(format(value), shown);
});

test('display shows at least cents and no trailing zeros beyond', () => {
  for (const [value, shown] of [
    ['17', '17.00'],
    ['0.1627', '0.1627'],
    ['-3.5', '-3.50'],
    ['-0.0015', '-0.0015'],
    ['0', '0.00'],
    ['1000.10', '1000.10'],
    ['12.3400', '12.34'],
    ['79228162514264337593543950.335', '79228162514264337593543950.335'],
  ]) assert.equal(display(parse(value)), shown, value);
});

test('whole cents up never falls short and keeps short scales', () => {
  same(wholeCentsUp(parse('12.3401')), '12.35');
  assert.deepEqual(wholeCentsUp(parse('40')), decimal(40n, 0));
  same(wholeCentsUp(parse('-0.005')), '0.00');
  same(wholeCentsUp(sub(parse('50.00'), parse('7.3333'))), '42.67');
  same(wholeCentsUp(decimal(1n, 25)), '0.01');
});

test('whole cents and comparison ignore the scale', () => {
  assert.ok(isWholeCents(parse('10.10')));
  assert.ok(isWholeCents(parse('10.1000')));
  assert.ok(!isWholeCents(parse('10.001')));
  assert.equal(compare(parse('10.00'), parse('9.9999')), 1);
  assert.equal(compare(parse('10'), parse('10.000')), 0);
});

test('the default estimate and minute quote match the Rust SDK', () => {
  const rates = { basic: parse('0.09'), premium: parse('0.16') };
  assert.equal(display(allocationPrice(100n, 50n, rates)), '17.00');
  assert.equal(minutesBought(parse('1.00'), parse('0.16')), 6n);
  assert.equal(minutesBought(parse('1.00'), parse('0')), 0n);
});

test('contract decimals: scales past 28 truncate, answers that do not fit round then saturate', () => {
  assert.deepEqual(fromWit(decimal(123456n, 30)), decimal(1234n, 28));
  assert.deepEqual(fromWit(decimal(-123456n, 30)), decimal(-1234n, 28));
  assert.equal(toWitExact(decimal(1n << 63n, 0)), null);
  const max = (1n << 63n) - 1n;
  // ...807.5 rounds to even, ...808, which does not fit either: saturated.
  assert.deepEqual(toWit(decimal(92233720368547758075n, 1)), decimal(max, 0));
  assert.deepEqual(toWit(decimal(9223372036854775806_5n, 1)), decimal(9223372036854775806n, 0));
  assert.deepEqual(toWit(decimal(-(1n << 80n), 0)), decimal(-(1n << 63n), 0));
});

test('keys, fields and counters', () => {
  assert.equal(chargeKey('weekday', 3n), 'weekday/3');
  assert.equal(chargeKey('alloc', 1, 2n, 0), 'alloc/1/2/0');
  assert.deepEqual(decodeFields(encodeFields(['v1', 2n, 1, 'a|b']), 4), ['v1', '2', '1', 'a|b']);
  assert.equal(decodeFields(new Uint8Array([0xff])), null);
  assert.equal(bytesToText(new Uint8Array([0xef, 0xbb, 0xbf, 0x61])), '\ufeffa');
  assert.equal(parseCounter('+7'), 7n);
  assert.equal(parseCounter('18446744073709551616'), null);
  assert.equal(parseCounter('-1'), null);
});

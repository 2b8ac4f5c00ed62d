import assert from 'node:assert/strict';
import { test } from 'node:test';

import { PolicyError, bytesToText, parse, textToBytes } from '@recharge/policy-sdk';
import { MemoryCaps, account } from '@recharge/policy-sdk/testing';

import policy, { nextMonday } from '../src/policy.js';
import { State } from '../src/state.js';

const SATURDAY = 1_767_398_400_000n; // 2026-01-03T00:00:00Z
const MONDAY_AFTER = 1_767_571_200_000n; // 2026-01-05T00:00:00Z
const TUESDAY = MONDAY_AFTER + 86_400_000n;

const settings = (fields = {}) => ({
  enabled: true,
  threshold: parse('10.00'),
  amount: parse('50.00'),
  card: 'visa',
  mode: 'target',
  monthlyLimit: undefined,
  ...fields,
});

function host({ balance = '0.00', now = TUESDAY, state } = {}) {
  const subject = account('acme', { snapshot: { balance: parse(balance) }, cards: ['visa'] });
  if (state) subject.state = textToBytes(state);
  return new MemoryCaps({ subject, now });
}

const save = (actor, fields) => ({ tag: 'save-auto-recharge', val: { actor, settings: settings(fields) } });

test('weekends wait for Monday midnight', () => {
  assert.equal(nextMonday(SATURDAY + 3_600_000n), MONDAY_AFTER);
  assert.equal(nextMonday(SATURDAY + 86_400_000n), MONDAY_AFTER);
  assert.equal(nextMonday(MONDAY_AFTER), null);
  assert.equal(nextMonday(-9_000_000_000_000_000n), null);
});

test('a weekday shortfall refills to the target in whole cents, once', () => {
  const caps = host({ balance: '7.3333' });
  policy.handle(save('acme'), false, caps);
  assert.deepEqual(caps.charges, [
    { payer: 'acme', card: 'visa', amount: parse('42.67'), purpose: { tag: 'auto-recharge' }, key: 'weekday/0' },
  ]);
  assert.equal(bytesToText(caps.accounts.subject.state), 'v1|1|1|1|10.00|50.00|visa');
  policy.handle({ tag: 'usage', val: {} }, false, caps);
  assert.equal(caps.charges.length, 1, 'one refill in flight at most');
});

test('a weekend shortfall asks to wake on Monday and charges nothing', () => {
  const caps = host({ now: SATURDAY });
  policy.handle(save('acme'), false, caps);
  assert.deepEqual(caps.charges, []);
  assert.deepEqual(caps.timers, [{ account: 'acme', at: MONDAY_AFTER, tag: 1n }]);
});

test('the balance at the threshold does not trigger', () => {
  const caps = host({ balance: '10.00' });
  policy.handle(save('acme'), false, caps);
  assert.deepEqual(caps.charges, []);
});

test('only the account saves, whatever else is wrong', () => {
  const caps = host();
  assert.throws(
    () => policy.handle(save('agency', { threshold: parse('-1') }), true, caps),
    new PolicyError('forbidden', 'only the account saves its settings'),
  );
});

test('settings are validated, then the card', () => {
  const caps = host();
  assert.throws(
    () => policy.handle(save('acme', { amount: parse('10.00') }), false, caps),
    new PolicyError('invalid-settings', 'threshold and target must be whole cents, the target above the threshold'),
  );
  assert.throws(
    () => policy.handle(save('acme', { card: 'amex' }), false, caps),
    new PolicyError('payment-method-required', 'no saved card amex'),
  );
  assert.throws(
    () => policy.handle({ tag: 'save-allocation', val: { actor: 'acme' } }, false, caps),
    new PolicyError('forbidden', 'this policy sells no monthly allocations'),
  );
});

test('outcomes clear the flight and notify in the Rust texts', () => {
  const caps = host({ balance: '60.00', state: 'v1|1|1|1|10.00|50.00|visa' });
  caps.accounts.subject.snapshot.status = 'paused';
  const paid = { key: 'weekday/0', outcome: 'succeeded', amount: parse('42.6700'), purpose: { tag: 'auto-recharge' } };
  policy.handle({ tag: 'payment-outcome', val: paid }, false, caps);
  policy.handle({ tag: 'payment-outcome', val: { ...paid, outcome: 'declined', purpose: { tag: 'top-up' } } }, false, caps);
  policy.handle({ tag: 'payment-outcome', val: { ...paid, outcome: 'failed', amount: parse('5') } }, false, caps);
  assert.deepEqual(
    caps.notices.map(({ kind, message }) => [kind, message]),
    [
      ['recharge-succeeded', 'refilled 42.67'],
      ['account-resumed', 'payment received'],
      ['top-up-failed', 'top-up of 42.67 failed'],
      ['recharge-failed', 'refill of 5.00 failed'],
    ],
  );
  assert.equal(caps.accounts.subject.snapshot.status, 'active');
  assert.equal(bytesToText(caps.accounts.subject.state), 'v1|1|0|1|10.00|50.00|visa');
});

test('a top-up charges once with its own key', () => {
  const caps = host({ balance: '20.00' });
  const topUp = (amount, card = 'visa') => ({ tag: 'top-up', val: { actor: 'acme', card, amount: parse(amount) } });
  assert.throws(() => policy.handle(topUp('0.001'), false, caps), new PolicyError('invalid-settings', 'amount must be positive whole cents'));
  assert.throws(() => policy.handle(topUp('5', 'amex'), false, caps), new PolicyError('payment-method-required', 'no saved card amex'));
  policy.handle(topUp('5'), false, caps);
  assert.deepEqual(caps.charges.map(({ key, amount }) => [key, amount]), [['topup/0', parse('5')]]);
});

test('queries: the account and its agency may ask, settings read back as target mode', () => {
  const caps = host({ balance: '0.00', state: 'v1|3|0|0|-1.5|2|card|with|pipes' });
  caps.accounts.subject.snapshot.parent = 'agency';
  assert.deepEqual(policy.query('agency', 'auto-recharge', true, caps), {
    tag: 'auto-recharge',
    val: { enabled: false, threshold: parse('-1.5'), amount: parse('2'), card: 'card|with|pipes', mode: 'target', monthlyLimit: undefined },
  });
  assert.deepEqual(policy.query('acme', 'service', true, caps), { tag: 'service', val: false });
  assert.deepEqual(policy.query('acme', 'estimate', true, caps), { tag: 'estimate', val: parse('0') });
  assert.throws(() => policy.query('other', 'balance', true, caps), new PolicyError('forbidden', 'only the account and its agency may ask'));
});

test('state round-trips and refuses garbage', () => {
  const state = new State(settings({ card: 'visa|x' }), true, 7n);
  assert.deepEqual(State.decode(state.encode()), state);
  assert.equal(State.decode(new Uint8Array([0xff, 0, 0x67])), null);
  assert.equal(State.decode(textToBytes('v1|2|1|1|10.00')), null);
});

test('unreadable state is an error, except in describe', () => {
  const caps = host({ state: 'garbage' });
  const unreadable = new PolicyError('refused', 'policy state unreadable');
  assert.throws(() => policy.handle(save('other'), false, caps), unreadable);
  assert.throws(() => policy.query('acme', 'auto-recharge', false, caps), unreadable);
  assert.deepEqual(policy.describe(caps), { autoRecharge: undefined, allocation: undefined });
});

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Actor, PolicyError, Refused, Role, actorOf, describeRefusal, loadState, saveState, textToBytes } from '../src/index.js';
import { MemoryCaps, account } from '../src/testing.js';

class Counter {
  constructor(count = 0) {
    this.count = count;
  }
  encode() {
    return textToBytes(String(this.count));
  }
  static decode(bytes) {
    const text = new TextDecoder().decode(bytes);
    return /^\d+$/.test(text) ? new Counter(Number(text)) : null;
  }
}

test('the actor is the subject, its agency or someone else', () => {
  const caps = new MemoryCaps({ subject: account('sub', { snapshot: { kind: 'sub-account', parent: 'acme' } }) });
  assert.equal(actorOf(caps, 'sub'), Actor.Subject);
  assert.equal(actorOf(caps, 'acme'), Actor.Agency);
  assert.equal(actorOf(caps, 'other'), Actor.Other);
  assert.throws(() => actorOf(new MemoryCaps(), 'sub'), new Refused({ tag: 'foreign-account' }));
});

test('state: none saved is the default, unreadable is refused', () => {
  const caps = new MemoryCaps({ subject: account('acme') });
  assert.deepEqual(loadState(caps, Role.Subject, Counter), new Counter());
  saveState(caps, Role.Subject, new Counter(3));
  assert.deepEqual(loadState(caps, Role.Subject, Counter), new Counter(3));
  caps.accounts.subject.state = textToBytes('x');
  assert.throws(() => loadState(caps, Role.Subject, Counter), new PolicyError('refused', 'policy state unreadable'));
});

test('refusals read as the Rust SDK describes them', () => {
  assert.equal(describeRefusal({ tag: 'bad-amount', val: 'too many digits' }), 'bad amount: too many digits');
  assert.equal(describeRefusal({ tag: 'invalid', val: 'x' }), 'invalid request: x');
  assert.equal(describeRefusal({ tag: 'duplicate-key' }), 'idempotency key already used');
});

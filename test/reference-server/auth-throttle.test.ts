// [SEC-8] The failed-authentication throttle: free failures answered at once, then a delay growing by DELAY_STEP_MS
// per failure up to MAX_DELAY_MS, per source address, over a sliding 60 s window, with bounded memory.
import t from 'tap';
import { AuthThrottle, DELAY_STEP_MS, MAX_DELAY_MS } from '../../reference-server/auth-throttle.ts';

t.test('free failures, then a growing delay capped at MAX_DELAY_MS', async (t) => {
  let now = 1_000_000;
  const throttle = new AuthThrottle(3, () => now);
  t.same([1, 2, 3].map(() => throttle.failed('10.0.0.1')), [0, 0, 0], 'the free failures');
  t.equal(throttle.failed('10.0.0.1'), DELAY_STEP_MS);
  t.equal(throttle.failed('10.0.0.1'), 2 * DELAY_STEP_MS);
  t.equal(throttle.failed('10.0.0.2'), 0, 'another address is not affected');
  for (let i = 0; i < 200; i++) throttle.failed('10.0.0.1');
  t.equal(throttle.failed('10.0.0.1'), MAX_DELAY_MS, 'capped');
  now += 60_000;
  t.equal(throttle.failed('10.0.0.1'), 0, 'a failure alone in a fresh window is free again');
});

t.test('the window slides, and idle addresses are swept', async (t) => {
  let now = 0;
  const throttle = new AuthThrottle(2, () => now);
  throttle.failed('a');
  now = 30_000;
  throttle.failed('a');
  t.equal(throttle.failed('a'), DELAY_STEP_MS, 'three failures within 60 s');
  now = 60_001;
  t.equal(throttle.failed('a'), DELAY_STEP_MS, 'the first left the window: still three in it');
  throttle.failed('b');
  now = 200_000;
  throttle.failed('c');
  t.equal(throttle.size, 1, 'a and b swept');
  t.throws(() => new AuthThrottle(-1, () => 0), RangeError);
});

t.test('zero free failures delays the first failure', async (t) => {
  const throttle = new AuthThrottle(0, () => 0);
  t.equal(throttle.failed('x'), DELAY_STEP_MS);
});

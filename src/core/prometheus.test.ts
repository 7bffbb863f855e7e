import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Histogram, parseExposition, renderFamilies } from './prometheus.js';

test('families render as Prometheus text with HELP, TYPE, labels and escaped label values', () => {
  const text = renderFamilies([
    { name: 'a_total', help: 'A counter.', type: 'counter', collect: () => 3 },
    {
      name: 'b_bytes',
      help: 'B.',
      type: 'gauge',
      collect: () => [{ labels: { who: 'x"y\\z\n' }, value: 1.5 }],
    },
  ]);
  assert.equal(
    text,
    '# HELP a_total A counter.\n# TYPE a_total counter\na_total 3\n# HELP b_bytes B.\n# TYPE b_bytes gauge\nb_bytes{who="x\\"y\\\\z\\n"} 1.5\n',
  );
});

test('a histogram is cumulative, with +Inf equal to the count', () => {
  const h = new Histogram('t_seconds', 'T.', [0.1, 1]);
  for (const v of [0.05, 0.5, 0.5, 3]) h.observe(v);
  const m = parseExposition(renderFamilies([h.family()]));
  assert.equal(m.get('t_seconds_bucket{le="0.1"}'), 1);
  assert.equal(m.get('t_seconds_bucket{le="1"}'), 3);
  assert.equal(m.get('t_seconds_bucket{le="+Inf"}'), 4);
  assert.equal(m.get('t_seconds_count'), 4);
  assert.equal(m.get('t_seconds_sum'), 4.05);
});

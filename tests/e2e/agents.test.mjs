// Agents end to end: tool calls, structured output and thinking through the official `ollama`
// and `openai` clients against `hearth serve`, on random-weight fixtures of three families whose
// outputs differ (Qwen 3 hermes JSON, Qwen 3.5 XML, Gemma 4's own syntax). Random weights can only
// produce a well-formed call or a valid JSON answer under the grammar, so every check below is a
// check of the constraint, the parser and the response shapes together.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Ollama } from 'ollama';
import OpenAI from 'openai';
import { SHARED, startServer } from './harness.mjs';

const FIXTURES = join(SHARED, 'fixtures');
const MODELS = {
  qwen3: join(FIXTURES, 'qwen3-Q8_0.gguf'),
  qwen35: join(FIXTURES, 'tools-qwen35-Q8_0.gguf'),
  gemma4: join(FIXTURES, 'tools-gemma4-Q8_0.gguf'),
};
const NO_TOOLS = join(FIXTURES, 'gemma3-Q8_0.gguf');  // Gemma 3's template: no tools

// The seed's tool example, with maxLength on its strings: random weights never choose to close a
// string (real models do), so unbounded ones would run to num_predict. The bound is part of the
// schema the grammar enforces, as any client may send it.
const WEATHER = {
  type: 'function',
  function: {
    name: 'get_current_weather',
    description: 'Get the current weather for a location',
    parameters: {
      type: 'object',
      properties: {
        location: { type: 'string', description: 'The city, e.g. Paris', maxLength: 12 },
        unit: { type: 'string', enum: ['celsius', 'fahrenheit'] },
      },
      required: ['location'],
    },
  },
};
const TIME = {
  type: 'function',
  function: {
    name: 'get_time',
    description: 'The time in a time zone',
    parameters: { type: 'object', properties: { tz: { type: 'string', maxLength: 12 } },
                  required: ['tz'] },
  },
};

function validWeatherArgs(args) {
  assert.equal(typeof args, 'object');
  assert.equal(typeof args.location, 'string');
  if ('unit' in args) assert.ok(['celsius', 'fahrenheit'].includes(args.unit), args.unit);
  for (const k of Object.keys(args)) assert.ok(['location', 'unit'].includes(k), k);
}

const ANSWER = {
  type: 'object',
  properties: {
    answer: { type: 'string', maxLength: 40 },
    n: { type: 'integer', minimum: 0, maximum: 9 },
  },
  required: ['answer', 'n'],
};
function validAnswer(text) {
  const v = JSON.parse(text);
  assert.equal(typeof v.answer, 'string');
  assert.ok([...v.answer].length <= 40);
  assert.ok(Number.isInteger(v.n) && v.n >= 0 && v.n <= 9, String(v.n));
  for (const k of Object.keys(v)) assert.ok(['answer', 'n'].includes(k), k);
}

const SAMPLED = (seed) => ({ temperature: 0.8, seed, num_predict: 200 });
const ASK = [{ role: 'user', content: 'What is the weather in Paris?' }];

let srv, ollama, openai;

before(async () => {
  srv = await startServer();
  ollama = new Ollama({ host: srv.host });
  openai = new OpenAI({ baseURL: `${srv.host}/v1`, apiKey: 'hearth' });
  for (const [name, path] of Object.entries(MODELS)) await srv.create(name, path);
  await srv.create('gemma3', NO_TOOLS);
});

after(() => srv?.stop());

for (const model of Object.keys(MODELS)) {
  test(`${model}: /v1 tool_choice required returns a parsed call that fits the schema`, async () => {
    for (const seed of [1, 2]) {
      const r = await openai.chat.completions.create({
        model, messages: ASK, tools: [WEATHER, TIME], tool_choice: 'required',
        parallel_tool_calls: seed === 2, temperature: 0.8, seed, max_tokens: 300,
      });
      const c = r.choices[0];
      // Parallel calls: the model may go on calling until max_tokens cuts the last one, which
      // then comes back as content with finish_reason length; the earlier calls stand.
      const cut = seed === 2 && c.finish_reason === 'length';
      if (!cut) assert.equal(c.finish_reason, 'tool_calls', JSON.stringify(c));
      assert.ok(c.message.tool_calls.length >= 1, JSON.stringify(c));
      for (const [i, tc] of c.message.tool_calls.entries()) {
        assert.equal(tc.type, 'function');
        assert.equal(tc.index, i);
        assert.match(tc.id, /^call_[a-z0-9]{8}$/);
        const args = JSON.parse(tc.function.arguments);
        if (tc.function.name === 'get_current_weather') validWeatherArgs(args);
        else assert.equal(tc.function.name, 'get_time');
      }
      if (!cut) assert.doesNotMatch(c.message.content ?? '', /tool_call|<function=|call:/);
    }
  });

  test(`${model}: a named tool_choice, streamed, arrives whole with finish_reason tool_calls`, async () => {
    const stream = await openai.chat.completions.create({
      model, messages: ASK, tools: [WEATHER, TIME], stream: true, seed: 3, temperature: 0.8,
      max_tokens: 200, tool_choice: { type: 'function', function: { name: 'get_current_weather' } },
      parallel_tool_calls: false,
    });
    const calls = [];
    let content = '', finish = null;
    for await (const chunk of stream) {
      const ch = chunk.choices[0];
      if (!ch) continue;
      if (ch.delta?.content) content += ch.delta.content;
      for (const tc of ch.delta?.tool_calls ?? []) calls.push(tc);
      if (ch.finish_reason) finish = ch.finish_reason;
    }
    assert.equal(finish, 'tool_calls');
    assert.ok(calls.length >= 1);
    for (const tc of calls) {
      assert.equal(tc.function.name, 'get_current_weather');
      validWeatherArgs(JSON.parse(tc.function.arguments));  // whole, not fragments
    }
    assert.doesNotMatch(content, /tool_call|<function=|call:/);
  });

  test(`${model}: /api/chat with the ollama client: tool_calls with object arguments, then the result`, async () => {
    const r = await ollama.chat({
      model, messages: ASK, tools: [WEATHER], stream: false, tool_choice: 'required',
      parallel_tool_calls: false, options: SAMPLED(4),
    });
    const tc = r.message.tool_calls;
    assert.ok(tc?.length >= 1, JSON.stringify(r.message));
    assert.equal(tc[0].function.name, 'get_current_weather');
    assert.equal(tc[0].function.index, 0);
    validWeatherArgs(tc[0].function.arguments);
    // Streaming: the call comes whole in one chunk.
    const chunks = [];
    for await (const c of await ollama.chat({
      model, messages: ASK, tools: [WEATHER], stream: true, tool_choice: 'required',
      parallel_tool_calls: false, options: SAMPLED(5),
    }))
      chunks.push(c);
    const streamed = chunks.flatMap((c) => c.message.tool_calls ?? []);
    assert.ok(streamed.length >= 1);
    validWeatherArgs(streamed[0].function.arguments);
    assert.ok(chunks.at(-1).done);
    // The follow-up turn with the tool's result renders and answers.
    const follow = await ollama.chat({
      model, stream: false, options: { num_predict: 8, seed: 6 },
      messages: [...ASK, { role: 'assistant', content: '', tool_calls: tc },
                 { role: 'tool', tool_name: 'get_current_weather', content: '{"temp": 18}' }],
      tools: [WEATHER],
    });
    assert.equal(follow.done, true);
    assert.ok(['stop', 'length'].includes(follow.done_reason));
  });
}

for (const model of Object.keys(MODELS)) {
  test(`${model}: think with a format schema: thinking, then content that validates`, async () => {
    for (const seed of [7, 8]) {
      const r = await ollama.chat({
        model, messages: [{ role: 'user', content: 'Answer in JSON.' }], think: true,
        format: ANSWER, stream: false, options: { ...SAMPLED(seed), num_predict: 160 },
      });
      assert.ok((r.message.thinking ?? '').length > 0, JSON.stringify(r.message));
      validAnswer(r.message.content);
    }
    // The same through /v1: response_format json_schema, reasoning in its own fields.
    const o = await openai.chat.completions.create({
      model, messages: [{ role: 'user', content: 'Answer in JSON.' }], seed: 9, max_tokens: 160,
      reasoning_effort: 'low',
      response_format: { type: 'json_schema', json_schema: { name: 'a', schema: ANSWER } },
    });
    validAnswer(o.choices[0].message.content);
    assert.ok(o.choices[0].message.reasoning_content.length > 0);
  });
}

test('format "json" without thinking, and unsupported schemas are a 400 naming the keyword', async () => {
  const r = await ollama.generate({ model: 'qwen3', prompt: 'hi', format: 'json', think: false,
                                    stream: false, options: SAMPLED(10) });
  const v = JSON.parse(r.response);
  assert.equal(typeof v, 'object');
  await assert.rejects(
    ollama.chat({ model: 'qwen3', messages: ASK, format: { type: 'array', uniqueItems: true },
                  stream: false }),
    (e) => e.status_code === 400 && /uniqueItems/.test(e.message));
  await assert.rejects(
    openai.chat.completions.create({ model: 'qwen3', messages: ASK, tool_choice: 'required' }),
    (e) => e.status === 400 && /needs tools/.test(e.message));
});

test('tools for a model whose template has none are a 400, as Ollama answers (Gemma 3)', async () => {
  const show = await ollama.show({ model: 'gemma3' });
  assert.ok(!show.capabilities.includes('tools'), JSON.stringify(show.capabilities));
  await assert.rejects(
    ollama.chat({ model: 'gemma3', messages: ASK, tools: [WEATHER], stream: false }),
    (e) => e.status_code === 400 && /does not support tools/.test(e.message));
  await assert.rejects(
    openai.chat.completions.create({ model: 'gemma3', messages: ASK, tools: [WEATHER] }),
    (e) => e.status === 400 && /does not support tools/.test(e.message));
  // An empty tools list (the Python client always sends one) is no request for tools.
  const r = await ollama.chat({ model: 'gemma3', messages: ASK, tools: [], stream: false,
                                options: { num_predict: 4 } });
  assert.equal(r.message.role, 'assistant');
});

test('tool_choice none: no calls; text that spells call markup stays content', async () => {
  const r = await openai.chat.completions.create({
    model: 'qwen35', messages: ASK, tools: [WEATHER], tool_choice: 'none', max_tokens: 16, seed: 11,
  });
  assert.equal(r.choices[0].message.tool_calls, undefined);
  assert.notEqual(r.choices[0].finish_reason, 'tool_calls');
});

// Structured output property test: 200 random schemas; every sampled generation parses and
// validates (ajv, a real JSON Schema validator); unsupported keywords are a 400 naming them.
test('format: 200 random schemas, every sampled answer validates', async () => {
  const { default: Ajv } = await import('ajv');
  const ajv = new Ajv({ strict: false });
  let seed = 12345;
  const rnd = (n) => {  // deterministic LCG
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  const leaf = () => {
    switch (rnd(8)) {
      case 0: return { type: 'string', maxLength: 1 + rnd(12) };
      case 1: return { type: 'string', pattern: '^[a-f0-9]{1,6}$' };
      case 2: return { type: 'integer', minimum: -rnd(100), maximum: rnd(1000) };
      case 3: return { type: 'number', minimum: 0, maximum: 1 + rnd(10) };
      case 4: return { type: 'boolean' };
      case 5: return { enum: ['red', 'green', 7, null] };
      case 6: return { type: ['string', 'null'], maxLength: 5 };
      default: return { const: 'fixed' };
    }
  };
  const gen = (depth) => {
    const k = depth >= 2 ? 0 : rnd(4);
    if (k === 0) return leaf();
    if (k === 1)
      return { type: 'array', items: gen(depth + 1), minItems: rnd(2), maxItems: 2 + rnd(2) };
    if (k === 2) return { anyOf: [gen(depth + 1), leaf()] };
    const properties = {}, required = [];
    const n = 1 + rnd(3);
    for (let i = 0; i < n; i++) {
      properties[`p${i}`] = gen(depth + 1);
      if (rnd(2)) required.push(`p${i}`);
    }
    return { type: 'object', properties, required, additionalProperties: false };
  };
  let finished = 0;
  for (let i = 0; i < 200; i++) {
    let schema = { type: 'object', properties: { a: gen(0), b: gen(1) }, required: ['a'],
                   additionalProperties: false };
    if (i % 10 === 0)  // a shared definition through $ref
      schema = { $defs: { item: gen(1) }, type: 'object', properties: { x: { $ref: '#/$defs/item' } },
                 required: ['x'], additionalProperties: false };
    const r = await ollama.generate({
      model: 'qwen3', prompt: 'JSON please', format: schema, think: false, stream: false,
      options: { temperature: 0.9, seed: i, num_predict: 1024 },
    });
    assert.equal(r.done_reason, 'stop', `schema ${JSON.stringify(schema)} ran out of tokens`);
    const value = JSON.parse(r.response);
    const validate = ajv.compile(schema);
    assert.ok(validate(value), `${JSON.stringify(schema)}\n${r.response}\n${ajv.errorsText(validate.errors)}`);
    finished++;
  }
  assert.equal(finished, 200);
  for (const [kw, schema] of [['uniqueItems', { type: 'array', uniqueItems: true }],
                              ['multipleOf', { type: 'integer', multipleOf: 3 }],
                              ['not', { not: { type: 'string' } }],
                              ['patternProperties', { type: 'object', patternProperties: { '^x': {} } }],
                              ['if', { if: { type: 'string' }, then: { maxLength: 3 } }]])
    await assert.rejects(
      ollama.generate({ model: 'qwen3', prompt: 'x', format: schema, stream: false }),
      (e) => e.status_code === 400 && e.message.includes(kw), kw);
});

test('/v1/responses: text (plain and streamed), a required tool call and its follow-up, json_schema', async () => {
  const r = await openai.responses.create({ model: 'qwen3', input: 'hi', max_output_tokens: 12,
                                            temperature: 0.8, reasoning: { effort: 'none' } });
  assert.equal(r.object, 'response');
  assert.ok(['completed', 'incomplete'].includes(r.status));
  assert.equal(r.output.at(-1).type, 'message');
  assert.equal(typeof r.output_text, 'string');
  assert.ok(r.usage.output_tokens > 0);
  // Streamed: typed events in order; the deltas add up to the final text.
  const types = [];
  let deltas = '', final = null;
  for await (const ev of await openai.responses.create({
    model: 'qwen3', input: [{ role: 'user', content: [{ type: 'input_text', text: 'hi' }] }],
    max_output_tokens: 12, temperature: 0.8, stream: true, reasoning: { effort: 'none' } })) {
    types.push(ev.type);
    if (ev.type === 'response.output_text.delta') deltas += ev.delta;
    if (ev.type === 'response.completed' || ev.type === 'response.incomplete') final = ev.response;
  }
  assert.equal(types[0], 'response.created');
  assert.ok(types.includes('response.output_item.added'));
  assert.ok(final, types.join(','));
  assert.equal(final.output.at(-1).content[0].text, deltas);
  // A forced call: a function_call item whose arguments fit the schema.
  const tool = { type: 'function', name: WEATHER.function.name,
                 description: WEATHER.function.description, parameters: WEATHER.function.parameters };
  const c = await openai.responses.create({
    model: 'qwen3', input: 'Weather in Paris?', tools: [tool], tool_choice: 'required',
    parallel_tool_calls: false, temperature: 0.8, max_output_tokens: 200,
    reasoning: { effort: 'none' } });
  const call = c.output.find((o) => o.type === 'function_call');
  assert.ok(call, JSON.stringify(c.output));
  assert.equal(call.name, 'get_current_weather');
  validWeatherArgs(JSON.parse(call.arguments));
  // The follow-up: the call and its output as input items.
  const f = await openai.responses.create({
    model: 'qwen3', tools: [tool], max_output_tokens: 8, reasoning: { effort: 'none' },
    input: ['Weather in Paris?', call, { type: 'function_call_output', call_id: call.call_id,
                                          output: '{"temp": 18}' }].map((x) =>
      typeof x === 'string' ? { role: 'user', content: x } : x) });
  assert.ok(['completed', 'incomplete'].includes(f.status));
  // Structured output through text.format.
  const s = await openai.responses.create({
    model: 'qwen3', input: 'Answer in JSON.', max_output_tokens: 160, temperature: 0.8,
    reasoning: { effort: 'none' },
    text: { format: { type: 'json_schema', name: 'answer', schema: ANSWER } } });
  validAnswer(s.output_text);
  await assert.rejects(openai.responses.create({ model: 'qwen3', input: 'x', previous_response_id: 'resp_x' }),
                       (e) => e.status === 400);
});

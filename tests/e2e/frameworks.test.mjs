// Agent frameworks against `hearth serve`, unchanged: LangChain (@langchain/ollama,
// @langchain/openai) and the Vercel AI SDK (ai with an Ollama provider). Random-weight fixture;
// structured output and forced tool calls come out right only through hearth's grammar.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ChatOllama } from '@langchain/ollama';
import { ChatOpenAI } from '@langchain/openai';
import { tool as lcTool } from '@langchain/core/tools';
import { generateObject, generateText, tool as aiTool, jsonSchema } from 'ai';
import { createOllama } from 'ollama-ai-provider-v2';
import { z } from 'zod';
import { SHARED, startServer } from './harness.mjs';

let srv;
before(async () => {
  srv = await startServer();
  await srv.create('qwen3', join(SHARED, 'fixtures', 'qwen3-Q8_0.gguf'));
});
after(() => srv?.stop());

const Person = z.object({ name: z.string().max(12), age: z.number().int().min(0).max(120) });
const weather = {
  name: 'get_current_weather',
  description: 'Get the current weather for a location',
  schema: z.object({ location: z.string().max(12) }),
};

test('LangChain ChatOllama: withStructuredOutput returns a valid object', async () => {
  const llm = new ChatOllama({ baseUrl: srv.host, model: 'qwen3', temperature: 0.8, seed: 1,
                               numPredict: 200, think: false });
  const out = await llm.withStructuredOutput(Person).invoke('Describe a person.');
  Person.parse(out);
});

test('LangChain ChatOpenAI: bindTools with tool_choice required gives parsed tool_calls', async () => {
  const llm = new ChatOpenAI({ model: 'qwen3', temperature: 0.8, maxTokens: 200,
                               configuration: { baseURL: `${srv.host}/v1` }, apiKey: 'hearth' });
  const t = lcTool(async ({ location }) => `sunny in ${location}`, weather);
  const msg = await llm.bindTools([t], { tool_choice: 'required', parallel_tool_calls: false })
                       .invoke('Weather in Paris?');
  assert.ok(msg.tool_calls.length >= 1, JSON.stringify(msg));
  assert.equal(msg.tool_calls[0].name, 'get_current_weather');
  weather.schema.parse(msg.tool_calls[0].args);
  // withStructuredOutput through response_format json_schema.
  const p = await llm.withStructuredOutput(Person, { method: 'jsonSchema' }).invoke('A person.');
  Person.parse(p);
});

test('LangChain ChatOllama: bindTools round trip (the model may answer or call)', async () => {
  const llm = new ChatOllama({ baseUrl: srv.host, model: 'qwen3', temperature: 0.8, seed: 2,
                               numPredict: 24, think: false });
  const t = lcTool(async ({ location }) => `sunny in ${location}`, weather);
  const msg = await llm.bindTools([t]).invoke('Weather in Paris?');
  assert.ok(Array.isArray(msg.tool_calls));
  for (const c of msg.tool_calls) weather.schema.parse(c.args);
});

test('AI SDK with an Ollama provider: generateObject and a required tool call', async () => {
  const ollama = createOllama({ baseURL: `${srv.host}/api` });
  const { object } = await generateObject({
    model: ollama('qwen3', { think: false }), schema: Person, prompt: 'Describe a person.',
    temperature: 0.8, seed: 3, maxOutputTokens: 200,
  });
  Person.parse(object);
  const r = await generateText({
    model: ollama('qwen3', { think: false }), prompt: 'Weather in Paris?', temperature: 0.8,
    seed: 4, maxOutputTokens: 200, toolChoice: 'required',
    tools: { get_current_weather: aiTool({ description: weather.description,
                                           inputSchema: weather.schema }) },
  });
  assert.ok(r.toolCalls.length >= 1, JSON.stringify(r.response?.body ?? r.text));
  assert.equal(r.toolCalls[0].toolName, 'get_current_weather');
  weather.schema.parse(r.toolCalls[0].input);
});

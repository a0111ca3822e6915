// The web page of `smolvlm serve` in a real browser: Debian's chromium (headless), driven by
// playwright-core, against servers on the tiny fixture model.
//   node --test tests/webui/webui.test.mjs      (SMOLVLM_BIN: the CLI, default build-release/smolvlm)
// Artifacts (screenshots) go to SMOLVLM_WEBUI_ARTIFACTS (default build-release/webui-artifacts).
// SMOLVLM_WEBUI_DIR=webui serves the page's files from that folder instead of the binary's copy
// (editing the page without rebuilding; the server's headers are kept).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';

import { chromium } from 'playwright-core';

import { cli, model, root, serve, stopServer } from './serve.mjs';

const picture = path.join(model, 'images/img_a.png');
const otherPicture = path.join(model, 'images/img_b.png');
const artifacts = process.env.SMOLVLM_WEBUI_ARTIFACTS || path.join(root, 'build-release/webui-artifacts');
const browserPath = process.env.SMOLVLM_CHROMIUM || '/usr/bin/chromium';
const QUESTION = 'What is in this picture?';
const MAX_TOKENS = 48;  // the page's setting and `ask -n`: the tiny model rarely stops by itself

// `smolvlm ask`'s greedy answer: what the page must show, word for word.
function askAnswer(question, images, maxTokens) {
  const args = ['ask', '-m', model, '-t', '1', '-n', String(maxTokens), '--json', '-p', question];
  for (const image of images) args.push('-i', image);
  return JSON.parse(execFileSync(cli, args, { encoding: 'utf8' })).text;
}

async function metric(url, name, key) {
  const headers = key ? { Authorization: `Bearer ${key}` } : {};
  const text = await (await fetch(`${url}/metrics`, { headers })).text();
  const m = text.match(new RegExp(`^${name} (\\S+)$`, 'm'));
  assert.ok(m, `/metrics has ${name}`);
  return Number(m[1]);
}

async function waitFor(check, what, timeoutMs = 10000) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

let browser;
let server;
const problems = [];  // console errors, page errors and failed requests no test expected

function watch(page) {
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(`console: ${msg.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => problems.push(`failed: ${r.url()} ${r.failure()?.errorText}`));
  page.on('dialog', (d) => {
    problems.push(`dialog: ${d.message()}`);
    d.dismiss();
  });
}

const pageFiles = { '/': 'index.html', '/markdown.js': 'markdown.js', '/app.js': 'app.js', '/style.css': 'style.css' };
async function newContext(options = {}) {
  const context = await browser.newContext(options);
  const dir = process.env.SMOLVLM_WEBUI_DIR;
  if (dir) {
    await context.route((u) => Object.hasOwn(pageFiles, new URL(u).pathname), async (route) => {
      const res = await route.fetch();
      const file = pageFiles[new URL(route.request().url()).pathname];
      const type = { html: 'text/html', js: 'text/javascript', css: 'text/css' }[file.split('.').pop()];
      route.fulfill({ response: res, status: 200, headers: { ...res.headers(), 'content-type': `${type}; charset=utf-8` },
        body: fs.readFileSync(path.join(dir, file)) });
    });
  }
  return context;
}

async function openPage(url, viewport = { width: 1100, height: 800 }, options = {}) {
  const context = await newContext({ viewport, ...options });
  const page = await context.newPage();
  watch(page);
  await page.goto(url);
  await page.waitForSelector('body[data-ready="true"]');
  return { context, page };
}

const answers = (page) => page.locator('article.msg.assistant');

// The conversation on screen as the browser keeps it (IndexedDB): its messages, or null.
async function storedMessages(page, id) {
  return page.evaluate(async (wanted) => {
    const key = wanted || document.body.dataset.conversation;
    const db = await new Promise((resolve, reject) => {
      const req = indexedDB.open('smolvlm', 1);
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
    const record = await new Promise((resolve) => {
      const req = db.transaction('conversations').objectStore('conversations').get(key);
      req.onsuccess = () => resolve(req.result);
    });
    db.close();
    return record ? record.messages : null;
  }, id);
}
const lastAnswer = (page) => answers(page).last();

async function askOnPage(page, question, { byEnter = false } = {}) {
  await page.fill('#prompt', question);
  if (byEnter) await page.press('#prompt', 'Enter');
  else await page.click('#send');
  await page.waitForSelector('#send:not([hidden])');  // the answer is complete
  return lastAnswer(page);
}

async function setMaxTokens(page, n) {
  await page.click('#open-settings');
  await page.fill('#max-tokens', String(n));
  await page.click('#close-settings');
}

// A picture file as the page would get it from the clipboard or a drop (built in the page).
const pictureBase64 = fs.readFileSync(otherPicture).toString('base64');

before(async () => {
  fs.mkdirSync(artifacts, { recursive: true });
  // launch() gives the browser a fresh, temporary profile (its own --user-data-dir) each run.
  browser = await chromium.launch({
    executablePath: browserPath,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  server = await serve();
});

after(async () => {
  await browser?.close();
  await stopServer(server);
});

describe('the chat page', () => {
  let context;
  let page;
  before(async () => {
    ({ context, page } = await openPage(server.url));
  });
  after(async () => context?.close());

  test('shows the model name from /v1/models', async () => {
    await waitFor(async () => (await page.textContent('#model')) === 'tiny-smolvlm2', 'the model name');
  });

  test('answers a picture question exactly as smolvlm ask does, streamed', async () => {
    await setMaxTokens(page, MAX_TOKENS);
    await page.setInputFiles('#file-input', picture);
    await page.waitForSelector('#attachments .thumb img');
    const expected = askAnswer(QUESTION, [picture], MAX_TOKENS);
    assert.ok(expected.length > 0);
    const answer = await askOnPage(page, QUESTION);
    assert.equal(await answer.locator('.text').innerText().then((t) => t.trim()), expected.trim());
    const stored = await storedMessages(page);
    assert.equal(stored[1].text, expected, 'the streamed text, byte for byte');
    assert.ok(stored[1].timings.image_tiles > 0);
    assert.equal(stored[1].timings.image_cache_hits, 0);
    assert.match(await answer.locator('.stats').innerText(), /tokens\/s · first token \d+ ms · vision \d+ ms · \d+ tiles?/);
    assert.equal(await page.locator('article.msg.user .pics img').count(), 1);
    await page.screenshot({ path: path.join(artifacts, 'chat.png') });
  });

  test('a follow-up reuses the picture from the cache', async () => {
    const hitsBefore = await metric(server.url, 'smolvlm_image_cache_hits_total');
    const answer = await askOnPage(page, 'And what colour is it?', { byEnter: true });
    const stored = await storedMessages(page);
    assert.equal(stored.length, 4);
    assert.ok(stored[3].timings.image_cache_hits >= 1, JSON.stringify(stored[3].timings));
    assert.match(await answer.locator('.stats').innerText(), /picture from cache/);
    assert.ok((await metric(server.url, 'smolvlm_image_cache_hits_total')) > hitsBefore);
  });

  test('the conversation survives a reload', async () => {
    const before = await page.locator('article.msg').allInnerTexts();
    await page.reload();
    await page.waitForSelector('body[data-ready="true"]');
    assert.deepEqual(await page.locator('article.msg').allInnerTexts(), before);
    assert.equal(await page.locator('article.msg.user .pics img').count(), 1);
  });

  test('Stop cancels a long answer and the server frees the slot', async () => {
    await page.click('#new-chat');
    await setMaxTokens(page, 8000);
    const requests = [];
    page.on('request', (r) => r.url().endsWith('/v1/chat/completions') && requests.push(r));
    await page.fill('#prompt', 'Tell me a very long story.');
    await page.click('#send');
    await waitFor(async () => (await lastAnswer(page).locator('.text').innerText()).length > 0, 'the first chunk');
    assert.equal(await metric(server.url, 'smolvlm_busy_slots'), 1);
    await page.click('#stop');
    await page.waitForSelector('#send:not([hidden])');
    await waitFor(async () => (await metric(server.url, 'smolvlm_busy_slots')) === 0, 'a free slot');
    assert.equal(await lastAnswer(page).locator('.meta').innerText(), 'stopped');
    const stored = await storedMessages(page);
    assert.equal(stored[1].stopped, true);
    assert.equal(stored[1].timings, undefined, 'the answer did not run to its end');
    // The one expected failure: the request Stop aborted.
    const aborted = problems.filter((p) => p.startsWith('failed:') && p.includes('/v1/chat/completions'));
    assert.equal(aborted.length, 1, problems.join('\n'));
    assert.match(aborted[0], /ERR_ABORTED/);
    problems.splice(problems.indexOf(aborted[0]), 1);

    // Esc stops too (the same question afresh: an answer known to run long).
    await page.click('#new-chat');
    await page.fill('#prompt', 'Tell me a very long story.');
    await page.click('#send');
    await waitFor(async () => (await lastAnswer(page).locator('.text').innerText()).length > 0, 'the first chunk');
    await page.keyboard.press('Escape');
    await page.waitForSelector('#send:not([hidden])');
    await waitFor(async () => (await metric(server.url, 'smolvlm_busy_slots')) === 0, 'a free slot');
    assert.equal(await lastAnswer(page).locator('.meta').innerText(), 'stopped');
    const abortedAgain = problems.filter((p) => p.startsWith('failed:') && p.includes('/v1/chat/completions'));
    assert.equal(abortedAgain.length, 1, problems.join('\n'));
    problems.splice(problems.indexOf(abortedAgain[0]), 1);
    await setMaxTokens(page, MAX_TOKENS);
  });

  test('New chat clears the conversation', async () => {
    await page.click('#new-chat');
    assert.equal(await page.locator('article.msg').count(), 0);
    assert.equal(await storedMessages(page), null, 'an empty conversation is not kept');
    await page.reload();
    await page.waitForSelector('body[data-ready="true"]');
    assert.equal(await page.locator('article.msg').count(), 0);
  });

  test('paste and drag-and-drop attach pictures', async () => {
    await page.evaluate((b64) => {
      const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const files = () => {
        const dt = new DataTransfer();
        dt.items.add(new File([bytes], 'pasted.png', { type: 'image/png' }));
        return dt;
      };
      document.querySelector('#prompt').dispatchEvent(
        new ClipboardEvent('paste', { clipboardData: files(), bubbles: true, cancelable: true }));
      document.querySelector('#messages').dispatchEvent(
        new DragEvent('drop', { dataTransfer: files(), bubbles: true, cancelable: true }));
    }, pictureBase64);
    await waitFor(async () => (await page.locator('#attachments .thumb').count()) === 2, 'two thumbnails');
    const sources = await page.locator('#attachments .thumb img').evaluateAll((imgs) => imgs.map((i) => i.src));
    assert.deepEqual(sources, Array(2).fill(`data:image/png;base64,${pictureBase64}`));
    // Both travel to the server as data: URIs and are answered.
    const answer = await askOnPage(page, 'Compare them.');
    const stored = await storedMessages(page);
    assert.equal(stored[0].images.length, 2);
    assert.equal(stored[1].text, askAnswer('Compare them.', [otherPicture, otherPicture], MAX_TOKENS));
    assert.ok(!(await answer.locator('.error').count()));
  });

  test('a file that is not a picture gives a message and is not attached', async () => {
    await page.click('#new-chat');
    await page.setInputFiles('#file-input', { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('hello') });
    await page.waitForSelector('#notice:not([hidden])');
    assert.match(await page.textContent('#notice'), /"notes\.txt" is not a picture/);
    assert.equal(await page.locator('#attachments .thumb').count(), 0);
    // A file that claims to be a picture is attached even where the browser cannot show it (the
    // server reads formats the browser may not: TIFF, HEIC); the server says why it refuses one.
    await page.setInputFiles('#file-input', { name: 'fake.png', mimeType: 'image/png', buffer: Buffer.from('not a png') });
    await page.waitForSelector('#attachments .thumb .no-preview');
    await page.click('#attachments .thumb .remove');
    assert.equal(await page.locator('#attachments .thumb').count(), 0);
  });

  test('usable on a phone-sized screen', async () => {
    await page.setViewportSize({ width: 390, height: 740 });
    await page.setInputFiles('#file-input', picture);
    await askOnPage(page, QUESTION);
    const layout = await page.evaluate(() => ({
      scrollWidth: document.documentElement.scrollWidth,
      width: window.innerWidth,
      composer: document.querySelector('#composer').getBoundingClientRect().bottom,
      send: document.querySelector('#send').getBoundingClientRect().right,
      height: window.innerHeight,
    }));
    assert.ok(layout.scrollWidth <= layout.width, `no sideways scrolling: ${JSON.stringify(layout)}`);
    assert.ok(layout.composer <= layout.height && layout.send <= layout.width, JSON.stringify(layout));
    await page.screenshot({ path: path.join(artifacts, 'chat-phone.png') });
    await page.setViewportSize({ width: 1100, height: 800 });
  });

  test('the settings drawer shapes the request and is kept', async () => {
    await page.click('#open-settings');
    await page.fill('#max-tokens', '5');
    await page.fill('#temperature', '0.7');
    await page.fill('#top-p', '0.9');
    await page.fill('#seed', '42');
    await page.fill('#system-prompt', 'Be brief.');
    await page.click('#close-settings');
    await page.reload();
    await page.waitForSelector('body[data-ready="true"]');
    await page.click('#new-chat');
    const sent = page.waitForRequest('**/v1/chat/completions');
    const answer = await askOnPage(page, 'Hi');
    const body = (await sent).postDataJSON();
    assert.deepEqual(
      { max_tokens: body.max_tokens, temperature: body.temperature, top_p: body.top_p, seed: body.seed, stream: body.stream },
      { max_tokens: 5, temperature: 0.7, top_p: 0.9, seed: 42, stream: true });
    assert.deepEqual(body.messages, [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: [{ type: 'text', text: 'Hi' }] }]);
    assert.equal(body.model, 'tiny-smolvlm2');
    const stored = await storedMessages(page);
    assert.ok(stored[1].text.length > 0 && !(await answer.locator('.error').count()));
    await page.click('#open-settings');
    await page.fill('#temperature', '0');
    await page.fill('#top-p', '1');
    await page.fill('#seed', '');
    await page.fill('#system-prompt', '');
    await page.fill('#max-tokens', String(MAX_TOKENS));
    await page.click('#close-settings');
  });

  test('Delete removes the stored conversation, and Undo brings it back', async () => {
    const id = await page.evaluate(() => document.body.dataset.conversation);
    assert.ok(await storedMessages(page, id));
    await page.click('#delete-chat');
    await waitFor(async () => (await storedMessages(page, id)) === null, 'the deletion');
    assert.equal(await page.locator('article.msg').count(), 0);
    assert.match(await page.textContent('#toast'), /Deleted “Hi”/);
    await page.click('#toast-undo');
    await waitFor(async () => (await storedMessages(page, id)) !== null, 'the undo');
    await waitFor(async () => (await page.locator('.conv-open', { hasText: /^Hi$/ }).count()) === 1, 'the list entry');
  });

  test('no console errors and no failed requests', () => {
    assert.deepEqual(problems, []);
  });
});

// Answers /v1/chat/completions with `chunks` as an SSE stream, in place of the server.
function fakeStream(chunks) {
  const events = chunks.map((content) => `data: ${JSON.stringify({ choices: [{ index: 0, delta: { content } }] })}\n\n`);
  return { status: 200, headers: { 'content-type': 'text/event-stream' }, body: `${events.join('')}data: [DONE]\n\n` };
}

describe('safety and errors', () => {
  let context;
  let page;
  before(async () => {
    ({ context, page } = await openPage(server.url));
    await page.click('#new-chat');
    await setMaxTokens(page, MAX_TOKENS);
  });
  after(async () => context?.close());

  test('markup in the prompt and in the answer is shown as text and never runs', async () => {
    const payload = '<img src=x onerror="window.__xss=1"> <script>window.__xss=2</script>';
    await page.route('**/v1/chat/completions', (route) =>
      route.fulfill(fakeStream(['Here: ', '<img src=x onerror="window.__xss=3">', ' **bold** and ',
        '<script>window.__xss=4</script>\n\n```\n<b onmouseover="window.__xss=5">code</b>\n```\n- <i>item</i>'])));
    const answer = await askOnPage(page, payload);
    await page.unroute('**/v1/chat/completions');
    assert.equal(await page.evaluate(() => window.__xss), undefined);
    assert.equal(await page.locator('#messages img').count(), 0, 'no <img> was made from text');
    assert.equal(await page.locator('#messages script, #messages b, #messages i').count(), 0);
    assert.equal(await page.locator('article.msg.user .text').innerText(), payload);
    const text = await answer.locator('.text').innerText();
    assert.ok(text.includes('<img src=x onerror="window.__xss=3">'), text);
    assert.ok(text.includes('<script>window.__xss=4</script>'), text);
    assert.equal(await answer.locator('strong').innerText(), 'bold');
    assert.equal(await answer.locator('pre code').innerText(), '<b onmouseover="window.__xss=5">code</b>');
    assert.equal(await answer.locator('li').innerText(), '<i>item</i>');
    await answer.locator('pre').hover();
    assert.equal(await page.evaluate(() => window.__xss), undefined);
  });

  test('the page is served with a Content-Security-Policy that forbids inline and remote code', async () => {
    const res = await fetch(`${server.url}/`);
    const csp = res.headers.get('content-security-policy');
    assert.match(csp, /default-src 'self'/);
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.match(csp, /connect-src 'self'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|\*|https?:/);
    // The browser enforces it: an injected inline script does not run.
    const blocked = [];
    page.on('console', (m) => m.type() === 'error' && /Content Security Policy/.test(m.text()) && blocked.push(m.text()));
    await page.evaluate(() => {
      const s = document.createElement('script');
      s.textContent = 'window.__inline = 1';
      document.head.append(s);
    });
    assert.equal(await page.evaluate(() => window.__inline), undefined);
    await waitFor(() => blocked.length > 0, 'the CSP report');
    for (const b of blocked) problems.splice(problems.indexOf(`console: ${b}`), 1);
  });

  // Each refusal the page must explain: the status the server would give, the message shown.
  const refusals = [
    [429, { error: { message: 'the queue is full', type: 'rate_limit_error' } }, /server is busy/],
    [400, { error: { message: 'messages[0].content[0].image_url.url: not a picture', type: 'invalid_request_error' } },
      /The server refused a message \(“.+”\): not a picture\./],
  ];
  for (const [status, body, shown] of refusals) {
    test(`HTTP ${status} gives a clear message`, async () => {
      await page.route('**/v1/chat/completions', (route) =>
        route.fulfill({ status, contentType: 'application/json', body: JSON.stringify(body) }));
      const answer = await askOnPage(page, 'Hello?');
      await page.unroute('**/v1/chat/completions');
      assert.match(await answer.locator('.error').innerText(), shown);
      // Chromium logs each refused request on the console: exactly that one is expected.
      const logged = problems.filter((p) => p.includes(`status of ${status}`));
      assert.equal(logged.length, 1, problems.join('\n'));
      problems.splice(problems.indexOf(logged[0]), 1);
    });
  }

  test('a refused picture from the real server is explained', async () => {
    await page.click('#new-chat');
    // Bytes that say image/png but are no picture: a real 400, its reason shown.
    await page.setInputFiles('#file-input', { name: 'fake.png', mimeType: 'image/png', buffer: Buffer.from('not a png') });
    await page.waitForSelector('#attachments .thumb .no-preview');
    const answer = await askOnPage(page, 'What is this?');
    // In words, not as a JSON path; the picture is marked in the question.
    assert.match(await answer.locator('.error').innerText(), /^The server refused picture 1 of the question “What is this\?”: .*not a picture in a known format/);
    assert.doesNotMatch(await answer.locator('.error').innerText(), /messages\[/);
    assert.equal(await page.locator('article.msg.user .pic.refused').count(), 1);
    const logged = problems.filter((p) => p.includes('status of 400'));
    assert.equal(logged.length, 1, problems.join('\n'));
    problems.splice(problems.indexOf(logged[0]), 1);
    // The refused question is not sent again: the next one is answered.
    const next = await askOnPage(page, 'Hello?');
    assert.equal(await next.locator('.error').count(), 0);
    assert.ok((await next.locator('.text').innerText()).length > 0);
  });

  test('GIF, BMP and TIFF pictures are answered (TIFF without a preview)', async () => {
    await page.click('#new-chat');
    const gif = Buffer.from('R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==', 'base64');
    // A 2x2 24-bit BMP and a 2x2 uncompressed RGB TIFF, byte by byte.
    const bmp = Buffer.alloc(70);
    bmp.write('BM', 0);
    bmp.writeUInt32LE(70, 2);
    bmp.writeUInt32LE(54, 10);
    bmp.writeUInt32LE(40, 14);
    bmp.writeInt32LE(2, 18);
    bmp.writeInt32LE(2, 22);
    bmp.writeUInt16LE(1, 26);
    bmp.writeUInt16LE(24, 28);
    for (let i = 54; i < 70; i++) bmp[i] = (i * 37) & 255;
    const entries = [[256, 3, 1, 2], [257, 3, 1, 2], [258, 3, 3, 134], [259, 3, 1, 1], [262, 3, 1, 2],
      [273, 4, 1, 140], [277, 3, 1, 3], [278, 3, 1, 2], [279, 4, 1, 12]];
    const tif = Buffer.alloc(152);
    tif.write('II*\0', 0, 'latin1');
    tif.writeUInt32LE(8, 4);
    tif.writeUInt16LE(entries.length, 8);
    entries.forEach(([tag, type, count, value], i) => {
      const at = 10 + 12 * i;
      tif.writeUInt16LE(tag, at);
      tif.writeUInt16LE(type, at + 2);
      tif.writeUInt32LE(count, at + 4);
      if (type === 3 && count === 1) tif.writeUInt16LE(value, at + 8);
      else tif.writeUInt32LE(value, at + 8);
    });
    for (let i = 0; i < 3; i++) tif.writeUInt16LE(8, 134 + 2 * i);
    for (let i = 140; i < 152; i++) tif[i] = (i * 53) & 255;
    await page.setInputFiles('#file-input', [
      { name: 'dot.gif', mimeType: 'image/gif', buffer: gif },
      { name: 'tiny.bmp', mimeType: 'image/bmp', buffer: bmp },
      { name: 'tiny.tif', mimeType: 'image/tiff', buffer: tif },
    ]);
    await waitFor(async () => (await page.locator('#attachments .thumb').count()) === 3, 'three pictures');
    const answer = await askOnPage(page, 'What are these?');
    assert.equal(await answer.locator('.error').count(), 0);
    assert.ok((await answer.locator('.text').innerText()).length > 0);
  });

  test('a server that is gone gives a clear message', async () => {
    await page.click('#new-chat');
    await page.route('**/v1/chat/completions', (route) => route.abort('connectionrefused'));
    const answer = await askOnPage(page, 'Are you there?');
    await page.unroute('**/v1/chat/completions');
    assert.match(await answer.locator('.error').innerText(), /server cannot be reached/);
    // Expected: the refused connection, as a failed request and on the console.
    const failed = problems.filter((p) => p.includes('/v1/chat/completions') || p.includes('ERR_CONNECTION_REFUSED'));
    assert.equal(failed.length, 2, problems.join('\n'));
    for (const f of failed) problems.splice(problems.indexOf(f), 1);
  });

  test('no other console errors or failed requests', () => {
    assert.deepEqual(problems, []);
  });
});

// Streams `pieces` into the page's next /v1/chat/completions, one every `everyMs` (the first after
// `firstMs`), through a stand-in for fetch: page.route answers all at once, and these checks need
// an answer that grows while they look.
async function slowAnswer(page, pieces, { everyMs = 30, firstMs = everyMs, finish = 'stop' } = {}) {
  await page.evaluate(({ pieces, everyMs, firstMs, finish }) => {
    const real = window.fetch;
    window.fetch = async (url, init) => {
      if (!String(url).endsWith('/v1/chat/completions')) return real(url, init);
      window.fetch = real;
      window.__sentBody = JSON.parse(init.body);
      const encoder = new TextEncoder();
      const event = (o) => encoder.encode(`data: ${JSON.stringify(o)}\n\n`);
      let timer = 0;
      const body = new ReadableStream({
        start(controller) {
          let i = 0;
          const next = () => {
            if (i < pieces.length) {
              controller.enqueue(event({ choices: [{ index: 0, delta: { content: pieces[i++] }, finish_reason: null }] }));
              timer = setTimeout(next, everyMs);
            } else {
              controller.enqueue(event({ choices: [{ index: 0, delta: {}, finish_reason: finish }] }));
              controller.enqueue(encoder.encode('data: [DONE]\n\n'));
              controller.close();
            }
          };
          timer = setTimeout(next, firstMs);
          init.signal.addEventListener('abort', () => {
            clearTimeout(timer);
            controller.error(new DOMException('stopped', 'AbortError'));
          });
        },
      });
      return new Response(body, { status: 200, headers: { 'content-type': 'text/event-stream' } });
    };
  }, { pieces, everyMs, firstMs, finish });
}

// Drops a w x h picture (a PNG drawn in the page) on the page.
async function dropPicture(page, width, height) {
  await page.evaluate(async ([w, h]) => {
    const canvas = document.createElement('canvas');
    canvas.width = w;
    canvas.height = h;
    const ctx = canvas.getContext('2d');
    ctx.fillStyle = '#c33';
    ctx.fillRect(0, 0, w, h);
    ctx.fillStyle = '#33c';
    ctx.fillRect(0, 0, w / 2, h / 2);
    const blob = await new Promise((r) => canvas.toBlob(r, 'image/png'));
    const dt = new DataTransfer();
    dt.items.add(new File([blob], `p${w}x${h}.png`, { type: 'image/png' }));
    document.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
  }, [width, height]);
  await page.waitForSelector('#attachments .thumb img');
}

// Records what the page copies (the clipboard itself is the browser's, not the page's).
async function watchClipboard(page) {
  await page.evaluate(() => {
    window.__copied = [];
    Object.defineProperty(navigator, 'clipboard', {
      configurable: true,
      value: { writeText: async (t) => void window.__copied.push(t) },
    });
  });
}

function contrast(fg, bg) {
  const lum = (rgb) => {
    const [r, g, b] = rgb.match(/\d+(\.\d+)?/g).slice(0, 3).map((v) => {
      const c = Number(v) / 255;
      return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
  return (a + 0.05) / (b + 0.05);
}

const axeSource = fs.readFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)), 'node_modules/axe-core/axe.min.js'), 'utf8');

// axe-core's findings on the page as it stands, serious and critical only.
async function axeProblems(page, state) {
  if (!(await page.evaluate(() => typeof window.axe === 'object'))) await page.evaluate(axeSource);
  const found = await page.evaluate(async () => {
    const result = await window.axe.run(document, { resultTypes: ['violations'] });
    return result.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 5) }));
  });
  return found.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => ({ state, ...v }));
}

const MARKDOWN = [
  '# A heading\n\n',
  'Some *emphasis*, **strong**, ~~struck~~ and `code`; snake_case stays.\n\n',
  '***Both*** at once, and 2 * 3 * 4 stays.\n\n',
  'A [safe link](https://example.org/a) and a [bad one](javascript:alert(1)).\n\n',
  '| Name | Size |\n|:-----|-----:|\n| one | 1 |\n| two | 22 |\n\n',
  '> quoted **text**\n\n',
  '- outer\n  - inner one\n  - inner two\n- second\n\n3. three\n4. four\n\n',
  '```python\ndef f(x):\n    return "s" + 1  # note\n```\n\n<b>raw</b> <img src=x>',
];

describe('conversations, pictures, actions, rendering, input, access', () => {
  let context;
  let page;
  before(async () => {
    ({ context, page } = await openPage(server.url));
    await setMaxTokens(page, MAX_TOKENS);
  });
  after(async () => context?.close());

  test('conversations: a list kept in the browser, switched, renamed, pictures included', async () => {
    await page.click('#new-chat');
    await page.setInputFiles('#file-input', picture);
    await askOnPage(page, 'First conversation');
    const first = await page.evaluate(() => document.body.dataset.conversation);
    await page.click('#new-chat');
    await askOnPage(page, 'Second conversation');
    await waitFor(async () => (await page.locator('.conv-open').count()) === 2, 'two entries');
    assert.deepEqual(await page.locator('.conv-open').allInnerTexts(), ['Second conversation', 'First conversation']);
    assert.equal(await page.getAttribute('.conv-open >> nth=0', 'aria-current'), 'page');
    await page.locator('.conv-open', { hasText: /^First conversation$/ }).click();
    await waitFor(async () => (await page.locator('article.msg.user .text').first().innerText()) === 'First conversation', 'the first');
    assert.equal(await page.locator('article.msg.user .pics img').count(), 1);
    await page.screenshot({ path: path.join(artifacts, 'webui.png') });  // docs/webui.png
    // Rename: Enter keeps the new name.
    await page.locator('.conversation').nth(1).locator('.conv-rename').click();
    await page.fill('.conv-name', 'Renamed chat');
    await page.press('.conv-name', 'Enter');
    await waitFor(async () => (await page.locator('.conv-open', { hasText: /^Renamed chat$/ }).count()) === 1, 'the new name');
    // A reload shows this tab's conversation (its address says which), picture included, and a
    // follow-up sends the picture again.
    await page.reload();
    await page.waitForSelector('body[data-ready="true"]');
    assert.equal(await page.evaluate(() => document.body.dataset.conversation), first);
    assert.equal(await page.locator('article.msg.user .pics img').count(), 1);
    assert.equal(await page.locator('.dropped').count(), 0);
    const sent = page.waitForRequest('**/v1/chat/completions');
    await askOnPage(page, 'And now?');
    const body = (await sent).postDataJSON();
    assert.equal(body.messages[0].content[0].type, 'image_url');
    assert.match(body.messages[0].content[0].image_url.url, /^data:image\/png;base64,/);
    assert.match(await page.textContent('#storage-use'), /^2 conversations, [\d.]+ MB of 200 MB$/);
    await page.screenshot({ path: path.join(artifacts, 'conversations.png') });
    // Deleting from the list: the entry goes, Undo takes the focus and brings it back.
    const entries = await page.locator('.conv-open').count();
    await page.locator('.conversation').first().locator('.conv-delete').focus();
    await page.keyboard.press('Enter');
    await waitFor(async () => (await page.locator('.conv-open').count()) === entries - 1, 'one entry fewer');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'toast-undo');
    await page.keyboard.press('Enter');
    await waitFor(async () => (await page.locator('.conv-open').count()) === entries, 'the entry back');
    assert.notEqual(await page.evaluate(() => document.body.dataset.conversation), first, 'a new chat in place of the deleted one');
    await page.locator('.conv-open', { hasText: /^Renamed chat$/ }).click();
    await waitFor(async () => (await page.evaluate(() => document.body.dataset.conversation)) === first, 'the restored one');
    assert.equal(await page.locator('article.msg').count(), 4);
  });

  test('conversations: a full browser store says so and keeps the text', async () => {
    const small = await newContext({ viewport: { width: 1100, height: 800 } });
    await small.addInitScript(() => localStorage.setItem('smolvlm.storageLimit', '60000'));
    const p = await small.newPage();
    watch(p);
    await p.goto(server.url);
    await p.waitForSelector('body[data-ready="true"]');
    await setMaxTokens(p, 8);
    await p.setInputFiles('#file-input', picture);  // 63 KB: more than the whole store
    await askOnPage(p, QUESTION);
    assert.match(await p.textContent('#notice'), /room for conversations is full \(0\.1 MB\): 1 picture\(s\) of this conversation are not kept after a reload\. Delete old conversations/);
    await p.reload();
    await p.waitForSelector('body[data-ready="true"]');
    assert.equal(await p.locator('article.msg').count(), 2, 'the text is kept');
    assert.match(await p.locator('.dropped').innerText(), /1 picture was not kept: the browser's room for conversations was full/);
    await askOnPage(p, 'And now?');
    assert.match(await p.textContent('#notice'), /1 earlier picture\(s\) of this conversation were not kept in the browser: the model does not see them/);
    await p.screenshot({ path: path.join(artifacts, 'storage-full.png') });
    await small.close();
  });

  test('conversations: the one conversation the first page kept moves into the list', async () => {
    const old = await newContext();
    await old.addInitScript(() => {
      if (!sessionStorage.getItem('started')) {
        localStorage.setItem('smolvlm.chat.v1', JSON.stringify([
          { role: 'user', text: 'Old question', images: [] }, { role: 'assistant', text: 'Old *answer*', images: [] }]));
      }
      sessionStorage.setItem('started', '1');
    });
    const p = await old.newPage();
    watch(p);
    await p.goto(server.url);
    await p.waitForSelector('body[data-ready="true"]');
    assert.deepEqual(await p.locator('article.msg .text').allInnerTexts(), ['Old question', 'Old answer']);
    assert.deepEqual(await p.locator('.conv-open').allInnerTexts(), ['Old question']);
    assert.equal(await p.evaluate(() => localStorage.getItem('smolvlm.chat.v1')), null);
    await p.reload();
    await p.waitForSelector('body[data-ready="true"]');
    assert.equal(await p.locator('.conv-open').count(), 1, 'moved once');
    await old.close();
  });

  test('conversations: two tabs see each other and never overwrite each other', async () => {
    const other = await context.newPage();
    watch(other);
    await other.goto(`${server.url}/#${await page.evaluate(() => document.body.dataset.conversation)}`);
    await other.waitForSelector('body[data-ready="true"]');
    const count = await page.locator('article.msg').count();
    assert.equal(await other.locator('article.msg').count(), count);
    // An answer in one tab shows in the other.
    await askOnPage(page, 'From tab one');
    await waitFor(async () => (await other.locator('article.msg').count()) === count + 2, 'the other tab following');
    // A new conversation in the other tab leaves this one alone and joins the list here.
    await other.click('#new-chat');
    await askOnPage(other, 'From tab two');
    await waitFor(async () => (await page.locator('.conv-open', { hasText: /^From tab two$/ }).count()) === 1, 'the list');
    assert.equal(await page.locator('article.msg.user .text').last().innerText(), 'From tab one');
    // Both tabs on one conversation, both answering at once: the later save becomes a copy.
    await other.locator('.conv-open', { hasText: /^Renamed chat$/ }).click();
    await waitFor(async () => (await other.locator('article.msg').count()) === count + 2, 'the same conversation');
    await slowAnswer(other, Array(20).fill('slow '), { everyMs: 100 });
    await other.fill('#prompt', 'Slow question');
    await other.click('#send');
    await slowAnswer(page, ['quick']);
    await askOnPage(page, 'Quick question');
    await other.waitForSelector('#send:not([hidden])');
    assert.match(await other.textContent('#notice'), /Another tab changed this conversation meanwhile: this version is kept as a new conversation/);
    const mine = await storedMessages(page);
    assert.equal(mine[mine.length - 2].text, 'Quick question');
    const theirs = await storedMessages(other);
    assert.equal(theirs[theirs.length - 2].text, 'Slow question');
    await waitFor(async () => (await page.locator('.conv-open', { hasText: /^Renamed chat \(copy\)$/ }).count()) === 1, 'the copy listed');
    await other.close();
  });

  test('pictures: natural proportions, a larger view on click', async () => {
    await page.click('#new-chat');
    await dropPicture(page, 17, 13);
    await slowAnswer(page, ['A small picture.']);
    await askOnPage(page, 'What is this small picture?');
    const shown = await page.locator('article.msg.user .pics img').evaluate((img) => ({
      w: img.getBoundingClientRect().width, h: img.getBoundingClientRect().height, nw: img.naturalWidth, nh: img.naturalHeight }));
    assert.deepEqual([shown.nw, shown.nh], [17, 13]);
    assert.ok(Math.abs(shown.w / shown.h - 17 / 13) < 0.05, `not stretched: ${JSON.stringify(shown)}`);
    assert.ok(shown.h < 40, `not blown up: ${JSON.stringify(shown)}`);
    await page.click('article.msg.user .pic');
    await page.waitForSelector('#viewer[open]');
    const large = await page.locator('#viewer-img').evaluate((img) => img.getBoundingClientRect());
    assert.ok(large.width > shown.w && Math.abs(large.width / large.height - 17 / 13) < 0.05, JSON.stringify(large));
    await page.screenshot({ path: path.join(artifacts, 'picture-viewer.png') });
    await page.keyboard.press('Escape');
    await page.waitForFunction(() => !document.querySelector('#viewer').open);
    assert.equal(await page.evaluate(() => document.activeElement.classList.contains('pic')), true, 'focus back on the picture');
  });

  test('acting on messages: copy as Markdown and as text, copy a code block', async () => {
    await page.click('#new-chat');
    await watchClipboard(page);
    await slowAnswer(page, ['# Title\n\nSome **bold** text.\n\n```python\nprint("hi")\n```\n']);
    await askOnPage(page, 'Copy me');
    await page.click('article.msg.user .act-copy');
    assert.equal(await page.locator('article.msg.user .act-copy').innerText(), 'Copied');
    await page.click('article.msg.assistant .act-copy');
    await page.click('article.msg.assistant .act-copy-text');
    await page.click('article.msg.assistant .code-copy');
    const copied = await page.evaluate(() => window.__copied);
    assert.equal(copied[0], 'Copy me');
    assert.equal(copied[1], '# Title\n\nSome **bold** text.\n\n```python\nprint("hi")\n```\n');
    assert.match(copied[2], /^Title\n+Some bold text\.\n+print\("hi"\)\s*$/);
    assert.equal(copied[3], 'print("hi")');
  });

  test('acting on messages: edit a question and send it again', async () => {
    await page.click('#new-chat');
    await page.setInputFiles('#file-input', picture);
    await askOnPage(page, 'Describe it.');
    await page.click('article.msg.user .act-edit');
    await page.fill('article.msg.user .edit-text', QUESTION);
    await page.press('article.msg.user .edit-text', 'Enter');
    await page.waitForSelector('#send:not([hidden])');
    await waitFor(async () => (await page.locator('article.msg').count()) === 2, 'one exchange');
    assert.equal(await page.locator('article.msg.user .text').innerText(), QUESTION);
    assert.equal(await page.locator('article.msg.user .pics img').count(), 1, 'the picture stays');
    const stored = await storedMessages(page);
    assert.equal(stored.length, 2);
    assert.equal(stored[1].text, askAnswer(QUESTION, [picture], MAX_TOKENS));
  });

  test('acting on messages: a cut answer says so and continues; regenerate samples anew', async () => {
    // The tiny model does not stop by itself within MAX_TOKENS: the answer above was cut.
    const cut = await storedMessages(page);
    assert.equal(cut[1].finish, 'length');
    assert.match(await lastAnswer(page).locator('.meta.length').innerText(), /Stopped at the length limit/);
    await page.screenshot({ path: path.join(artifacts, 'length-limit.png') });
    let sent = page.waitForRequest('**/v1/chat/completions');
    await page.click('article.msg.assistant .act-continue');
    await page.waitForSelector('#send:not([hidden])');
    let body = (await sent).postDataJSON();
    assert.equal(body.messages.length, 3);
    assert.deepEqual(body.messages[1], { role: 'assistant', content: cut[1].text });
    assert.equal(body.messages[2].role, 'user');
    assert.match(body.messages[2].content[0].text, /^Continue your previous answer/);
    const continued = (await storedMessages(page))[1].text;
    assert.ok(continued.startsWith(cut[1].text) && continued.length > cut[1].text.length + 5, continued);
    assert.equal(await page.locator('article.msg').count(), 2, 'the same answer, longer');

    const texts = new Set([continued]);
    for (let i = 0; i < 2; i++) {
      sent = page.waitForRequest('**/v1/chat/completions');
      await page.click('article.msg.assistant .act-regenerate');
      await page.waitForSelector('#send:not([hidden])');
      body = (await sent).postDataJSON();
      assert.equal(body.temperature, 0.7, 'sampled, the greedy setting notwithstanding');
      assert.equal(body.seed, undefined);
      assert.equal(body.messages.length, 1);
      assert.equal(await page.locator('article.msg').count(), 2, 'the answer replaced');
      texts.add((await storedMessages(page))[1].text);
    }
    assert.equal(texts.size, 3, 'a new answer each time');
  });

  test('rendering: Markdown without raw HTML, highlighted code, safe links', async () => {
    await page.click('#new-chat');
    await slowAnswer(page, MARKDOWN);
    const answer = await askOnPage(page, 'Show me Markdown.');
    const text = answer.locator('.text');
    assert.equal(await text.locator('h3').innerText(), 'A heading');
    assert.equal(await text.locator('em').first().innerText(), 'emphasis');
    assert.equal(await text.locator('strong > em').innerText(), 'Both');
    assert.match(await text.locator('p').nth(1).innerText(), /^Both at once, and 2 \* 3 \* 4 stays\.$/);
    assert.equal(await text.locator('strong').first().innerText(), 'strong');
    assert.equal(await text.locator('del').innerText(), 'struck');
    assert.match(await text.locator('p').nth(0).innerText(), /snake_case stays/);
    const links = await text.locator('a').evaluateAll((as) => as.map((a) => [a.textContent, a.href, a.target, a.rel]));
    assert.deepEqual(links, [['safe link', 'https://example.org/a', '_blank', 'noopener noreferrer nofollow']]);
    assert.match(await text.innerText(), /bad one \(javascript:alert\(1/);
    assert.deepEqual(await text.locator('th').allInnerTexts(), ['Name', 'Size']);
    assert.deepEqual(await text.locator('td').allInnerTexts(), ['one', '1', 'two', '22']);
    assert.equal(await text.locator('td.align-right').count(), 2);
    assert.equal(await text.locator('blockquote strong').innerText(), 'text');
    assert.deepEqual(await text.locator('ul > li > ul > li').allInnerTexts(), ['inner one', 'inner two']);
    assert.equal(await text.locator('ol').getAttribute('start'), '3');
    assert.equal(await text.locator('pre code .tok-keyword').first().innerText(), 'def');
    assert.equal(await text.locator('pre code .tok-string').first().innerText(), '"s"');
    assert.equal(await text.locator('pre code .tok-comment').innerText(), '# note');
    assert.equal(await page.locator('#messages img, #messages b').count(), 0, 'no raw HTML');
    assert.match(await text.innerText(), /<b>raw<\/b> <img src=x>/);
    await page.screenshot({ path: path.join(artifacts, 'markdown.png') });
  });

  test('rendering: "thinking…" before the first token, one announcement per answer', async () => {
    await page.click('#new-chat');
    await page.evaluate(() => {
      window.__announced = [];
      new MutationObserver(() => window.__announced.push(document.querySelector('#announcer').textContent))
        .observe(document.querySelector('#announcer'), { childList: true, characterData: true, subtree: true });
    });
    await slowAnswer(page, Array.from({ length: 26 }, (_, i) => `word${i} `), { firstMs: 1200, everyMs: 20 });
    await page.fill('#prompt', 'Think first.');
    await page.click('#send');
    await page.waitForSelector('article.msg.assistant .thinking');
    assert.equal(await page.locator('article.msg.assistant .thinking').innerText(), 'thinking…');
    await page.waitForSelector('#send:not([hidden])');
    assert.equal(await page.locator('.thinking').count(), 0);
    const announced = await page.evaluate(() => window.__announced);
    assert.equal(announced.length, 1, JSON.stringify(announced));
    assert.match(announced[0], /^Answer: word0 word1 .*word25/);
    assert.equal(await page.getAttribute('#messages', 'aria-live'), null, 'the stream itself is not read out');
  });

  test('rendering: scrolling follows the stream only while the reader is at the bottom', async () => {
    await page.setViewportSize({ width: 1100, height: 500 });
    await page.click('#new-chat');
    await slowAnswer(page, Array.from({ length: 400 }, (_, i) => `Line ${i}.\n\n`), { everyMs: 25 });
    await page.fill('#prompt', 'A long answer.');
    await page.click('#send');
    const list = page.locator('#messages');
    await waitFor(() => list.evaluate((l) => l.scrollHeight > l.clientHeight + 300), 'an answer taller than the view');
    assert.ok(await list.evaluate((l) => l.scrollHeight - l.scrollTop - l.clientHeight < 60), 'following at first');
    await page.mouse.move(500, 200);
    await page.mouse.wheel(0, -400);
    await waitFor(() => list.evaluate((l) => l.scrollHeight - l.scrollTop - l.clientHeight > 300), 'scrolled up');
    const [top, length] = await list.evaluate((l) => [l.scrollTop, l.textContent.length]);
    await new Promise((r) => setTimeout(r, 700));
    const [topLater, lengthLater] = await list.evaluate((l) => [l.scrollTop, l.textContent.length]);
    assert.ok(lengthLater > length, 'the answer went on');
    assert.ok(Math.abs(topLater - top) < 2, `the reader's place is kept: ${top} -> ${topLater}`);
    await list.evaluate((l) => l.scrollTo(0, l.scrollHeight));
    await new Promise((r) => setTimeout(r, 400));
    assert.ok(await list.evaluate((l) => l.scrollHeight - l.scrollTop - l.clientHeight < 60), 'following again');
    await page.click('#stop');
    await page.waitForSelector('#send:not([hidden])');
    await page.setViewportSize({ width: 1100, height: 800 });
  });

  test('input: the question box grows with its text', async () => {
    const height = () => page.locator('#prompt').evaluate((t) => t.getBoundingClientRect().height);
    await page.fill('#prompt', '');
    const one = await height();
    await page.fill('#prompt', 'a\nb\nc\nd\ne');
    const five = await height();
    assert.ok(five > one * 2, `${one} -> ${five}`);
    assert.ok(await page.locator('#prompt').evaluate((t) => t.scrollHeight <= t.clientHeight + 2), 'nothing clipped');
    await page.fill('#prompt', Array(80).fill('line').join('\n'));
    assert.ok((await height()) <= 800 * 0.4 + 1, 'at most 40% of the window, then it scrolls');
    await page.screenshot({ path: path.join(artifacts, 'input-grown.png') });
    await page.fill('#prompt', '');
    assert.ok(Math.abs((await height()) - one) < 2);
  });

  test('input: sampling settings and a JSON schema, validated as typed, shape the request', async () => {
    await page.click('#new-chat');
    await page.click('#open-settings');
    const error = (id) => page.locator(`#${id}-error`).innerText();
    await page.fill('#temperature', '3');
    assert.equal(await error('temperature'), 'Temperature must be at most 2.');
    assert.equal(await page.getAttribute('#temperature', 'aria-invalid'), 'true');
    await page.fill('#temperature', '0.5');
    assert.equal(await error('temperature'), '');
    await page.fill('#top-k', '2.5');
    assert.equal(await error('top-k'), 'Top-k must be a whole number.');
    await page.fill('#top-k', '40');
    await page.fill('#repeat-penalty', '0');
    assert.equal(await error('repeat-penalty'), 'Repeat penalty must be at least 0.01.');
    await page.fill('#repeat-penalty', '1.1');
    await page.fill('#top-p', '0');
    assert.equal(await error('top-p'), 'Top-p must be more than 0.');
    await page.fill('#top-p', '0.9');
    await page.fill('#json-schema', '{"type": "object",');
    assert.match(await error('json-schema'), /^Not valid JSON: /);
    await page.fill('#json-schema', '[1, 2]');
    assert.equal(await error('json-schema'), 'The schema must be a JSON object ({…}).');
    const schema = { type: 'object', properties: { colour: { type: 'string', enum: ['red', 'blue'] } }, required: ['colour'] };
    await page.fill('#json-schema', JSON.stringify(schema));
    assert.equal(await error('json-schema'), '');
    await page.screenshot({ path: path.join(artifacts, 'settings.png') });
    await page.keyboard.press('Escape');
    const sent = page.waitForRequest('**/v1/chat/completions');
    const answer = await askOnPage(page, 'Which colour?');
    const body = (await sent).postDataJSON();
    assert.deepEqual(
      { temperature: body.temperature, top_p: body.top_p, top_k: body.top_k, repeat_penalty: body.repeat_penalty, response_format: body.response_format },
      { temperature: 0.5, top_p: 0.9, top_k: 40, repeat_penalty: 1.1, response_format: { type: 'json_schema', json_schema: { name: 'answer', strict: true, schema } } });
    assert.equal(await answer.locator('.error').count(), 0);
    assert.match(JSON.parse((await storedMessages(page))[1].text).colour, /^(red|blue)$/, 'the server kept to the schema');
    // A setting left invalid stops the question with a word, and nothing is sent.
    await page.click('#open-settings');
    await page.fill('#temperature', '5');
    await page.keyboard.press('Escape');
    let requests = 0;
    const count = (r) => r.url().endsWith('/v1/chat/completions') && requests++;
    page.on('request', count);
    const refused = await askOnPage(page, 'Again?');
    page.off('request', count);
    assert.equal(requests, 0);
    assert.equal(await refused.locator('.error').innerText(), 'Settings: Temperature must be at most 2.');
    await page.click('#open-settings');
    for (const [id, value] of [['temperature', '0'], ['top-p', '1'], ['top-k', ''], ['repeat-penalty', ''], ['json-schema', '']]) await page.fill(`#${id}`, value);
    await page.keyboard.press('Escape');
  });

  test('keyboard: a focus ring on every control; the drawer holds focus, Esc closes it, focus returns', async () => {
    await page.click('#new-chat');
    await slowAnswer(page, ['Some answer.']);
    await askOnPage(page, 'Something to act on');
    await page.evaluate(() => document.activeElement.blur());
    const seen = [];
    while (!seen.some((s) => s.what === 'send') && seen.length < 150) {
      await page.keyboard.press('Tab');
      seen.push(await page.evaluate(() => {
        const e = document.activeElement;
        const ringed = e.closest('.attach') || e;
        const s = getComputedStyle(ringed);
        return { what: e.id || e.className || e.tagName, outline: s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2 };
      }));
    }
    assert.ok(seen.some((s) => s.what === 'file-input'), JSON.stringify(seen));
    // (BODY: Tab past the last control, on its way round to the first.)
    assert.deepEqual(seen.filter((s) => !s.outline && s.what !== 'BODY'), [], 'every focused control shows a ring');
    await page.focus('#open-settings');
    await page.keyboard.press('Enter');
    await page.waitForSelector('#settings[open]');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'max-tokens');
    await page.keyboard.press('Shift+Tab');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'close-settings', 'Shift+Tab wraps to the end');
    for (let i = 0; i < 20; i++) {
      await page.keyboard.press('Tab');
      assert.ok(await page.evaluate(() => document.querySelector('#settings').contains(document.activeElement)), `Tab ${i} stays in the drawer`);
    }
    await page.keyboard.press('Escape');
    await page.waitForFunction(() => !document.querySelector('#settings').open);
    assert.equal(await page.evaluate(() => document.activeElement.id), 'open-settings');
  });

  test('screen readers: who said what, and Send readable in both themes', async () => {
    assert.deepEqual(await page.locator('article.msg').evaluateAll((as) => as.map((a) => a.getAttribute('aria-label'))), ['You', 'Assistant']);
    assert.equal(await page.locator('article.msg.user .sr').innerText(), 'You said:');
    for (const colorScheme of ['light', 'dark']) {
      await page.emulateMedia({ colorScheme });
      const [fg, bg] = await page.locator('#send').evaluate((b) => [getComputedStyle(b).color, getComputedStyle(b).backgroundColor]);
      assert.ok(contrast(fg, bg) >= 4.5, `${colorScheme}: ${fg} on ${bg} is ${contrast(fg, bg).toFixed(2)}:1`);
    }
    await page.screenshot({ path: path.join(artifacts, 'chat-dark.png') });
    await page.emulateMedia({ colorScheme: 'light' });
  });

  test('phones: every control is at least 44 px, the list opens from Chats', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    const small = async () => page.evaluate(() => Array.from(document.querySelectorAll('button, input, textarea, .attach, select, a'))
      .filter((e) => e.offsetParent !== null && !e.closest('.attach input, .sr') && getComputedStyle(e).visibility !== 'hidden' && !(e.type === 'file'))
      .map((e) => ({ e: e.id || e.className || e.tagName, r: e.getBoundingClientRect() }))
      .filter(({ r }) => r.width > 0 && (r.width < 44 || r.height < 44))
      .map(({ e, r }) => `${e} ${Math.round(r.width)}x${Math.round(r.height)}`));
    assert.deepEqual(await small(), []);
    await page.click('#toggle-sidebar');
    // Measured once the slide-in is over: during it the boxes are translated, and a translated
    // 44 px box can measure 43.99 px (seen on a slower CI machine).
    await page.waitForFunction(() => {
      const style = getComputedStyle(document.querySelector('#sidebar'));
      return style.visibility === 'visible' && style.transform === 'none';
    });
    assert.deepEqual(await small(), []);
    await page.screenshot({ path: path.join(artifacts, 'phone-list.png') });
    await page.keyboard.press('Escape');
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.screenshot({ path: path.join(artifacts, 'phone-dark.png') });
    await page.emulateMedia({ colorScheme: 'light' });
    await page.setViewportSize({ width: 1100, height: 800 });
  });

  test('axe-core finds nothing serious or critical in the main states', async () => {
    await page.click('#new-chat');
    const found = [...(await axeProblems(page, 'empty'))];
    await slowAnswer(page, MARKDOWN);
    await askOnPage(page, 'Show me Markdown.');
    found.push(...(await axeProblems(page, 'answered')));
    await page.emulateMedia({ colorScheme: 'dark' });
    found.push(...(await axeProblems(page, 'answered, dark')));
    await page.emulateMedia({ colorScheme: 'light' });
    await dropPicture(page, 40, 30);
    await slowAnswer(page, ['A picture.']);
    await askOnPage(page, 'And this?');
    await page.click('article.msg.user .pic >> nth=-1');
    await page.waitForSelector('#viewer[open]');
    found.push(...(await axeProblems(page, 'picture view')));
    await page.keyboard.press('Escape');
    await page.click('#open-settings');
    found.push(...(await axeProblems(page, 'settings')));
    await page.keyboard.press('Escape');
    await page.setViewportSize({ width: 390, height: 844 });
    await page.click('#toggle-sidebar');
    found.push(...(await axeProblems(page, 'phone, list open')));
    await page.keyboard.press('Escape');
    await page.setViewportSize({ width: 1100, height: 800 });
    assert.deepEqual(found, []);
  });

  test('the page stays small: at most 150 KB, 50 KB compressed', async () => {
    let raw = 0;
    let packed = 0;
    for (const file of Object.keys(pageFiles)) {
      const dir = process.env.SMOLVLM_WEBUI_DIR;
      const body = dir ? fs.readFileSync(path.join(dir, pageFiles[file]))
        : Buffer.from(await (await page.request.get(`${server.url}${file}`)).body());
      raw += body.length;
      packed += zlib.gzipSync(body, { level: 9 }).length;
    }
    assert.ok(raw <= 150 * 1024 && packed <= 50 * 1024, `${raw} bytes, ${packed} compressed`);
    console.log(`# the page: ${raw} bytes, ${packed} gzipped`);
  });

  test('no console errors or failed requests in these checks', () => {
    assert.deepEqual(problems, []);
  });
});

describe('with --api-key, --max-body 1 and one slot', () => {
  let keyed;
  before(async () => {
    keyed = await serve(['--api-key', 'board-secret', '--max-body', '1', '--parallel', '1', '--queue', '0']);
  });
  after(async () => stopServer(keyed));

  test('the page asks for the key once and keeps it', async () => {
    const { context, page } = await openPage(keyed.url);
    await page.waitForSelector('#key-dialog[open]');
    await page.fill('#key-input', 'board-secret');
    await page.click('#key-form button[type="submit"]');
    await waitFor(async () => (await page.textContent('#model')) === 'tiny-smolvlm2', 'the model name');
    await page.setInputFiles('#file-input', picture);
    await setMaxTokens(page, MAX_TOKENS);
    const answer = await askOnPage(page, QUESTION);
    assert.equal((await answer.locator('.text').innerText()).trim(), askAnswer(QUESTION, [picture], MAX_TOKENS).trim());
    await page.reload();
    await page.waitForSelector('body[data-ready="true"]');
    await waitFor(async () => (await page.textContent('#model')) === 'tiny-smolvlm2', 'the model name');
    assert.equal(await page.locator('#key-dialog[open]').count(), 0, 'asked once only');

    // A picture larger than --max-body (1 MB) is scaled down in the browser, then answered.
    await page.click('#new-chat');
    const size = await page.evaluate(async () => {
      const canvas = document.createElement('canvas');
      canvas.width = canvas.height = 1400;
      const ctx = canvas.getContext('2d');
      const noise = ctx.createImageData(1400, 1400);
      for (let i = 0; i < noise.data.length; i++) noise.data[i] = (i * 2654435761) >>> 24;
      ctx.putImageData(noise, 0, 0);
      const blob = await new Promise((r) => canvas.toBlob(r, 'image/png'));
      const dt = new DataTransfer();
      dt.items.add(new File([blob], 'large.png', { type: 'image/png' }));
      document.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
      return blob.size;
    });
    assert.ok(size > 1 << 20, `the picture is ${size} bytes`);
    await page.waitForSelector('#attachments .thumb img');
    const scaled = await askOnPage(page, QUESTION);
    assert.equal(await scaled.locator('.error').count(), 0, await scaled.innerText());
    assert.ok((await scaled.locator('.text').innerText()).length > 0);
    assert.match(await page.textContent('#notice'), /scaled down/);
    await context.close();
    assert.deepEqual(problems, []);
  });

  test('a wrong key is said to be wrong, and so is a saved key that no longer works', async () => {
    const context = await newContext();
    await context.addInitScript(() => {
      if (!sessionStorage.getItem('started')) localStorage.setItem('smolvlm.apiKey', 'old-secret');
      sessionStorage.setItem('started', '1');
    });
    const page = await context.newPage();
    watch(page);
    await page.goto(keyed.url);
    await page.waitForSelector('#key-dialog[open]');
    assert.match(await page.textContent('#key-error'), /The server refused the saved API key/);
    await page.fill('#key-input', 'wrong-secret');
    await page.click('#key-form button[type="submit"]');
    await waitFor(async () => /refused this key/.test(await page.textContent('#key-error')), 'the word on the wrong key');
    assert.equal(await page.locator('#key-dialog[open]').count(), 1, 'still asking');
    assert.equal(await page.evaluate(() => localStorage.getItem('smolvlm.apiKey')), null, 'a wrong key is not kept');
    await page.screenshot({ path: path.join(artifacts, 'wrong-key.png') });
    const found = await axeProblems(page, 'key dialog');
    await page.fill('#key-input', 'board-secret');
    await page.click('#key-form button[type="submit"]');
    await page.waitForFunction(() => !document.querySelector('#key-dialog').open);
    await waitFor(async () => (await page.textContent('#model')) === 'tiny-smolvlm2', 'the model name');
    // Chromium logs each refused request: the saved key's and the wrong key's.
    const logged = problems.filter((p) => p.includes('status of 401'));
    assert.equal(logged.length, 2, problems.join('\n'));
    for (const l of logged) problems.splice(problems.indexOf(l), 1);
    await context.close();
    assert.deepEqual(found, []);
    assert.deepEqual(problems, []);
  });

  test('a busy server gives a clear message', async () => {
    // The page first (ready to ask), so that the other client's answer, fast on the tiny model,
    // is still running when the page asks.
    const context = await newContext();
    await context.addInitScript(() => localStorage.setItem('smolvlm.apiKey', 'board-secret'));
    const page = await context.newPage();
    watch(page);
    await page.goto(keyed.url);
    await page.waitForSelector('body[data-ready="true"]');
    // Another client holds the only slot, and nothing may wait: the page's request gets a real 429.
    const other = new AbortController();
    const res = await fetch(`${keyed.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { Authorization: 'Bearer board-secret', 'Content-Type': 'application/json' },
      // Greedy: a sampled answer may end early and free the slot.
      body: JSON.stringify({ messages: [{ role: 'user', content: 'Talk.' }], max_tokens: 8000, temperature: 0, stream: true }),
      signal: other.signal,
    });
    assert.equal(res.status, 200);
    const reader = res.body.getReader();
    await reader.read();
    const answer = await askOnPage(page, 'Hello?');
    assert.match(await answer.locator('.error').innerText(), /server is busy/);
    const logged = problems.filter((p) => p.includes('status of 429'));
    assert.equal(logged.length, 1, problems.join('\n'));
    problems.splice(problems.indexOf(logged[0]), 1);
    other.abort();
    await waitFor(async () => (await metric(keyed.url, 'smolvlm_busy_slots', 'board-secret')) === 0, 'a free slot');
    await context.close();
    assert.deepEqual(problems, []);
  });
});

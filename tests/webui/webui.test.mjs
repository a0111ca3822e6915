// The web page of `smolvlm serve` in a real browser: Debian's chromium (headless), driven by
// playwright-core, against servers on the tiny fixture model.
//   node --test tests/webui/webui.test.mjs      (SMOLVLM_BIN: the CLI, default build-release/smolvlm)
// Artifacts (screenshots) go to SMOLVLM_WEBUI_ARTIFACTS (default build-release/webui-artifacts).
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const cli = process.env.SMOLVLM_BIN || path.join(root, 'build-release/smolvlm');
const model = path.join(root, 'tests/fixtures/tiny-smolvlm2');
const picture = path.join(model, 'images/img_a.png');
const otherPicture = path.join(model, 'images/img_b.png');
const artifacts = process.env.SMOLVLM_WEBUI_ARTIFACTS || path.join(root, 'build-release/webui-artifacts');
const browserPath = process.env.SMOLVLM_CHROMIUM || '/usr/bin/chromium';
const QUESTION = 'What is in this picture?';
const MAX_TOKENS = 48;  // the page's setting and `ask -n`: the tiny model rarely stops by itself

// Starts `smolvlm serve` on a free port; resolves once it says "ready on URL". One thread, as for
// `ask` below: the answers are the same, and a pool of two on a busy CI machine (whose other core
// is taken) runs many times slower.
function serve(extraArgs = []) {
  return new Promise((resolve, reject) => {
    const child = spawn(cli, ['serve', '-m', model, '--port', '0', '-t', '1', ...extraArgs], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    const timer = setTimeout(() => reject(new Error(`serve did not start:\n${out}`)), 30000);
    const onData = (d) => {
      out += d;
      const m = out.match(/ready on (http:\/\/[0-9.]+:\d+)/);
      if (m) {
        clearTimeout(timer);
        resolve({ child, url: m[1] });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => reject(new Error(`serve exited (${code}):\n${out}`)));
  });
}

function stopServer(server) {
  if (!server || server.child.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    server.child.once('exit', resolve);
    server.child.kill('SIGTERM');
  });
}

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

async function openPage(url, viewport = { width: 1100, height: 800 }) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  watch(page);
  await page.goto(url);
  await page.waitForSelector('body[data-ready="true"]');
  return { context, page };
}

const answers = (page) => page.locator('article.msg.assistant');
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
    const stored = await page.evaluate(() => JSON.parse(localStorage.getItem('smolvlm.chat.v1')));
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
    const stored = await page.evaluate(() => JSON.parse(localStorage.getItem('smolvlm.chat.v1')));
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
    const stored = await page.evaluate(() => JSON.parse(localStorage.getItem('smolvlm.chat.v1')));
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
    assert.deepEqual(await page.evaluate(() => JSON.parse(localStorage.getItem('smolvlm.chat.v1'))), []);
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
    const stored = await page.evaluate(() => JSON.parse(localStorage.getItem('smolvlm.chat.v1')));
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
    const stored = await page.evaluate(() => JSON.parse(localStorage.getItem('smolvlm.chat.v1')));
    assert.ok(stored[1].text.length > 0 && !(await answer.locator('.error').count()));
    await page.click('#open-settings');
    await page.fill('#temperature', '0');
    await page.fill('#top-p', '1');
    await page.fill('#seed', '');
    await page.fill('#system-prompt', '');
    await page.fill('#max-tokens', String(MAX_TOKENS));
    await page.click('#close-settings');
  });

  test('Delete removes the stored conversation', async () => {
    await page.click('#delete-chat');
    assert.equal(await page.evaluate(() => localStorage.getItem('smolvlm.chat.v1')), null);
    assert.equal(await page.locator('article.msg').count(), 0);
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
      /refused the request: messages\[0\]\.content\[0\]\.image_url\.url: not a picture/],
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
    assert.match(await answer.locator('.error').innerText(), /refused the request: .+not a picture in a known format/);
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

  test('a busy server gives a clear message', async () => {
    // Another client holds the only slot, and nothing may wait: the page's request gets a real 429.
    const other = new AbortController();
    const res = await fetch(`${keyed.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { Authorization: 'Bearer board-secret', 'Content-Type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'Talk.' }], max_tokens: 8000, stream: true }),
      signal: other.signal,
    });
    assert.equal(res.status, 200);
    const reader = res.body.getReader();
    await reader.read();
    const context = await browser.newContext();
    await context.addInitScript(() => localStorage.setItem('smolvlm.apiKey', 'board-secret'));
    const page = await context.newPage();
    watch(page);
    await page.goto(keyed.url);
    await page.waitForSelector('body[data-ready="true"]');
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

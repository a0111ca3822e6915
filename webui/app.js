// The chat page of `smolvlm serve`: plain JavaScript, no framework, no network but the server's
// own API. Model and user text only ever reach the page as text nodes (see renderMarkdown).
'use strict';

(() => {
  const STORE_CHAT = 'smolvlm.chat.v1';
  const STORE_SETTINGS = 'smolvlm.settings.v1';
  const STORE_KEY = 'smolvlm.apiKey';
  const DEFAULT_SETTINGS = { maxTokens: 512, temperature: 0, topP: 1, seed: '', system: '' };

  const $ = (id) => document.getElementById(id);
  const el = (tag, className, text) => {
    const e = document.createElement(tag);
    if (className) e.className = className;
    if (text !== undefined) e.textContent = text;
    return e;
  };

  const state = {
    messages: [],          // {role: 'user'|'assistant', text, images: [dataURI], stats, error, stopped}
    attachments: [],       // data: URIs waiting to be sent
    settings: { ...DEFAULT_SETTINGS },
    config: { max_body_bytes: 20 << 20, api_key_required: false },
    controller: null,      // the AbortController of the answer being streamed
  };

  // ---- storage -------------------------------------------------------------------------------

  function load(key, fallback) {
    try {
      const v = localStorage.getItem(key);
      return v === null ? fallback : JSON.parse(v);
    } catch {
      return fallback;
    }
  }

  function saveChat() {
    try {
      localStorage.setItem(STORE_CHAT, JSON.stringify(state.messages));
    } catch {
      // Over the browser's quota (pictures are large): keep the text, drop the pictures.
      const light = state.messages.map((m) => ({ ...m, images: [], droppedImages: m.images.length }));
      try {
        localStorage.setItem(STORE_CHAT, JSON.stringify(light));
      } catch {
        /* nothing more can be kept */
      }
    }
  }

  function saveSettings() {
    localStorage.setItem(STORE_SETTINGS, JSON.stringify(state.settings));
  }

  const apiKey = () => localStorage.getItem(STORE_KEY) || '';

  // ---- Markdown subset: paragraphs, ``` code blocks, - and 1. lists, **bold**, `code` ----------
  // Every piece of text becomes a text node; no string is ever parsed as HTML.

  function appendInline(parent, text) {
    const pattern = /(\*\*[^*]+\*\*|`[^`]+`)/g;
    let last = 0;
    for (const m of text.matchAll(pattern)) {
      if (m.index > last) parent.append(document.createTextNode(text.slice(last, m.index)));
      const token = m[0];
      parent.append(token[0] === '`' ? el('code', '', token.slice(1, -1)) : el('strong', '', token.slice(2, -2)));
      last = m.index + token.length;
    }
    if (last < text.length) parent.append(document.createTextNode(text.slice(last)));
  }

  function appendLines(parent, lines) {
    lines.forEach((line, i) => {
      if (i > 0) parent.append(el('br'));
      appendInline(parent, line);
    });
  }

  function renderBlocks(parent, text) {
    const lines = text.split('\n');
    let i = 0;
    while (i < lines.length) {
      if (lines[i].trim() === '') {
        i++;
        continue;
      }
      const bullet = /^\s*[-*]\s+/;
      const numbered = /^\s*\d+[.)]\s+/;
      const kind = bullet.test(lines[i]) ? 'ul' : numbered.test(lines[i]) ? 'ol' : 'p';
      if (kind === 'p') {
        const para = [];
        while (i < lines.length && lines[i].trim() !== '' && !bullet.test(lines[i]) && !numbered.test(lines[i])) {
          para.push(lines[i++]);
        }
        const p = el('p');
        appendLines(p, para);
        parent.append(p);
      } else {
        const list = el(kind);
        const marker = kind === 'ul' ? bullet : numbered;
        while (i < lines.length && marker.test(lines[i])) {
          const li = el('li');
          appendInline(li, lines[i++].replace(marker, ''));
          list.append(li);
        }
        parent.append(list);
      }
    }
  }

  function renderMarkdown(parent, text) {
    parent.replaceChildren();
    const parts = text.split(/^```[^\n]*\n?/m);
    // Even parts are prose, odd ones code (an unclosed fence while streaming is code too).
    parts.forEach((part, i) => {
      if (i % 2 === 1) {
        const pre = el('pre');
        pre.append(el('code', '', part.replace(/\n$/, '')));
        parent.append(pre);
      } else {
        renderBlocks(parent, part);
      }
    });
  }

  // ---- the conversation on screen ------------------------------------------------------------

  function statsLine(stats) {
    const parts = [];
    if (stats.tokensPerS !== undefined) parts.push(`${stats.tokensPerS.toFixed(1)} tokens/s`);
    if (stats.ttftMs !== undefined) parts.push(`first token ${Math.round(stats.ttftMs)} ms`);
    if (stats.visionMs !== undefined && stats.tiles > 0) parts.push(`vision ${Math.round(stats.visionMs)} ms`);
    if (stats.tiles > 0) parts.push(`${stats.tiles} tile${stats.tiles === 1 ? '' : 's'}`);
    if (stats.cacheHits > 0) parts.push('picture from cache');
    return parts.join(' · ');
  }

  function renderMessage(m) {
    const box = el('article', `msg ${m.role}`);
    if (m.images && m.images.length) {
      const pics = el('div', 'pics');
      for (const src of m.images) {
        const img = el('img');
        img.src = src;
        img.alt = 'attached picture';
        pics.append(img);
      }
      box.append(pics);
    }
    if (m.droppedImages) box.append(el('p', 'meta', `(${m.droppedImages} picture(s) too large to keep in the browser)`));
    const body = el('div', 'text');
    renderMarkdown(body, m.text);
    box.append(body);
    if (m.stopped) box.append(el('p', 'meta', 'stopped'));
    if (m.error) box.append(el('p', 'error', m.error));
    if (m.stats) box.append(el('p', 'stats', statsLine(m.stats)));
    return box;
  }

  function renderAll() {
    const list = $('messages');
    list.replaceChildren();
    if (!state.messages.length) list.append($('empty-template').content.cloneNode(true));
    for (const m of state.messages) list.append(renderMessage(m));
    list.scrollTop = list.scrollHeight;
  }

  // While an answer streams, it is redrawn at most once a frame: redrawing for every piece
  // re-renders the whole text each time, and a long answer would keep the page too busy to
  // take a click on Stop.
  let answerFrame = 0;
  function scheduleAnswerUpdate(answer) {
    if (answerFrame) return;
    answerFrame = requestAnimationFrame(() => {
      answerFrame = 0;
      updateAnswer(answer);
    });
  }

  // Redraws the answer being made, unless New chat or Delete took it away meanwhile.
  function updateAnswer(answer) {
    if (answerFrame) {
      cancelAnimationFrame(answerFrame);
      answerFrame = 0;
    }
    const list = $('messages');
    if (state.messages[state.messages.length - 1] !== answer) return;
    const node = renderMessage(answer);
    if (list.lastElementChild && list.lastElementChild.classList.contains('msg')) {
      list.lastElementChild.replaceWith(node);
    } else {
      list.append(node);
    }
    list.scrollTop = list.scrollHeight;
  }

  function notice(text) {
    const n = $('notice');
    n.textContent = text;
    n.hidden = !text;
  }

  function renderAttachments() {
    const box = $('attachments');
    box.replaceChildren();
    state.attachments.forEach((src, i) => {
      const item = el('div', 'thumb');
      const img = el('img');
      img.src = src;
      img.alt = `picture ${i + 1}`;
      // A format this browser cannot show: a label instead (the server reads it, or says why not).
      img.addEventListener('error', () => img.replaceWith(el('span', 'no-preview', 'no preview')));
      const remove = el('button', 'remove', '×');
      remove.type = 'button';
      remove.title = 'Remove this picture';
      remove.addEventListener('click', () => {
        state.attachments.splice(i, 1);
        renderAttachments();
      });
      item.append(img, remove);
      box.append(item);
    });
  }

  // ---- pictures ------------------------------------------------------------------------------

  const readAsDataURL = (file) =>
    new Promise((resolve, reject) => {
      const r = new FileReader();
      r.onload = () => resolve(r.result);
      r.onerror = () => reject(r.error);
      r.readAsDataURL(file);
    });

  const decode = (src) =>
    new Promise((resolve, reject) => {
      const img = new Image();
      img.onload = () => resolve(img);
      img.onerror = () => reject(new Error('not a picture'));
      img.src = src;
    });

  // What the server decodes (it checks the bytes, not the name): the browser may show fewer of
  // them (TIFF, HEIC), so a picture it cannot show is sent all the same, with a placeholder.
  const pictureExtensions = /\.(jpe?g|png|webp|gif|bmp|dib|tiff?|avif|heic|heif)$/i;

  async function addFiles(files) {
    for (const file of files) {
      const name = file.name || 'the pasted file';
      if (!file.type.startsWith('image/') && !pictureExtensions.test(name)) {
        notice(`"${name}" is not a picture (${file.type || 'unknown type'}); attach JPEG, PNG, WebP, GIF, BMP, TIFF, AVIF or HEIC files.`);
        continue;
      }
      try {
        const src = await readAsDataURL(file);
        state.attachments.push(src);
        notice('');
      } catch {
        notice(`"${name}" could not be read.`);
      }
    }
    renderAttachments();
  }

  // Scales a picture down (JPEG) so that its data: URI takes at most `budget` characters.
  async function shrink(src, budget) {
    const img = await decode(src);
    let scale = Math.sqrt(budget / src.length);
    for (let attempt = 0; attempt < 6; attempt++) {
      const canvas = document.createElement('canvas');
      canvas.width = Math.max(1, Math.floor(img.naturalWidth * Math.min(1, scale)));
      canvas.height = Math.max(1, Math.floor(img.naturalHeight * Math.min(1, scale)));
      canvas.getContext('2d').drawImage(img, 0, 0, canvas.width, canvas.height);
      const out = canvas.toDataURL('image/jpeg', 0.9);
      if (out.length <= budget) return out;
      scale *= 0.75;
    }
    throw new Error('the picture cannot be made small enough for the server');
  }

  // Pictures travel as sent unless the request would exceed the server's --max-body.
  async function fitToBody(messagesJson, images) {
    const limit = state.config.max_body_bytes * 0.95 - 4096;
    const size = JSON.stringify(messagesJson).length;
    if (size <= limit || !images.length) return false;
    const total = images.reduce((n, m) => n + m.url.length, 0);
    const budget = Math.floor((limit - (size - total)) / images.length);
    if (budget < 2048) throw new Error('the conversation is too large for the server (--max-body)');
    for (const part of images) {
      if (part.url.length > budget) part.url = await shrink(part.url, budget);
    }
    return true;
  }

  // ---- talking to the server -----------------------------------------------------------------

  function headers(extra) {
    const h = { ...extra };
    const key = apiKey();
    if (key) h.Authorization = `Bearer ${key}`;
    return h;
  }

  async function errorMessage(res) {
    let detail = '';
    try {
      const body = await res.json();
      detail = (body.error && body.error.message) || '';
    } catch {
      /* not JSON */
    }
    switch (res.status) {
      case 429:
        return 'The server is busy answering others. Try again in a moment.';
      case 400:
        return `The server refused the request${detail ? `: ${detail}` : ''}.`;
      case 401:
        return 'The API key is missing or wrong.';
      case 413:
        return 'The pictures are too large for the server (--max-body).';
      case 503:
        return `The server is not ready${detail ? `: ${detail}` : ''}.`;
      default:
        return `The server answered HTTP ${res.status}${detail ? `: ${detail}` : ''}.`;
    }
  }

  function requestMessages() {
    const out = [];
    const system = String(state.settings.system || '').trim();
    if (system) out.push({ role: 'system', content: system });
    const images = [];
    state.messages.forEach((m, i) => {
      const reply = state.messages[i + 1];
      // A question that failed with no answer (a refused picture, a busy server) is not asked
      // again: its picture would be refused again.
      if (m.role === 'user' && reply && reply.error && !reply.text) return;
      if (m.role === 'assistant') {
        if (m.text || !m.error) out.push({ role: 'assistant', content: m.text });
        return;
      }
      const content = [];
      for (const url of m.images || []) {
        const part = { type: 'image_url', image_url: { url } };
        images.push(part.image_url);
        content.push(part);
      }
      if (m.text) content.push({ type: 'text', text: m.text });
      out.push({ role: 'user', content });
    });
    return { out, images };
  }

  function requestBody(messages) {
    const s = state.settings;
    const body = { model: $('model').textContent || undefined, messages, stream: true };
    if (s.maxTokens) body.max_tokens = Number(s.maxTokens);
    if (s.temperature !== '') body.temperature = Number(s.temperature);
    if (s.topP !== '') body.top_p = Number(s.topP);
    if (s.seed !== '' && s.seed !== null) body.seed = Number(s.seed);
    return body;
  }

  // Reads an SSE stream of chat-completion chunks; calls onChunk with each parsed event.
  async function readEvents(res, onEvent) {
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf('\n\n')) >= 0) {
        const event = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        for (const line of event.split('\n')) {
          if (!line.startsWith('data:')) continue;  // SSE comments keep the line alive
          const data = line.slice(5).trim();
          if (data === '[DONE]') return;
          onEvent(JSON.parse(data));
        }
      }
    }
  }

  async function send() {
    const text = $('prompt').value.trim();
    if (state.controller || (!text && !state.attachments.length)) return;
    if (state.config.api_key_required && !apiKey()) {
      askKey();
      return;
    }
    notice('');
    state.messages.push({ role: 'user', text, images: state.attachments.slice() });
    state.attachments = [];
    $('prompt').value = '';
    renderAttachments();
    const answer = { role: 'assistant', text: '', images: [] };
    state.messages.push(answer);
    renderAll();
    saveChat();

    const controller = new AbortController();
    state.controller = controller;
    setBusy(true);
    const started = performance.now();
    let firstTokenMs;
    try {
      const { out, images } = requestMessages();
      out.pop();  // the empty answer being made
      if (await fitToBody(out, images)) notice('Pictures were scaled down to fit the server\'s --max-body.');
      const res = await fetch('/v1/chat/completions', {
        method: 'POST',
        headers: headers({ 'Content-Type': 'application/json' }),
        body: JSON.stringify(requestBody(out)),
        signal: controller.signal,
      });
      if (!res.ok) {
        if (res.status === 401) localStorage.removeItem(STORE_KEY);
        throw new Error(await errorMessage(res));
      }
      await readEvents(res, (event) => {
        if (event.error) throw new Error(`The answer failed: ${event.error.message}`);
        const choice = event.choices && event.choices[0];
        const piece = choice && choice.delta && choice.delta.content;
        if (piece) {
          if (firstTokenMs === undefined) firstTokenMs = performance.now() - started;
          answer.text += piece;
          scheduleAnswerUpdate(answer);
        }
        if (event.timings) {
          const t = event.timings;
          answer.timings = t;
          answer.stats = {
            tokensPerS: t.decode_tokens_per_s,
            ttftMs: firstTokenMs,
            visionMs: t.vision_ms,
            tiles: t.image_tiles,
            cacheHits: t.image_cache_hits,
          };
        }
      });
    } catch (e) {
      if (controller.signal.aborted) {
        answer.stopped = true;
      } else if (e instanceof TypeError) {
        answer.error = 'The server cannot be reached (is `smolvlm serve` still running?).';
      } else {
        answer.error = e.message;
      }
    } finally {
      state.controller = null;
      setBusy(false);
      if (state.messages.includes(answer)) {
        updateAnswer(answer);
        saveChat();
      }
      if (answer.error && answer.error.startsWith('The API key')) askKey();
    }
  }

  function stop() {
    if (state.controller) state.controller.abort();  // the server sees the hang-up, frees the slot
  }

  function setBusy(busy) {
    $('send').hidden = busy;
    $('stop').hidden = !busy;
    document.body.classList.toggle('busy', busy);
  }

  function newChat() {
    stop();
    state.messages = [];
    state.attachments = [];
    renderAttachments();
    saveChat();
    notice('');
    renderAll();
    $('prompt').focus();
  }

  function deleteChat() {
    stop();
    state.messages = [];
    localStorage.removeItem(STORE_CHAT);
    notice('The conversation was deleted from this browser.');
    renderAll();
  }

  // ---- settings and the API key --------------------------------------------------------------

  const settingFields = {
    maxTokens: 'max-tokens',
    temperature: 'temperature',
    topP: 'top-p',
    seed: 'seed',
    system: 'system-prompt',
  };

  function bindSettings() {
    for (const [name, id] of Object.entries(settingFields)) {
      const input = $(id);
      input.value = state.settings[name];
      input.addEventListener('input', () => {
        state.settings[name] = input.value;
        saveSettings();
      });
    }
    const toggle = (open) => {
      $('settings').hidden = !open;
      $('open-settings').setAttribute('aria-expanded', String(open));
      $('forget-key').hidden = !apiKey();
    };
    $('open-settings').addEventListener('click', () => toggle($('settings').hidden));
    $('close-settings').addEventListener('click', () => toggle(false));
    $('forget-key').addEventListener('click', () => {
      localStorage.removeItem(STORE_KEY);
      $('forget-key').hidden = true;
    });
  }

  function askKey() {
    const dialog = $('key-dialog');
    if (!dialog.open) dialog.showModal();
  }

  async function loadModelName() {
    try {
      const res = await fetch('/v1/models', { headers: headers() });
      if (res.status === 401) {
        askKey();
        return;
      }
      if (!res.ok) {
        notice(await errorMessage(res));
        return;
      }
      const body = await res.json();
      $('model').textContent = body.data && body.data[0] ? body.data[0].id : '';
    } catch {
      notice('The server cannot be reached (is `smolvlm serve` still running?).');
    }
  }

  async function loadConfig() {
    try {
      const res = await fetch('/webui-config.json');
      if (res.ok) state.config = { ...state.config, ...(await res.json()) };
    } catch {
      /* the defaults stand */
    }
  }

  // ---- wiring --------------------------------------------------------------------------------

  function bindInput() {
    $('composer').addEventListener('submit', (e) => {
      e.preventDefault();
      send();
    });
    $('stop').addEventListener('click', stop);
    $('new-chat').addEventListener('click', newChat);
    $('delete-chat').addEventListener('click', deleteChat);
    $('file-input').addEventListener('change', (e) => {
      addFiles(Array.from(e.target.files));
      e.target.value = '';
    });
    $('prompt').addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        send();
      }
    });
    document.addEventListener('keydown', (e) => {
      if (e.key === 'Escape' && state.controller) stop();
    });
    document.addEventListener('paste', (e) => {
      const files = Array.from(e.clipboardData ? e.clipboardData.files : []);
      if (files.length) {
        e.preventDefault();
        addFiles(files);
      }
    });
    let depth = 0;
    const zone = $('drop-zone');
    document.addEventListener('dragenter', (e) => {
      if (!e.dataTransfer || !Array.from(e.dataTransfer.types).includes('Files')) return;
      depth++;
      zone.hidden = false;
    });
    document.addEventListener('dragleave', () => {
      depth = Math.max(0, depth - 1);
      if (!depth) zone.hidden = true;
    });
    document.addEventListener('dragover', (e) => e.preventDefault());
    document.addEventListener('drop', (e) => {
      e.preventDefault();
      depth = 0;
      zone.hidden = true;
      if (e.dataTransfer && e.dataTransfer.files.length) addFiles(Array.from(e.dataTransfer.files));
    });
    $('key-form').addEventListener('submit', () => {
      const key = $('key-input').value.trim();
      if (key) localStorage.setItem(STORE_KEY, key);
      $('key-input').value = '';
      loadModelName();
    });
  }

  async function start() {
    state.settings = { ...DEFAULT_SETTINGS, ...load(STORE_SETTINGS, {}) };
    state.messages = load(STORE_CHAT, []).filter((m) => m && typeof m.text === 'string');
    bindSettings();
    bindInput();
    renderAll();
    await loadConfig();
    if (state.config.api_key_required && !apiKey()) askKey();
    else loadModelName();
    document.body.dataset.ready = 'true';  // for tests: handlers are in place
  }

  start();
})();

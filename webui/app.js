// The chat page of `smolvlm serve`: plain JavaScript, no framework, no network but the server's
// own API. Model and user text only ever reach the page as text nodes (webui/markdown.js).
'use strict';

(() => {
  const STORE_SETTINGS = 'smolvlm.settings.v1';
  const STORE_KEY = 'smolvlm.apiKey';
  const OLD_STORE_CHAT = 'smolvlm.chat.v1';  // the single conversation of the first page
  // Conversations with their pictures may take this much of the browser's storage (a picture is a
  // few MB); a smaller bound may be set in localStorage (a phone with little room, the tests).
  const STORE_LIMIT = Number(localStorage.getItem('smolvlm.storageLimit')) || 200 << 20;
  const DEFAULT_SETTINGS = {
    maxTokens: 512, temperature: 0, topP: 1, topK: '', repeatPenalty: '', seed: '', system: '', schema: '',
  };
  // Regenerate samples: at the greedy setting it would give the same answer again.
  const REGENERATE_TEMPERATURE = 0.7;
  const CONTINUE_PROMPT = 'Continue your previous answer exactly where it stopped, without repeating any of it.';
  const { renderMarkdown } = window.smolvlmMarkdown;

  const $ = (id) => document.getElementById(id);
  const el = (tag, className, text) => {
    const e = document.createElement(tag);
    if (className) e.className = className;
    if (text !== undefined) e.textContent = text;
    return e;
  };
  // A button; `label` is its accessible name where it shows a symbol, its tooltip where it shows
  // words (the name must contain the words it shows).
  const button = (text, className, onClick, label) => {
    const b = el('button', className, text);
    b.type = 'button';
    if (label && /^\w/.test(text)) b.title = label;
    else if (label) b.setAttribute('aria-label', label);
    b.addEventListener('click', onClick);
    return b;
  };
  const newId = () => `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
  const short = (text, n = 40) => (text.length > n ? `${text.slice(0, n - 1)}…` : text);
  const megabytes = (bytes) => `${(bytes / (1 << 20)).toFixed(bytes < 10 << 20 ? 1 : 0)} MB`;

  const freshConversation = () => ({ id: newId(), title: '', created: Date.now(), updated: Date.now(), rev: 0, messages: [] });

  const state = {
    // {role: 'user'|'assistant', text, images: [dataURI], stats, timings, error, stopped, finish}
    conv: freshConversation(),
    list: [],              // {id, title, updated, bytes, rev}, newest first
    attachments: [],       // data: URIs waiting to be sent
    settings: { ...DEFAULT_SETTINGS },
    config: { max_body_bytes: 20 << 20, api_key_required: false },
    controller: null,      // the AbortController of the answer being streamed
    streaming: null,       // the answer being streamed
  };

  // ---- conversations in IndexedDB ----------------------------------------------------------------
  // Two stores written together: "conversations" (whole, pictures included) and "index" (title,
  // time, size, revision) so that the list never reads the pictures. Each save checks the revision
  // it started from: a conversation another tab changed meanwhile is not overwritten, the save
  // becomes a new conversation. Tabs tell each other of changes on a BroadcastChannel.

  let dbPromise = null;
  function openDb() {
    dbPromise ||= new Promise((resolve, reject) => {
      const req = indexedDB.open('smolvlm', 1);
      req.onupgradeneeded = () => {
        req.result.createObjectStore('conversations', { keyPath: 'id' });
        req.result.createObjectStore('index', { keyPath: 'id' });
      };
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
    return dbPromise;
  }

  async function transaction(mode, work) {
    const db = await openDb();
    return new Promise((resolve, reject) => {
      const tx = db.transaction(['conversations', 'index'], mode);
      let result;
      tx.oncomplete = () => resolve(result);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error || new Error('aborted'));
      work(tx.objectStore('conversations'), tx.objectStore('index'), (r) => {
        result = r;
      });
    });
  }

  const channel = 'BroadcastChannel' in window ? new BroadcastChannel('smolvlm.conversations') : null;

  const sizeOf = (conv) => JSON.stringify(conv.messages).length + conv.title.length + 200;

  function titleOf(conv) {
    if (conv.title) return conv.title;
    const first = conv.messages.find((m) => m.role === 'user');
    if (!first) return 'New chat';
    return short(first.text.replace(/\s+/g, ' ').trim() || (first.images.length ? 'Pictures' : 'New chat'));
  }

  // Saves state.conv; resolves to what happened: {saved, forked, droppedPictures, full}.
  function saveConversation(conv = state.conv) {
    if (!conv.messages.length) return Promise.resolve({ saved: false });
    const outcome = { saved: false, forked: false, droppedPictures: 0, full: false };
    return transaction('readwrite', (whole, index, done) => {
      const all = index.getAll();
      all.onsuccess = () => {
        const mine = all.result.find((e) => e.id === conv.id);
        if (mine && mine.rev !== conv.rev) {
          // Another tab saved this conversation since this tab read it: keep both.
          conv.id = newId();
          conv.title = `${titleOf(conv)} (copy)`;
          outcome.forked = true;
        } else if (!mine && conv.rev > 0) {
          conv.rev = 0;  // deleted elsewhere: saved afresh
        }
        const others = all.result.filter((e) => e.id !== conv.id).reduce((n, e) => n + e.bytes, 0);
        let record = { id: conv.id, title: conv.title, created: conv.created, updated: Date.now(), rev: conv.rev + 1, messages: conv.messages };
        let bytes = sizeOf(record);
        if (others + bytes > STORE_LIMIT) {
          // Full: the text is kept, pictures that do not fit are not (each message says so).
          outcome.full = true;
          record = { ...record, messages: conv.messages.map((m) => ({ ...m })) };
          for (const m of record.messages.slice().reverse()) {
            if (others + sizeOf(record) <= STORE_LIMIT) break;
            if (m.images && m.images.length) {
              m.droppedImages = (m.droppedImages || 0) + m.images.length;
              outcome.droppedPictures += m.images.length;
              m.images = [];
            }
          }
          bytes = sizeOf(record);
          if (others + bytes > STORE_LIMIT) return done(outcome);
        }
        whole.put(record);
        index.put({ id: record.id, title: record.title, updated: record.updated, bytes, rev: record.rev, name: titleOf(record) });
        conv.rev = record.rev;
        conv.updated = record.updated;
        outcome.saved = true;
        done(outcome);
      };
    }).then((result) => {
      if (channel && result.saved) channel.postMessage({ type: 'saved', id: conv.id, rev: conv.rev });
      return result;
    });
  }

  async function save() {
    let outcome;
    try {
      outcome = await saveConversation();
    } catch (e) {
      notice(`This conversation could not be kept in the browser (${e.message || e.name}).`);
      return;
    }
    if (outcome.forked) notice('Another tab changed this conversation meanwhile: this version is kept as a new conversation.');
    if (outcome.full) {
      notice(outcome.saved
        ? `The browser's room for conversations is full (${megabytes(STORE_LIMIT)}): ${outcome.droppedPictures} picture(s) of this conversation are not kept after a reload. Delete old conversations to make room.`
        : `The browser's room for conversations is full (${megabytes(STORE_LIMIT)}): this conversation is not kept. Delete old conversations to make room.`);
    }
    history.replaceState(null, '', `#${state.conv.id}`);
    document.body.dataset.conversation = state.conv.id;  // a new one where it became a copy
    await refreshList();
  }

  async function loadConversation(id) {
    return transaction('readonly', (whole, _index, done) => {
      const req = whole.get(id);
      req.onsuccess = () => done(req.result || null);
    });
  }

  async function refreshList() {
    try {
      state.list = await transaction('readonly', (_whole, index, done) => {
        const req = index.getAll();
        req.onsuccess = () => done(req.result.sort((a, b) => b.updated - a.updated));
      });
    } catch {
      state.list = [];
    }
    renderList();
  }

  async function deleteConversation(id) {
    const record = await loadConversation(id);
    await transaction('readwrite', (whole, index) => {
      whole.delete(id);
      index.delete(id);
    });
    if (channel) channel.postMessage({ type: 'deleted', id });
    if (state.conv.id === id) {
      stop();
      state.conv = freshConversation();
      history.replaceState(null, '', '#new');
      renderAll();
    }
    await refreshList();
    if (record) {
      toast(`Deleted “${titleOf(record)}”.`, async () => {
        record.rev = 0;
        await saveConversation(record);
        await refreshList();
      });
      // The × that had focus is gone with its entry: focus goes to Undo rather than nowhere.
      if (!document.activeElement || document.activeElement === document.body) $('toast-undo').focus();
    }
  }

  async function renameConversation(id, title) {
    const conv = state.conv.id === id ? state.conv : await loadConversation(id);
    if (!conv) return;
    conv.title = title.trim();
    await saveConversation(conv);
    await refreshList();
  }

  async function openConversation(id) {
    if (state.conv.id === id) return;
    stop();
    const record = await loadConversation(id);
    if (!record) return;
    state.conv = record;
    history.replaceState(null, '', `#${id}`);
    notice('');
    renderAll();
    renderList();
    closeSidebar();
    $('prompt').focus();
  }

  // ---- the list of conversations -----------------------------------------------------------------

  function renderList() {
    const list = $('conversation-list');
    list.replaceChildren();
    for (const entry of state.list) {
      const li = el('li', 'conversation');
      const name = entry.title || entry.name || 'New chat';
      const open = button(name, 'conv-open', () => openConversation(entry.id));
      open.title = `${name} · ${new Date(entry.updated).toLocaleString()}`;
      if (entry.id === state.conv.id) open.setAttribute('aria-current', 'page');
      const rename = button('✎', 'conv-rename icon', () => startRename(li, entry, name), `Rename “${name}”`);
      const remove = button('×', 'conv-delete icon', () => deleteConversation(entry.id), `Delete “${name}”`);
      li.append(open, rename, remove);
      list.append(li);
    }
    const used = state.list.reduce((n, e) => n + e.bytes, 0);
    $('storage-use').textContent = state.list.length
      ? `${state.list.length} conversation${state.list.length === 1 ? '' : 's'}, ${megabytes(used)} of ${megabytes(STORE_LIMIT)}`
      : 'No conversations kept yet.';
  }

  function startRename(li, entry, name) {
    const input = el('input', 'conv-name');
    input.value = name;
    input.setAttribute('aria-label', 'New name of the conversation');
    let finished = false;
    const finish = (keep) => {
      if (finished) return;
      finished = true;
      if (keep && input.value.trim()) renameConversation(entry.id, input.value);
      else renderList();
    };
    input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') finish(true);
      if (e.key === 'Escape') {
        e.stopPropagation();
        finish(false);
      }
    });
    input.addEventListener('blur', () => finish(true));
    li.replaceChildren(input);
    input.focus();
    input.select();
  }

  // ---- settings (kept in localStorage) -----------------------------------------------------------

  function loadSettings() {
    try {
      return { ...DEFAULT_SETTINGS, ...JSON.parse(localStorage.getItem(STORE_SETTINGS) || '{}') };
    } catch {
      return { ...DEFAULT_SETTINGS };
    }
  }

  const apiKey = () => localStorage.getItem(STORE_KEY) || '';

  // Each field: its element id, and what a valid value is (empty means the server's default).
  const numberRule = (what, { min, max, integer, above }) => (v) => {
    if (v === '' || v === null) return '';
    const n = Number(v);
    if (!Number.isFinite(n)) return `${what} must be a number.`;
    if (integer && !Number.isInteger(n)) return `${what} must be a whole number.`;
    if (above !== undefined && n <= above) return `${what} must be more than ${above}.`;
    if (min !== undefined && n < min) return `${what} must be at least ${min}.`;
    if (max !== undefined && n > max) return `${what} must be at most ${max}.`;
    return '';
  };
  const SETTINGS = {
    maxTokens: ['max-tokens', numberRule('Max tokens', { min: 1, max: 1 << 20, integer: true })],
    temperature: ['temperature', numberRule('Temperature', { min: 0, max: 2 })],
    topP: ['top-p', numberRule('Top-p', { above: 0, max: 1 })],
    topK: ['top-k', numberRule('Top-k', { min: 0, max: 1 << 20, integer: true })],
    repeatPenalty: ['repeat-penalty', numberRule('Repeat penalty', { min: 0.01, max: 100 })],
    seed: ['seed', numberRule('Seed', { min: 0, max: Number.MAX_SAFE_INTEGER, integer: true })],
    system: ['system-prompt', () => ''],
    schema: ['json-schema', (v) => {
      if (!String(v).trim()) return '';
      try {
        const schema = JSON.parse(v);
        if (schema === null || typeof schema !== 'object' || Array.isArray(schema)) return 'The schema must be a JSON object ({…}).';
      } catch (e) {
        return `Not valid JSON: ${e.message}`;
      }
      return '';
    }],
  };

  // Shows each field's problem beside it; returns the first problem or ''.
  function validateSettings() {
    let first = '';
    for (const [name, [id, rule]] of Object.entries(SETTINGS)) {
      const problem = rule(state.settings[name]);
      const input = $(id);
      const error = $(`${id}-error`);
      if (problem) input.setAttribute('aria-invalid', 'true');
      else input.removeAttribute('aria-invalid');
      if (error) error.textContent = problem;
      if (problem && !first) first = problem;
    }
    return first;
  }

  // ---- the conversation on screen ----------------------------------------------------------------

  function statsLine(stats) {
    const parts = [];
    if (stats.tokensPerS !== undefined) parts.push(`${stats.tokensPerS.toFixed(1)} tokens/s`);
    if (stats.ttftMs !== undefined) parts.push(`first token ${Math.round(stats.ttftMs)} ms`);
    if (stats.visionMs !== undefined && stats.tiles > 0) parts.push(`vision ${Math.round(stats.visionMs)} ms`);
    if (stats.tiles > 0) parts.push(`${stats.tiles} tile${stats.tiles === 1 ? '' : 's'}`);
    if (stats.cacheHits > 0) parts.push('picture from cache');
    return parts.join(' · ');
  }

  // Copies text; the asynchronous clipboard needs a secure context (a board reached over plain HTTP is not one),
  // so elsewhere a selected, hidden text box is copied the old way.
  async function copyText(text, feedbackButton) {
    let ok = false;
    try {
      if (navigator.clipboard && window.isSecureContext) {
        await navigator.clipboard.writeText(text);
        ok = true;
      }
    } catch {
      /* the fallback below */
    }
    if (!ok) {
      const area = el('textarea', 'sr');
      area.value = text;
      document.body.append(area);
      area.select();
      ok = document.execCommand('copy');
      area.remove();
    }
    if (feedbackButton && feedbackButton.classList.contains('code-copy')) {
      feedbackButton.dataset.done = ok ? 'Copied' : 'Copy failed';
      setTimeout(() => delete feedbackButton.dataset.done, 1500);
    } else if (feedbackButton) {
      const label = feedbackButton.textContent;
      feedbackButton.textContent = ok ? 'Copied' : 'Copy failed';
      setTimeout(() => {
        feedbackButton.textContent = label;
      }, 1500);
    }
  }

  function renderPictures(m, box) {
    const pics = el('div', 'pics');
    m.images.forEach((src, k) => {
      const open = el('button', 'pic');
      open.type = 'button';
      const refused = m.refused && m.refused.includes(k);
      open.setAttribute('aria-label', `Picture ${k + 1}${refused ? ' (refused by the server)' : ''}: show it larger`);
      if (refused) open.classList.add('refused');
      const img = el('img');
      img.src = src;
      img.alt = '';
      img.addEventListener('error', () => img.replaceWith(el('span', 'no-preview', 'no preview')));
      open.append(img);
      open.addEventListener('click', () => showPicture(src, k + 1));
      pics.append(open);
    });
    box.append(pics);
  }

  function showPicture(src, n) {
    $('viewer-img').src = src;
    $('viewer-img').alt = `Picture ${n}, full size`;
    openViewer(document.activeElement);
    $('viewer-close').focus();
  }

  function renderMessage(m, index) {
    const mine = m.role === 'user';
    const box = el('article', `msg ${m.role}`);
    box.dataset.index = String(index);
    box.setAttribute('aria-label', mine ? 'You' : 'Assistant');
    box.append(el('span', 'sr', mine ? 'You said:' : 'Assistant said:'));
    if (m.images && m.images.length) renderPictures(m, box);
    if (m.droppedImages) {
      box.append(el('p', 'dropped', `${m.droppedImages} picture${m.droppedImages === 1 ? ' was' : 's were'} not kept: the browser's room for conversations was full. Follow-up questions go without ${m.droppedImages === 1 ? 'it' : 'them'}.`));
    }
    if (editing.has(m)) {
      box.append(editor(m, index));
      return box;
    }
    const body = el('div', 'text');
    if (mine) body.textContent = m.text;
    else renderMarkdown(body, m.text);
    if (!mine) addCodeCopyButtons(body);
    box.append(body);
    const streaming = state.streaming === m;
    if (streaming && !m.text) box.append(el('p', 'thinking', 'thinking…'));
    if (m.stopped) box.append(el('p', 'meta', 'stopped'));
    if (m.finish === 'length' && !streaming) box.append(el('p', 'meta length', 'Stopped at the length limit (Max tokens in Settings).'));
    if (m.error) box.append(el('p', 'error', m.error));
    if (m.stats) box.append(el('p', 'stats', statsLine(m.stats)));
    if (!streaming && (m.text || mine)) box.append(messageActions(m, index, body));
    return box;
  }

  function addCodeCopyButtons(body) {
    for (const pre of body.querySelectorAll('pre')) {
      const code = pre.querySelector('code');
      // Its label comes from the style sheet, so that the answer's text (Copy text) leaves it out.
      pre.append(button('', 'code-copy', (e) => copyText(code.textContent, e.currentTarget), 'Copy the code'));
    }
  }

  function messageActions(m, index, body) {
    const row = el('div', 'msg-actions');
    const last = index === state.conv.messages.length - 1;
    if (m.role === 'user') {
      row.append(button('Copy', 'act-copy', (e) => copyText(m.text, e.currentTarget), 'Copy your question'));
      row.append(button('Edit', 'act-edit', () => {
        if (state.controller) return;
        editing.add(m);
        rerender(index, true);
      }, 'Edit your question and send it again'));
    } else {
      row.append(button('Copy', 'act-copy', (e) => copyText(m.text, e.currentTarget), 'Copy the answer as Markdown'));
      row.append(button('Copy text', 'act-copy-text', (e) => copyText(body.innerText, e.currentTarget), 'Copy the answer as plain text'));
      row.append(button('Regenerate', 'act-regenerate', () => regenerate(index), 'Regenerate this answer'));
      if (m.finish === 'length' && last) row.append(button('Continue', 'act-continue', () => continueAnswer(m), 'Continue this answer'));
    }
    return row;
  }

  function editor(m, index) {
    const form = el('form', 'edit');
    const area = el('textarea', 'edit-text');
    area.value = m.text;
    area.setAttribute('aria-label', 'Edit your question');
    const cancel = button('Cancel', 'edit-cancel', () => {
      editing.delete(m);
      rerender(index);
    });
    const submit = el('button', 'edit-send', 'Send');
    submit.type = 'submit';
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      editing.delete(m);
      resendEdited(index, area.value.trim());
    });
    area.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        form.requestSubmit();
      }
      if (e.key === 'Escape') cancel.click();
    });
    form.append(area, el('div', 'msg-actions'));
    form.lastChild.append(submit, cancel);
    requestAnimationFrame(() => {
      area.focus();
      growTextArea(area);
    });
    area.addEventListener('input', () => growTextArea(area));
    return form;
  }

  const editing = new WeakSet();  // questions being edited

  // Scrolling follows the stream only while the reader is at the bottom.
  let following = true;
  const nearBottom = (list) => list.scrollHeight - list.scrollTop - list.clientHeight < 48;

  function renderAll() {
    const list = $('messages');
    list.replaceChildren();
    if (!state.conv.messages.length) list.append($('empty-template').content.cloneNode(true));
    state.conv.messages.forEach((m, i) => list.append(renderMessage(m, i)));
    list.scrollTop = list.scrollHeight;
    following = true;
    document.body.dataset.conversation = state.conv.id;
  }

  function rerender(index, focusEditor) {
    const list = $('messages');
    const old = list.querySelector(`article[data-index="${index}"]`);
    const m = state.conv.messages[index];
    if (!old || !m) return;
    const stick = following;
    old.replaceWith(renderMessage(m, index));
    if (stick && !focusEditor) list.scrollTop = list.scrollHeight;
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

  // Redraws the answer being made, unless another conversation is on screen meanwhile.
  function updateAnswer(answer) {
    if (answerFrame) {
      cancelAnimationFrame(answerFrame);
      answerFrame = 0;
    }
    const index = state.conv.messages.indexOf(answer);
    if (index >= 0) rerender(index);
  }

  function notice(text) {
    const n = $('notice');
    n.textContent = text;
    n.hidden = !text;
  }

  let toastTimer = 0;
  let toastUndo = null;
  function toast(text, undo) {
    $('toast-text').textContent = text;
    $('toast').hidden = false;
    toastUndo = undo;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => {
      $('toast').hidden = true;
      toastUndo = null;
    }, 10000);
  }

  function announce(text) {
    $('announcer').textContent = text;
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
      const remove = button('×', 'remove', () => {
        state.attachments.splice(i, 1);
        renderAttachments();
        $('prompt').focus();
      }, `Remove picture ${i + 1}`);
      remove.title = 'Remove this picture';
      item.append(img, remove);
      box.append(item);
    });
  }

  function growTextArea(area) {
    area.style.height = 'auto';
    area.style.height = `${area.scrollHeight + 2}px`;
  }

  // ---- pictures ----------------------------------------------------------------------------------

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

  // ---- talking to the server ---------------------------------------------------------------------

  function headers(extra, key = apiKey()) {
    const h = { ...extra };
    if (key) h.Authorization = `Bearer ${key}`;
    return h;
  }

  // The server names what it refused by a JSON path into the request ("messages[2].content[0]
  // .image_url.url: not a picture..."): said here in words, with the picture marked.
  function refusalInWords(detail, sources) {
    const m = /^messages\[(\d+)\]\.content\[(\d+)\](?:\.[\w.]+)?:\s*([\s\S]*)$/.exec(detail);
    if (m) {
      const source = sources[Number(m[1])];
      const part = source && source.parts[Number(m[2])];
      if (part && part.picture !== undefined) {
        source.message.refused = [...new Set([...(source.message.refused || []), part.picture])];
        const question = source.message.text ? ` of the question “${short(source.message.text, 30)}”` : '';
        return `The server refused picture ${part.picture + 1}${question}: ${m[3].replace(/\.$/, '')}.`;
      }
      if (source) return `The server refused a message${source.message.text ? ` (“${short(source.message.text, 30)}”)` : ''}: ${m[3].replace(/\.$/, '')}.`;
    }
    const param = /^([a-z_]+(?:\.[a-z_]+)*):\s*([\s\S]*)$/.exec(detail);
    if (param) {
      const names = { max_tokens: 'Max tokens', temperature: 'Temperature', top_p: 'Top-p', top_k: 'Top-k',
        repeat_penalty: 'Repeat penalty', seed: 'Seed', response_format: 'JSON schema' };
      const name = names[param[1].split('.')[0]];
      if (name) return `The server refused the setting ${name}: ${param[2].replace(/\.$/, '')}.`;
    }
    return `The server refused the request${detail ? `: ${detail.replace(/\.$/, '')}` : ''}.`;
  }

  async function errorMessage(res, sources = []) {
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
        return refusalInWords(detail, sources);
      case 401:
        return 'The server refused the API key.';
      case 413:
        return 'The pictures are too large for the server (--max-body).';
      case 503:
        return `The server is not ready${detail ? `: ${detail}` : ''}.`;
      default:
        return `The server answered HTTP ${res.status}${detail ? `: ${detail}` : ''}.`;
    }
  }

  // The request's messages for the answer at `upTo` (exclusive), and where each came from.
  function requestMessages(upTo) {
    const out = [];
    const sources = [];  // by request index: {message, parts: [{picture}]}
    const images = [];
    const system = String(state.settings.system || '').trim();
    if (system) out.push({ role: 'system', content: system });
    const messages = state.conv.messages.slice(0, upTo);
    let dropped = 0;
    messages.forEach((m, i) => {
      const reply = messages[i + 1];
      // A question that failed with no answer (a refused picture, a busy server) is not asked
      // again: its picture would be refused again.
      if (m.role === 'user' && reply && reply.error && !reply.text) return;
      if (m.role === 'assistant') {
        if (m.text || !m.error) out.push({ role: 'assistant', content: m.text });
        return;
      }
      dropped += m.droppedImages || 0;
      const content = [];
      const parts = [];
      (m.images || []).forEach((url, k) => {
        const part = { type: 'image_url', image_url: { url } };
        images.push(part.image_url);
        content.push(part);
        parts.push({ picture: k });
      });
      if (m.text) {
        content.push({ type: 'text', text: m.text });
        parts.push({});
      }
      sources[out.length] = { message: m, parts };
      out.push({ role: 'user', content });
    });
    return { out, images, sources, dropped };
  }

  function requestBody(messages, { regenerating = false } = {}) {
    const s = state.settings;
    const body = { model: $('model').textContent || undefined, messages, stream: true };
    const set = (key, value, integer) => {
      if (value !== '' && value !== null && value !== undefined) body[key] = integer ? Math.round(Number(value)) : Number(value);
    };
    set('max_tokens', s.maxTokens, true);
    set('temperature', s.temperature);
    set('top_p', s.topP);
    set('top_k', s.topK, true);
    set('repeat_penalty', s.repeatPenalty);
    set('seed', s.seed, true);
    if (regenerating) {
      delete body.seed;  // a new answer each time
      if (!(body.temperature > 0)) body.temperature = REGENERATE_TEMPERATURE;
    }
    if (String(s.schema || '').trim()) {
      body.response_format = { type: 'json_schema', json_schema: { name: 'answer', strict: true, schema: JSON.parse(s.schema) } };
    }
    return body;
  }

  // Reads an SSE stream of chat-completion chunks; calls onEvent with each parsed event.
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

  // Streams an answer into `answer` (a message of state.conv): a new one, a regenerated one, or
  // the rest of one cut by the token limit (`continuing`).
  async function generate(answer, { continuing = false, regenerating = false } = {}) {
    const problem = validateSettings();
    if (problem) {
      answer.error = `Settings: ${problem}`;
      renderAll();
      return;
    }
    if (state.config.api_key_required && !apiKey()) {
      answer.error = 'This server needs an API key.';
      renderAll();
      askKey();
      return;
    }
    const conv = state.conv;
    const controller = new AbortController();
    state.controller = controller;
    state.streaming = answer;
    const upTo = conv.messages.indexOf(answer) + (continuing ? 1 : 0);
    const kept = answer.text;
    Object.assign(answer, { error: undefined, stopped: undefined, finish: undefined, stats: undefined, timings: undefined });
    setBusy(true);
    renderAll();
    const started = performance.now();
    let firstTokenMs;
    let sources = [];
    try {
      const request = requestMessages(upTo);
      sources = request.sources;
      if (continuing) request.out.push({ role: 'user', content: [{ type: 'text', text: CONTINUE_PROMPT }] });
      if (request.dropped) notice(`${request.dropped} earlier picture(s) of this conversation were not kept in the browser: the model does not see them.`);
      if (await fitToBody(request.out, request.images)) notice('Pictures were scaled down to fit the server\'s --max-body.');
      const res = await fetch('/v1/chat/completions', {
        method: 'POST',
        headers: headers({ 'Content-Type': 'application/json' }),
        body: JSON.stringify(requestBody(request.out, { regenerating })),
        signal: controller.signal,
      });
      if (!res.ok) {
        if (res.status === 401) localStorage.removeItem(STORE_KEY);
        throw new Error(await errorMessage(res, sources));
      }
      if (continuing && kept && !/\s$/.test(kept)) answer.text = `${kept} `;
      await readEvents(res, (event) => {
        if (event.error) throw new Error(`The answer failed: ${event.error.message}`);
        const choice = event.choices && event.choices[0];
        const piece = choice && choice.delta && choice.delta.content;
        if (piece) {
          if (firstTokenMs === undefined) firstTokenMs = performance.now() - started;
          answer.text += piece;
          scheduleAnswerUpdate(answer);
        }
        if (choice && choice.finish_reason) answer.finish = choice.finish_reason;
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
      if (continuing && !answer.text.trim()) answer.text = kept;
    } finally {
      state.controller = null;
      state.streaming = null;
      setBusy(false);
      if (state.conv === conv) {
        // Redrawn whole (a refused picture is marked in its question), the reader's place kept.
        const list = $('messages');
        const stick = following;
        const top = list.scrollTop;
        updateAnswer(answer);
        renderAll();
        if (!stick) {
          list.scrollTop = top;
          following = false;
        }
      }
      if (conv.messages.includes(answer)) {
        if (state.conv === conv) await save();
        else await saveConversation(conv).then(refreshList);
      }
      // One announcement for screen readers per answer (not one per streamed piece).
      if (answer.error) announce(`Error: ${answer.error}`);
      else if (answer.stopped) announce('The answer was stopped.');
      else announce(`Answer: ${short(answer.text, 400)}${answer.finish === 'length' ? ' (stopped at the length limit)' : ''}`);
      if (answer.error && answer.error.startsWith('The server refused the API key')) askKey('The server refused the saved API key. Enter the right one.');
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
    state.conv.messages.push({ role: 'user', text, images: state.attachments.slice() });
    state.attachments = [];
    $('prompt').value = '';
    growTextArea($('prompt'));
    renderAttachments();
    const answer = { role: 'assistant', text: '', images: [] };
    state.conv.messages.push(answer);
    await generate(answer);
  }

  function regenerate(index) {
    if (state.controller) return;
    const answer = { role: 'assistant', text: '', images: [] };
    state.conv.messages.splice(index, state.conv.messages.length - index, answer);
    notice('');
    generate(answer, { regenerating: true });
  }

  function continueAnswer(answer) {
    if (state.controller) return;
    notice('');
    generate(answer, { continuing: true });
  }

  function resendEdited(index, text) {
    if (state.controller) return;
    const question = state.conv.messages[index];
    if (!text && !(question.images || []).length) {
      rerender(index);
      return;
    }
    question.text = text;
    delete question.refused;
    const answer = { role: 'assistant', text: '', images: [] };
    state.conv.messages.splice(index + 1, state.conv.messages.length, answer);
    notice('');
    generate(answer);
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
    state.conv = freshConversation();
    state.attachments = [];
    renderAttachments();
    history.replaceState(null, '', '#new');  // a reload keeps the empty conversation, not the latest one
    notice('');
    renderAll();
    renderList();
    $('prompt').focus();
  }

  function deleteChat() {
    if (state.conv.messages.length && state.list.some((e) => e.id === state.conv.id)) {
      deleteConversation(state.conv.id);
    } else {
      newChat();
    }
  }

  // ---- dialogs: settings, API key, picture viewer --------------------------------------------------

  // Modal dialogs keep focus inside (Tab wraps), close on Esc and give focus back to the control
  // that opened them.
  function modal(dialog, opener) {
    dialog.addEventListener('keydown', (e) => {
      if (e.key !== 'Tab') return;
      const focusable = Array.from(dialog.querySelectorAll('button, input, textarea, select, a[href]')).filter((x) => !x.hidden && !x.disabled && x.offsetParent !== null);
      if (!focusable.length) return;
      const first = focusable[0];
      const last = focusable[focusable.length - 1];
      if (e.shiftKey && document.activeElement === first) {
        e.preventDefault();
        last.focus();
      } else if (!e.shiftKey && document.activeElement === last) {
        e.preventDefault();
        first.focus();
      }
    });
    let returnTo = null;
    dialog.addEventListener('close', () => {
      const target = returnTo || opener;
      returnTo = null;
      if (target && target.isConnected) target.focus();
    });
    return (from) => {
      returnTo = from || document.activeElement;
      if (!dialog.open) dialog.showModal();
    };
  }

  let openSettings;
  let openViewer;
  function bindSettings() {
    for (const [name, [id]] of Object.entries(SETTINGS)) {
      const input = $(id);
      input.value = state.settings[name];
      input.addEventListener('input', () => {
        state.settings[name] = input.value;
        localStorage.setItem(STORE_SETTINGS, JSON.stringify(state.settings));
        validateSettings();
      });
    }
    validateSettings();
    openSettings = modal($('settings'), $('open-settings'));
    $('open-settings').addEventListener('click', () => {
      $('forget-key').hidden = !apiKey();
      openSettings($('open-settings'));
      $('max-tokens').focus();
    });
    $('settings').addEventListener('click', (e) => {
      if (e.target === $('settings')) $('settings').close();  // a click on the backdrop
    });
    $('forget-key').addEventListener('click', () => {
      localStorage.removeItem(STORE_KEY);
      $('forget-key').hidden = true;
      $('close-settings').focus();
    });
    openViewer = modal($('viewer'));
    $('viewer').addEventListener('click', (e) => {
      if (e.target === $('viewer')) $('viewer').close();  // a click beside the picture
    });
  }

  let openKeyDialog;
  function askKey(reason = '') {
    $('key-error').textContent = reason;
    openKeyDialog(document.activeElement);
    $('key-input').focus();
  }

  // Checks a key against /v1/models before keeping it: a wrong key is said to be wrong.
  async function submitKey() {
    const key = $('key-input').value.trim();
    if (!key) {
      $('key-error').textContent = 'Enter the key the server was started with (--api-key).';
      return;
    }
    $('key-error').textContent = 'Checking…';
    let res;
    try {
      res = await fetch('/v1/models', { headers: headers({}, key) });
    } catch {
      res = null;  // unreachable: kept, the next request says so
    }
    if (res && res.status === 401) {
      $('key-error').textContent = 'The server refused this key: it is not the one the server was started with (--api-key). Check it and try again.';
      $('key-input').select();
      return;
    }
    localStorage.setItem(STORE_KEY, key);
    $('key-input').value = '';
    $('key-error').textContent = '';
    $('key-dialog').close();
    if (res && res.ok) showModelName(await res.json());
    else loadModelName();
  }

  function showModelName(body) {
    $('model').textContent = body.data && body.data[0] ? body.data[0].id : '';
  }

  async function loadModelName() {
    try {
      const res = await fetch('/v1/models', { headers: headers() });
      if (res.status === 401) {
        const had = apiKey();
        localStorage.removeItem(STORE_KEY);
        askKey(had ? 'The server refused the saved API key. Enter the right one.' : '');
        return;
      }
      if (!res.ok) {
        notice(await errorMessage(res));
        return;
      }
      showModelName(await res.json());
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

  // ---- the list on narrow screens ----------------------------------------------------------------

  function closeSidebar() {
    if (!document.body.classList.contains('sidebar-open')) return;
    const hadFocus = $('sidebar').contains(document.activeElement);
    document.body.classList.remove('sidebar-open');
    $('toggle-sidebar').setAttribute('aria-expanded', 'false');
    if (hadFocus) $('toggle-sidebar').focus();
  }

  // ---- wiring ------------------------------------------------------------------------------------

  function bindInput() {
    $('composer').addEventListener('submit', (e) => {
      e.preventDefault();
      send();
    });
    $('stop').addEventListener('click', stop);
    $('new-chat').addEventListener('click', newChat);
    $('delete-chat').addEventListener('click', deleteChat);
    $('toggle-sidebar').addEventListener('click', () => {
      const open = !document.body.classList.contains('sidebar-open');
      document.body.classList.toggle('sidebar-open', open);
      $('toggle-sidebar').setAttribute('aria-expanded', String(open));
      if (open) {
        const current = document.querySelector('.conv-open[aria-current]') || document.querySelector('.conv-open');
        if (current) current.focus();
      }
    });
    $('toast-undo').addEventListener('click', async () => {
      const undo = toastUndo;
      $('toast').hidden = true;
      toastUndo = null;
      if (undo) await undo();
    });
    $('file-input').addEventListener('change', (e) => {
      addFiles(Array.from(e.target.files));
      e.target.value = '';
    });
    const prompt = $('prompt');
    prompt.addEventListener('input', () => growTextArea(prompt));
    prompt.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        send();
      }
    });
    // On a narrow screen the list lies over the conversation: a touch beside it closes it.
    document.querySelector('.column').addEventListener('click', closeSidebar);
    const list = $('messages');
    list.addEventListener('scroll', () => {
      following = nearBottom(list);
    }, { passive: true });
    document.addEventListener('keydown', (e) => {
      if (e.key !== 'Escape' || document.querySelector('dialog[open]')) return;
      if (state.controller) stop();
      else closeSidebar();
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
    openKeyDialog = modal($('key-dialog'), $('prompt'));
    $('key-form').addEventListener('submit', (e) => {
      e.preventDefault();
      submitKey();
    });
    // Without a key the page cannot work: Esc does not dismiss the dialog while none is kept.
    $('key-dialog').addEventListener('cancel', (e) => {
      if (!apiKey()) e.preventDefault();
    });
  }

  // Another tab saved or deleted a conversation: the list follows, and so does this tab's view of
  // the same conversation when it is not in the middle of an answer or an edit.
  function bindChannel() {
    if (!channel) return;
    channel.addEventListener('message', async (e) => {
      const msg = e.data || {};
      await refreshList();
      if (msg.id !== state.conv.id || state.controller) return;
      if (msg.type === 'saved' && msg.rev > state.conv.rev && !state.conv.messages.some((m) => editing.has(m))) {
        const record = await loadConversation(msg.id);
        if (record && !state.controller) {
          state.conv = record;
          renderAll();
        }
      } else if (msg.type === 'deleted') {
        state.conv.rev = 0;  // kept on screen; saved afresh if continued
      }
    });
  }

  // The first page kept one conversation in localStorage: it moves into the list.
  async function migrateOldConversation() {
    let messages;
    try {
      messages = JSON.parse(localStorage.getItem(OLD_STORE_CHAT) || '[]');
    } catch {
      messages = [];
    }
    if (Array.isArray(messages) && messages.length) {
      const conv = freshConversation();
      conv.messages = messages.filter((m) => m && typeof m.text === 'string').map((m) => ({ ...m, images: m.images || [] }));
      await saveConversation(conv);
    }
    localStorage.removeItem(OLD_STORE_CHAT);
  }

  async function start() {
    state.settings = loadSettings();
    bindSettings();
    bindInput();
    bindChannel();
    try {
      await migrateOldConversation();
    } catch {
      notice('This browser keeps no conversations here (IndexedDB is not available): they are lost on a reload.');
    }
    await refreshList();
    const wanted = decodeURIComponent(location.hash.slice(1));
    const id = state.list.some((e) => e.id === wanted) ? wanted : state.list[0] && state.list[0].id;
    if (id && wanted !== 'new') {
      try {
        state.conv = (await loadConversation(id)) || state.conv;
      } catch {
        /* a fresh conversation */
      }
    }
    if (state.conv.messages.length) history.replaceState(null, '', `#${state.conv.id}`);
    renderAll();
    renderList();
    await loadConfig();
    if (state.config.api_key_required && !apiKey()) askKey();
    else loadModelName();
    document.body.dataset.ready = 'true';  // for tests: handlers are in place
  }

  start();
})();

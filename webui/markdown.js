// Markdown for the chat page (webui/app.js): our own small renderer rather than a bundled library,
// because it builds DOM nodes directly. Every piece of text becomes a text node and no string is
// ever parsed as HTML, so raw HTML in an answer is shown as text and there is nothing to sanitize
// (a library would produce an HTML string that must then be cleaned). It covers what chat models
// write: headings, paragraphs, emphasis, strikethrough, inline code, fenced code (highlighted),
// links (only http, https and mailto, opened in a new tab without an opener), tables, block
// quotes, nested lists and rules. An unclosed fence (an answer still streaming) is code too.
'use strict';

(() => {
  const el = (tag, className, text) => {
    const e = document.createElement(tag);
    if (className) e.className = className;
    if (text !== undefined) e.textContent = text;
    return e;
  };

  // ---- inline: code spans, links, autolinks, emphasis --------------------------------------------

  const SAFE_URL = /^(https?:|mailto:)/i;
  const INLINE = new RegExp(
    [
      /\\([!-/:-@[-`{-~])/.source,                                       // 1: an escaped character
      /(`+)([^`]|[^`][\s\S]*?[^`])\2(?!`)/.source,                      // 2, 3: code span
      /(!?)\[([^\]\n]*)\]\(\s*<?([^)\s>]*)>?(?:\s+"[^"\n]*")?\s*\)/.source,  // 4, 5, 6: link or image
      /<((?:https?|mailto):[^>\s]+)>/.source,                            // 7: <autolink>
      /((?:https?:\/\/)[^\s<]*[^\s<.,:;"')\]!?*_~])/.source,             // 8: bare address
      /(\*\*|__)(?=\S)([\s\S]*?\S)\9/.source,                            // 9, 10: strong
      /(\*)(?=[^\s*])([\s\S]*?[^\s\\*])\*(?!\*)/.source,                 // 11, 12: *emphasis*
      /(_)(?=[^\s_])([\s\S]*?[^\s\\_])_(?!\w)/.source,                    // 13, 14: _emphasis_
      /~~(?=\S)([\s\S]*?\S)~~/.source,                                   // 15: strikethrough
    ].join('|'),
    'g');

  function link(parent, text, href) {
    if (!SAFE_URL.test(href)) {
      // javascript:, data:, relative paths: not a link, the words and the address as text.
      parent.append(document.createTextNode(text && text !== href ? `${text} (${href})` : href));
      return;
    }
    const a = el('a');
    a.href = href;
    a.target = '_blank';
    a.rel = 'noopener noreferrer nofollow';
    if (text && text !== href) appendInline(a, text);
    else a.textContent = href;
    parent.append(a);
  }

  function appendInline(parent, text) {
    const pattern = new RegExp(INLINE.source, 'g');
    let last = 0;
    let m;
    const plain = (s) => s && parent.append(document.createTextNode(s));
    while ((m = pattern.exec(text)) !== null) {
      // An underscore inside a word (snake_case, window.__name) is no emphasis.
      if ((m[9] === '__' || m[13] === '_') && (/\w/.test(text[m.index - 1] || '') || /\w/.test(text[pattern.lastIndex] || ''))) {
        pattern.lastIndex = m.index + 1;
        continue;
      }
      plain(text.slice(last, m.index));
      if (m[1] !== undefined) plain(m[1]);
      else if (m[2] !== undefined) parent.append(el('code', '', m[3].replace(/^ (.*) $/, '$1')));
      else if (m[4] !== undefined) link(parent, m[5], m[6]);
      else if (m[7] !== undefined) link(parent, '', m[7]);
      else if (m[8] !== undefined) link(parent, '', m[8]);
      else {
        const tag = m[9] ? 'strong' : m[11] || m[13] ? 'em' : 'del';
        const inner = el(tag);
        let content = m[10] ?? m[12] ?? m[14] ?? m[15];
        if (m[9] === '**' && content.startsWith('*') && text[pattern.lastIndex] === '*') {
          // ***both***: strong and emphasis.
          pattern.lastIndex++;
          content = `${content}*`;
        }
        appendInline(inner, content);
        parent.append(inner);
      }
      last = pattern.lastIndex;
    }
    plain(text.slice(last));
  }

  function appendLines(parent, lines) {
    lines.forEach((line, i) => {
      if (i > 0) parent.append(el('br'));
      appendInline(parent, line.replace(/^\s+/, ''));
    });
  }

  // ---- code highlighting: comments, strings, numbers and keywords, by language family ------------

  const KEYWORDS = {
    c: 'auto break case char const constexpr continue default do double else enum extern float for goto if inline int long nullptr register return short signed sizeof static struct switch typedef union unsigned void volatile while class namespace template typename public private protected virtual override using new delete true false this try catch throw bool std include define',
    js: 'async await break case catch class const continue default delete do else export extends false finally for from function if import in instanceof let new null of return static super switch this throw true try typeof undefined var void while yield interface type enum implements',
    py: 'and as assert async await break class continue def del elif else except False finally for from global if import in is lambda None nonlocal not or pass raise return True try while with yield self print',
    sh: 'if then else elif fi for while until do done case esac in function return local export echo exit set unset readonly cd source',
    rs: 'as async await break const continue crate else enum extern false fn for if impl in let loop match mod move mut pub ref return self Self static struct super trait true type unsafe use where while',
    go: 'break case chan const continue default defer else fallthrough for func go goto if import interface map package range return select struct switch type var nil true false',
    sql: 'select from where insert into values update set delete create table drop alter join left right inner outer on group by order having limit as and or not null is in like distinct union all primary key',
  };
  const LANG = {
    c: 'c', h: 'c', cpp: 'c', 'c++': 'c', cc: 'c', hpp: 'c', cxx: 'c', java: 'c', cs: 'c', csharp: 'c', kotlin: 'c', swift: 'c',
    js: 'js', javascript: 'js', ts: 'js', typescript: 'js', jsx: 'js', tsx: 'js', mjs: 'js', json: 'js',
    py: 'py', python: 'py', sh: 'sh', bash: 'sh', shell: 'sh', zsh: 'sh', console: 'sh',
    rs: 'rs', rust: 'rs', go: 'go', golang: 'go', sql: 'sql',
  };
  const HASH_COMMENTS = new Set(['py', 'sh']);
  const keywordSets = {};

  function highlight(code, text, lang) {
    const family = LANG[String(lang).toLowerCase()];
    if (!family) {
      code.textContent = text;
      return;
    }
    keywordSets[family] ||= new Set(KEYWORDS[family].split(' '));
    const words = keywordSets[family];
    const comment = HASH_COMMENTS.has(family) ? '#[^\\n]*' : family === 'sql' ? '--[^\\n]*' : '\\/\\/[^\\n]*|\\/\\*[\\s\\S]*?(?:\\*\\/|$)';
    const strings = family === 'py' ? '"""[\\s\\S]*?(?:"""|$)|\'\'\'[\\s\\S]*?(?:\'\'\'|$)|' : family === 'js' ? '`(?:\\\\[\\s\\S]|[^\\\\`])*`?|' : '';
    const token = new RegExp(
      `(${comment})|(${strings}"(?:\\\\.|[^"\\\\\\n])*"?|'(?:\\\\.|[^'\\\\\\n])*'?)|(\\b(?:0x[0-9a-fA-F]+|\\d[\\d_]*(?:\\.\\d+)?(?:[eE][+-]?\\d+)?)\\b)|([A-Za-z_$][\\w$]*)`,
      'g');
    let last = 0;
    let m;
    const span = (cls, s) => code.append(el('span', cls, s));
    while ((m = token.exec(text)) !== null) {
      if (m[4] !== undefined && !words.has(m[4])) continue;
      if (m.index > last) code.append(document.createTextNode(text.slice(last, m.index)));
      if (m[1] !== undefined) span('tok-comment', m[1]);
      else if (m[2] !== undefined) span('tok-string', m[2]);
      else if (m[3] !== undefined) span('tok-number', m[3]);
      else span('tok-keyword', m[4]);
      last = token.lastIndex;
    }
    if (last < text.length) code.append(document.createTextNode(text.slice(last)));
  }

  // ---- blocks --------------------------------------------------------------------------------------

  const FENCE = /^ {0,3}(`{3,}|~{3,})\s*([^`\s]*)[^`]*$/;
  const HEADING = /^ {0,3}(#{1,6})(?:\s+(.*?))?(?:\s+#+)?\s*$/;
  const RULE = /^ {0,3}([-*_])(?:\s*\1){2,}\s*$/;
  const QUOTE = /^ {0,3}>\s?/;
  const LIST_ITEM = /^( *)([-*+]|(\d{1,9})[.)])(?:\s+|$)(.*)$/;
  const TABLE_RULE = /^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$/;

  const indentOf = (line) => line.match(/^ */)[0].length;
  const blank = (line) => line.trim() === '';

  function listItem(line) {
    const m = LIST_ITEM.exec(line);
    if (!m) return null;
    return { indent: m[1].length, ordered: m[3] !== undefined, start: Number(m[3] || 1), text: m[4],
      content: m[1].length + m[2].length + 1 };
  }

  function tableCells(line) {
    let s = line.trim();
    if (s.startsWith('|')) s = s.slice(1);
    if (s.endsWith('|') && !s.endsWith('\\|')) s = s.slice(0, -1);
    return s.split(/(?<!\\)\|/).map((c) => c.trim().replace(/\\\|/g, '|'));
  }

  const startsBlock = (lines, i) =>
    FENCE.test(lines[i]) || HEADING.test(lines[i]) || RULE.test(lines[i]) || QUOTE.test(lines[i]) ||
    (listItem(lines[i]) && !blank(listItem(lines[i]).text)) ||
    (lines[i].includes('|') && i + 1 < lines.length && TABLE_RULE.test(lines[i + 1]) && lines[i + 1].includes('-'));

  function renderTable(parent, lines, i) {
    const head = tableCells(lines[i]);
    const align = tableCells(lines[i + 1]).map((c) => (c.startsWith(':') && c.endsWith(':') ? 'center' : c.endsWith(':') ? 'right' : ''));
    const table = el('table');
    const row = (cells, tag) => {
      const tr = el('tr');
      head.forEach((_, k) => {
        const cell = el(tag);
        if (tag === 'th') cell.scope = 'col';
        if (align[k]) cell.className = `align-${align[k]}`;
        appendInline(cell, cells[k] || '');
        tr.append(cell);
      });
      return tr;
    };
    const thead = el('thead');
    thead.append(row(head, 'th'));
    const tbody = el('tbody');
    i += 2;
    while (i < lines.length && !blank(lines[i]) && lines[i].includes('|')) tbody.append(row(tableCells(lines[i++]), 'td'));
    table.append(thead, tbody);
    const wrap = el('div', 'table-wrap');
    wrap.append(table);
    parent.append(wrap);
    return i;
  }

  function renderList(parent, lines, i) {
    const first = listItem(lines[i]);
    const list = el(first.ordered ? 'ol' : 'ul');
    if (first.ordered && first.start !== 1) list.start = first.start;
    while (i < lines.length) {
      const item = listItem(lines[i]);
      if (!item || item.ordered !== first.ordered || item.indent < first.indent || item.indent >= first.content) break;
      const body = [item.text];
      i++;
      // The item's lines: indented past its marker, blank lines followed by such, or a lazy
      // continuation of its text.
      while (i < lines.length) {
        const line = lines[i];
        if (blank(line)) {
          let next = i + 1;
          while (next < lines.length && blank(lines[next])) next++;
          if (next < lines.length && indentOf(lines[next]) >= item.content) {
            body.push('');
            i++;
            continue;
          }
          break;
        }
        if (indentOf(line) >= item.content || (indentOf(line) > first.indent && listItem(line))) {
          body.push(line.slice(Math.min(indentOf(line), item.content)));
        } else if (!listItem(line) && !blank(body[body.length - 1]) && !startsBlock(lines, i)) {
          body.push(line);
        } else {
          break;
        }
        i++;
      }
      const li = el('li');
      renderBlocks(li, body);
      list.append(li);
      let next = i;
      while (next < lines.length && blank(lines[next])) next++;
      const after = next < lines.length && listItem(lines[next]);
      if (!after || after.ordered !== first.ordered || after.indent < first.indent || after.indent >= first.content) break;
      i = next;
    }
    parent.append(list);
    return i;
  }

  function renderBlocks(parent, lines) {
    let i = 0;
    while (i < lines.length) {
      const line = lines[i];
      if (blank(line)) {
        i++;
        continue;
      }
      let m;
      if ((m = FENCE.exec(line))) {
        const fence = m[1];
        const body = [];
        i++;
        while (i < lines.length && !(lines[i].trim().startsWith(fence) && lines[i].trim().replace(/[`~]/g, '') === '')) body.push(lines[i++]);
        i++;
        const pre = el('pre');
        const code = el('code');
        if (m[2]) code.dataset.lang = m[2];
        highlight(code, body.join('\n'), m[2]);
        pre.append(code);
        parent.append(pre);
      } else if ((m = HEADING.exec(line))) {
        const h = el(`h${Math.min(6, m[1].length + 2)}`, `md-h${m[1].length}`);
        appendInline(h, m[2] || '');
        parent.append(h);
        i++;
      } else if (RULE.test(line)) {
        parent.append(el('hr'));
        i++;
      } else if (QUOTE.test(line)) {
        const body = [];
        while (i < lines.length && !blank(lines[i]) && (QUOTE.test(lines[i]) || !startsBlock(lines, i))) body.push(lines[i++].replace(QUOTE, ''));
        const quote = el('blockquote');
        renderBlocks(quote, body);
        parent.append(quote);
      } else if (line.includes('|') && i + 1 < lines.length && TABLE_RULE.test(lines[i + 1]) && lines[i + 1].includes('-')) {
        i = renderTable(parent, lines, i);
      } else if (listItem(line)) {
        i = renderList(parent, lines, i);
      } else {
        const para = [line];
        i++;
        while (i < lines.length && !blank(lines[i]) && !startsBlock(lines, i)) para.push(lines[i++]);
        const p = el('p');
        appendLines(p, para);
        parent.append(p);
      }
    }
  }

  // Replaces parent's children with the rendering of `text`.
  function renderMarkdown(parent, text) {
    parent.replaceChildren();
    renderBlocks(parent, String(text).replace(/\r\n?/g, '\n').replace(/\t/g, '    ').split('\n'));
  }

  window.smolvlmMarkdown = { renderMarkdown };
})();

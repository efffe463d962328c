// explore.js drives explore.html: it asks the daemon's investigation API
// (SPEC §10, ../api/v1/ relative to the page, so it works under any path a
// reverse proxy mounts the daemon at) for the ranking of a kind over a
// range of days and the same for the period before of the same length,
// and for a chosen value its drill-down and its daily series. The whole
// view lives in the URL fragment, so a link reproduces it. Values are
// attacker-chosen: they reach the page only through textContent.
'use strict';

(function () {
  const errorBox = document.getElementById('js-error');

  // Errors are written into the page as well as the console, so a report
  // from an operator (or a test reading the DOM) shows what went wrong.
  function report(message) {
    errorBox.hidden = false;
    errorBox.textContent += message + '\n';
  }
  window.addEventListener('error', function (ev) {
    if (ev.target && ev.target !== window) {
      return;
    }
    report('Error: ' + (ev.message || 'unknown') + (ev.lineno ? ' (line ' + ev.lineno + ')' : ''));
  }, true);
  window.addEventListener('unhandledrejection', function (ev) {
    report('Unhandled rejection: ' + String(ev.reason));
  });

  const $ = function (id) { return document.getElementById(id); };
  const el = {
    form: $('controls'), from: $('from'), to: $('to'), kind: $('kind'),
    status: $('status'), needServer: $('need-server'), results: $('results'),
    summary: $('top-summary'), rows: $('top-rows'), csv: $('top-csv'),
    detail: $('detail'), heading: $('h-detail'), attempts: $('d-attempts'),
    first: $('d-first'), last: $('d-last'), series: $('series'), drills: $('drills'),
    drillOff: $('drill-off'),
  };
  const API = '../api/v1/';
  // ROWS is how many values the table shows; the comparison reads up to
  // the API's maximum so that a shown value's previous count is exact
  // whenever the previous period had at most that many values.
  const ROWS = 100;
  const MAX = 1000;
  const DRILL_ROWS = 10;
  const kindLabels = {};
  Array.prototype.forEach.call(el.kind.options, function (o) { kindLabels[o.value] = o.textContent; });

  // Dates are calendar days handled in UTC, written YYYY-MM-DD on the page
  // and YYYYMMDD in the API: never the browser's locale or zone.
  function parseISO(s) {
    const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s || '');
    if (!m) {
      return null;
    }
    const d = new Date(Date.UTC(+m[1], +m[2] - 1, +m[3]));
    return d.getUTCMonth() === +m[2] - 1 && d.getUTCDate() === +m[3] ? d : null;
  }
  function iso(d) { return d.toISOString().slice(0, 10); }
  function compact(d) { return iso(d).replace(/-/g, ''); }
  function fromCompact(s) { return s.slice(0, 4) + '-' + s.slice(4, 6) + '-' + s.slice(6, 8); }
  function addDays(d, n) { return new Date(d.getTime() + n * 86400000); }
  function dayCount(a, b) { return Math.round((b - a) / 86400000) + 1; }

  // The presets count back from the newest day with data (from the index
  // the compile embedded), which is "today" as far as counting goes.
  function anchor() {
    let raw = {};
    try {
      raw = JSON.parse($('alog-index').textContent) || {};
    } catch (e) {
      report('The page index is unreadable: ' + e.message);
    }
    if (typeof raw.newest === 'string' && /^\d{8}$/.test(raw.newest)) {
      const d = parseISO(fromCompact(raw.newest));
      if (d) {
        return d;
      }
    }
    return parseISO(iso(new Date()));
  }
  const today = anchor();
  function preset(name) {
    const y = today.getUTCFullYear();
    const m = today.getUTCMonth();
    switch (name) {
      case '7d': return [addDays(today, -6), today];
      case 'month': return [new Date(Date.UTC(y, m, 1)), today];
      case 'lastmonth': return [new Date(Date.UTC(y, m - 1, 1)), new Date(Date.UTC(y, m, 0))];
      case 'year': return [new Date(Date.UTC(y, 0, 1)), today];
      default: return [addDays(today, -29), today];
    }
  }

  // The fragment: from=YYYY-MM-DD&to=YYYY-MM-DD&kind=K[&value=V|&value_b64=B].
  function readState() {
    const p = new URLSearchParams(location.hash.replace(/^#/, ''));
    const def = preset('30d');
    let from = parseISO(p.get('from')) || def[0];
    let to = parseISO(p.get('to')) || def[1];
    if (from > to) {
      const t = from; from = to; to = t;
    }
    let kind = p.get('kind');
    if (!Object.prototype.hasOwnProperty.call(kindLabels, kind)) {
      kind = el.kind.options[0].value;
    }
    const st = { from: from, to: to, kind: kind, value: null };
    if (p.has('value_b64')) {
      st.value = { b64: p.get('value_b64'), text: null };
    } else if (p.has('value')) {
      st.value = { b64: null, text: p.get('value') };
    }
    return st;
  }
  function fragment(st) {
    const p = new URLSearchParams();
    p.set('from', iso(st.from));
    p.set('to', iso(st.to));
    p.set('kind', st.kind);
    if (st.value) {
      if (st.value.b64 !== null) {
        p.set('value_b64', st.value.b64);
      } else {
        p.set('value', st.value.text);
      }
    }
    return '#' + p.toString();
  }
  function go(st) {
    const f = fragment(st);
    if (location.hash === f) {
      render(st);
    } else {
      location.hash = f;
    }
  }

  function apiURL(ep, params) {
    return API + ep + '?' + new URLSearchParams(params).toString();
  }
  function valueParams(v) {
    return v.b64 !== null ? { value_b64: v.b64 } : { value: v.text };
  }

  // NoServer marks an answer that did not come from the API: the page is
  // served by a static server or opened from disk.
  function NoServer() {}
  function ask(url) {
    return fetch(url, { headers: { Accept: 'application/json' }, cache: 'no-store' }).then(function (r) {
      const json = (r.headers.get('Content-Type') || '').indexOf('application/json') === 0;
      if (!json) {
        throw new NoServer();
      }
      return r.json().then(function (body) {
        if (!r.ok) {
          throw new Error(body && body.error ? body.error : 'HTTP ' + r.status);
        }
        return body;
      });
    }, function () {
      throw new NoServer();
    });
  }

  // show puts a value into node as text, with the bytes that cannot be
  // shown safely (controls, bidi and zero-width characters, U+FFFD of
  // invalid UTF-8) as escapes set apart, as the compiled pages do.
  const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u00ad\u061c\u115f\u1160\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\ufff9-\ufffd\\]/g;
  function show(node, v) {
    const text = v.text === null ? '' : v.text;
    if (text === '') {
      const s = document.createElement('span');
      s.className = 'mark';
      s.textContent = v.b64 !== null ? '(bytes ' + v.b64 + ')' : '(empty)';
      node.appendChild(s);
      return;
    }
    let last = 0;
    text.replace(UNSAFE, function (ch, at) {
      if (at > last) {
        node.appendChild(document.createTextNode(text.slice(last, at)));
      }
      const s = document.createElement('span');
      s.className = 'esc';
      s.textContent = ch === '\\' ? '\\\\' : '\\u' + ch.charCodeAt(0).toString(16).padStart(4, '0');
      node.appendChild(s);
      last = at + ch.length;
      return ch;
    });
    if (last < text.length) {
      node.appendChild(document.createTextNode(text.slice(last)));
    }
  }
  function itemValue(it) {
    return { text: it.value, b64: typeof it.value_b64 === 'string' ? it.value_b64 : null };
  }
  function key(v) { return v.b64 !== null ? 'b:' + v.b64 : 't:' + v.text; }
  function group(n) { return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ','); }
  function share(n, total) { return total > 0 ? (n / total * 100).toFixed(1) + ' %' : ''; }
  function cell(tr, cls, text) {
    const td = document.createElement('td');
    td.className = cls;
    td.textContent = text;
    tr.appendChild(td);
    return td;
  }
  function clear(node) {
    while (node.firstChild) {
      node.removeChild(node.firstChild);
    }
  }
  function status(text) {
    el.status.textContent = text;
    el.status.hidden = text === '';
  }

  // delta compares a value's count with the period before. A value missing
  // from the previous ranking is new when that ranking was complete;
  // otherwise all that is known is that it had fewer than the last listed.
  function delta(count, prev, v) {
    const had = prev.counts.get(key(v));
    if (had === undefined) {
      if (prev.complete) {
        return { cls: 'new', text: 'new' };
      }
      return { cls: 'up', text: '< ' + group(prev.floor) };
    }
    if (count === had) {
      return { cls: 'same', text: '=' };
    }
    const d = count - had;
    return { cls: d > 0 ? 'up' : 'down', text: (d > 0 ? '+' : '−') + group(Math.abs(d)) };
  }

  let generation = 0;
  function render(st) {
    const gen = ++generation;
    el.from.value = iso(st.from);
    el.to.value = iso(st.to);
    el.kind.value = st.kind;
    const n = dayCount(st.from, st.to);
    const prevTo = addDays(st.from, -1);
    const prevFrom = addDays(prevTo, -(n - 1));
    const range = { kind: st.kind, from: compact(st.from), to: compact(st.to) };
    const before = { kind: st.kind, from: compact(prevFrom), to: compact(prevTo) };
    status('Loading…');
    Promise.all([
      ask(apiURL('top', Object.assign({ limit: MAX }, range))),
      ask(apiURL('top', Object.assign({ limit: MAX }, before))),
    ]).then(function (got) {
      if (gen !== generation) {
        return;
      }
      el.needServer.hidden = true;
      status('');
      el.results.hidden = false;
      showTop(st, got[0], got[1], prevFrom, prevTo);
      if (st.value) {
        showDetail(st, gen);
      } else {
        el.detail.hidden = true;
      }
    }).catch(function (err) {
      if (gen !== generation) {
        return;
      }
      el.results.hidden = true;
      if (err instanceof NoServer) {
        status('');
        el.needServer.hidden = false;
        el.form.hidden = true;
        return;
      }
      status('The daemon could not answer: ' + err.message);
    });
  }

  function showTop(st, cur, prev, prevFrom, prevTo) {
    const list = cur.top || [];
    const pl = prev.top || [];
    const prevInfo = {
      counts: new Map(pl.map(function (it) { return [key(itemValue(it)), it.count]; })),
      complete: pl.length >= prev.distinct,
      floor: pl.length ? pl[pl.length - 1].count : 0,
    };
    const curKeys = new Set(list.map(function (it) { return key(itemValue(it)); }));
    el.summary.textContent = group(cur.attempts) + ' attempts, ' + group(cur.distinct) + ' distinct ' +
      kindLabels[st.kind].toLowerCase() + ' from ' + iso(st.from) + ' to ' + iso(st.to) +
      '; the period before (' + iso(prevFrom) + ' to ' + iso(prevTo) + '): ' + group(prev.attempts) + ' attempts' +
      (list.length > ROWS ? '. The ' + ROWS + ' most tried are shown.' : '.');
    clear(el.rows);
    const top = list.slice(0, ROWS);
    const max = top.length ? top[0].count : 0;
    const chosen = st.value ? key(st.value) : '';
    top.forEach(function (it, i) {
      const v = itemValue(it);
      const tr = document.createElement('tr');
      if (key(v) === chosen) {
        tr.className = 'chosen';
      }
      cell(tr, 'rank', String(i + 1));
      const td = cell(tr, 'v', '');
      const bar = document.createElement('span');
      bar.className = 'bar';
      bar.style.width = (max > 0 ? it.count / max * 100 : 0).toFixed(2) + '%';
      td.appendChild(bar);
      const b = document.createElement('button');
      b.type = 'button';
      b.title = 'Drill down into this value';
      show(b, v);
      b.addEventListener('click', function () {
        go({ from: st.from, to: st.to, kind: st.kind, value: v });
      });
      td.appendChild(b);
      const c = cell(tr, 'num', group(it.count));
      c.setAttribute('data-count', String(it.count));
      cell(tr, 'share', share(it.count, cur.attempts));
      const d = delta(it.count, prevInfo, v);
      cell(tr, 'delta ' + d.cls, d.text);
      el.rows.appendChild(tr);
    });
    // Gone: ranked before, not counted at all in this range (exact only
    // when this range's ranking is complete).
    if (list.length >= cur.distinct) {
      const gone = pl.filter(function (it) { return !curKeys.has(key(itemValue(it))); });
      if (gone.length) {
        const tr = document.createElement('tr');
        const td = cell(tr, 'gone-row', '');
        td.colSpan = 5;
        td.textContent = 'Gone since the period before: ' + group(gone.length) + (gone.length === 1 ? ' value' : ' values') +
          ' (the most tried before: ';
        gone.slice(0, 5).forEach(function (it, i) {
          if (i > 0) {
            td.appendChild(document.createTextNode(', '));
          }
          const s = document.createElement('span');
          s.className = 'delta gone';
          show(s, itemValue(it));
          td.appendChild(s);
          td.appendChild(document.createTextNode(' ' + group(it.count)));
        });
        td.appendChild(document.createTextNode(')'));
        el.rows.appendChild(tr);
      }
    }
    if (!top.length) {
      const tr = document.createElement('tr');
      cell(tr, 'empty', 'No attempts in this range.').colSpan = 5;
      el.rows.appendChild(tr);
    }
    el.csv.href = apiURL('top', { kind: st.kind, from: compact(st.from), to: compact(st.to), format: 'csv' });
  }

  function showDetail(st, gen) {
    const v = st.value;
    const range = { kind: st.kind, from: compact(st.from), to: compact(st.to) };
    const vp = valueParams(v);
    const others = Object.keys(kindLabels).filter(function (k) { return k !== st.kind; });
    const series = ask(apiURL('series', Object.assign({}, range, vp)));
    const drills = others.map(function (of) {
      return ask(apiURL('drill', Object.assign({ of: of, limit: DRILL_ROWS }, range, vp))).then(
        function (d) { return { of: of, d: d }; },
        function (e) { if (e instanceof NoServer) { throw e; } return { of: of, err: e.message }; });
    });
    Promise.all([series].concat(drills)).then(function (got) {
      if (gen !== generation) {
        return;
      }
      el.detail.hidden = false;
      clear(el.heading);
      el.heading.appendChild(document.createTextNode(kindLabels[st.kind] + ' '));
      const name = document.createElement('span');
      name.className = 'v';
      show(name, v);
      el.heading.appendChild(name);
      const days = got[0].days || [];
      let total = 0;
      let first = '';
      let last = '';
      days.forEach(function (d) {
        total += d.count;
        if (d.count > 0) {
          first = first || d.day;
          last = d.day;
        }
      });
      el.attempts.textContent = group(total);
      el.first.textContent = first ? fromCompact(first) : 'not seen in this range';
      el.last.textContent = last ? fromCompact(last) : 'not seen in this range';
      drawSeries(days);
      clear(el.drills);
      el.drillOff.hidden = true;
      got.slice(1).forEach(function (r) {
        if (r.err) {
          el.drillOff.hidden = false;
          el.drillOff.textContent = r.err;
          return;
        }
        showDrill(st, r.of, r.d);
      });
    }).catch(function (err) {
      if (gen === generation) {
        status(err instanceof NoServer ? 'The daemon stopped answering.' : 'The daemon could not answer: ' + err.message);
      }
    });
  }

  function showDrill(st, of, d) {
    const box = document.createElement('div');
    box.id = 'drill-' + of;
    const h = document.createElement('h3');
    h.textContent = kindLabels[of] + ' (' + group(d.distinct) + ' distinct)';
    box.appendChild(h);
    const table = document.createElement('table');
    const body = document.createElement('tbody');
    (d.top || []).forEach(function (it, i) {
      const tr = document.createElement('tr');
      cell(tr, 'rank', String(i + 1));
      const td = cell(tr, 'v', '');
      const b = document.createElement('button');
      b.type = 'button';
      b.title = 'Drill down into this value';
      const v = itemValue(it);
      show(b, v);
      b.addEventListener('click', function () {
        go({ from: st.from, to: st.to, kind: of, value: v });
      });
      td.appendChild(b);
      cell(tr, 'num', group(it.count)).setAttribute('data-count', String(it.count));
      cell(tr, 'share', share(it.count, d.attempts));
      body.appendChild(tr);
    });
    if (!(d.top || []).length) {
      const tr = document.createElement('tr');
      cell(tr, 'empty', 'None in this range.').colSpan = 3;
      body.appendChild(tr);
    }
    table.appendChild(body);
    box.appendChild(table);
    const p = document.createElement('p');
    p.className = 'links';
    const a = document.createElement('a');
    a.href = apiURL('drill', Object.assign({ kind: st.kind, of: of, from: compact(st.from), to: compact(st.to), format: 'csv' }, valueParams(st.value)));
    a.textContent = 'All ' + kindLabels[of].toLowerCase() + ' (CSV)';
    p.appendChild(a);
    box.appendChild(p);
    el.drills.appendChild(box);
  }

  // drawSeries draws the daily attempts as an SVG line built node by node.
  const SVGNS = 'http://www.w3.org/2000/svg';
  function svg(name, attrs, parent) {
    const n = document.createElementNS(SVGNS, name);
    Object.keys(attrs).forEach(function (k) { n.setAttribute(k, String(attrs[k])); });
    parent.appendChild(n);
    return n;
  }
  function drawSeries(days) {
    clear(el.series);
    const W = 640;
    const H = 180;
    const L = 48;
    const B = 22;
    const root = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, role: 'img', id: 'series-svg' }, el.series);
    svg('title', {}, root).textContent = 'Attempts per day';
    const max = days.reduce(function (m, d) { return Math.max(m, d.count); }, 0);
    const x = function (i) { return L + (days.length > 1 ? i / (days.length - 1) : 0.5) * (W - L - 8); };
    const y = function (c) { return 8 + (1 - (max > 0 ? c / max : 0)) * (H - B - 8); };
    svg('line', { class: 'axis', x1: L, y1: H - B, x2: W - 8, y2: H - B }, root);
    svg('line', { class: 'axis', x1: L, y1: 8, x2: L, y2: H - B }, root);
    svg('text', { x: L - 4, y: 16, 'text-anchor': 'end' }, root).textContent = group(max);
    svg('text', { x: L - 4, y: H - B, 'text-anchor': 'end' }, root).textContent = '0';
    if (days.length) {
      svg('text', { x: L, y: H - 6, 'text-anchor': 'start' }, root).textContent = fromCompact(days[0].day);
      svg('text', { x: W - 8, y: H - 6, 'text-anchor': 'end' }, root).textContent = fromCompact(days[days.length - 1].day);
      const pts = days.map(function (d, i) { return x(i).toFixed(1) + ',' + y(d.count).toFixed(1); });
      svg('polygon', { class: 'area', points: L + ',' + (H - B) + ' ' + pts.join(' ') + ' ' + x(days.length - 1).toFixed(1) + ',' + (H - B) }, root);
      svg('polyline', { class: 'line', points: pts.join(' ') }, root);
      days.forEach(function (d, i) {
        const c = svg('circle', { cx: x(i).toFixed(1), cy: y(d.count).toFixed(1), r: days.length > 90 ? 1 : 2.5, fill: 'currentColor' }, root);
        svg('title', {}, c).textContent = fromCompact(d.day) + ': ' + group(d.count);
      });
    }
  }

  el.form.addEventListener('submit', function (ev) {
    ev.preventDefault();
    const from = parseISO(el.from.value.trim());
    const to = parseISO(el.to.value.trim());
    if (!from || !to) {
      status('Dates are YYYY-MM-DD, for example ' + iso(today) + '.');
      return;
    }
    const st = readState();
    const keep = st.kind === el.kind.value ? st.value : null;
    go({ from: from <= to ? from : to, to: from <= to ? to : from, kind: el.kind.value, value: keep });
  });
  el.kind.addEventListener('change', function () {
    const st = readState();
    go({ from: st.from, to: st.to, kind: el.kind.value, value: null });
  });
  Array.prototype.forEach.call(document.querySelectorAll('[data-preset]'), function (b) {
    b.addEventListener('click', function () {
      const r = preset(b.getAttribute('data-preset'));
      const st = readState();
      go({ from: r[0], to: r[1], kind: st.kind, value: st.value });
    });
  });
  window.addEventListener('hashchange', function () { render(readState()); });
  render(readState());
})();

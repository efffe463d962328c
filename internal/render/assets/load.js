// load.js drives the statistics pages of analyzer-d4-log: it fills the
// period pickers from the index embedded in the page and shows every kind
// of the chosen period side by side, each as a bar chart drawn in the page
// (so it takes the page's light or dark colours, and every bar tells its
// full value and count on hover) with the ranking as a table under it,
// each value linking to its view on the explore page. The choice is kept in
// the URL fragment (#20261125/src, #202611/username, #2026/host; the kind
// marks its panel) so a view can be shared and survives a reload.
// It runs from file:// and from any static server at any path: every URL it
// makes is relative. Served over HTTP it reads each ranking's JSON (the
// files beside the CSVs); from file://, where scripts cannot read files, it
// shows the compiled SVG charts instead. A newer index comes from fresh.js
// (event alog:index).
'use strict';

(function () {
  const errorBox = document.getElementById('js-error');

  // Errors are written into the page as well as the console, so a report
  // from an operator (or a test reading the DOM) shows what went wrong.
  function report(message) {
    if (!errorBox) {
      return;
    }
    errorBox.hidden = false;
    errorBox.textContent += message + '\n';
  }
  window.addEventListener('error', function (ev) {
    if (ev.target && ev.target !== window) {
      return; // a resource that failed to load: handled where it is used
    }
    report('Error: ' + (ev.message || 'unknown') + (ev.lineno ? ' (line ' + ev.lineno + ')' : ''));
  }, true);
  window.addEventListener('unhandledrejection', function (ev) {
    report('Unhandled rejection: ' + String(ev.reason));
  });

  const PAGES = {
    daily: { list: 'days', re: /^\d{8}$/, file: 'dailystatistics.html', prep: 'on' },
    monthly: { list: 'months', re: /^\d{6}$/, file: 'monthlystatistics.html', prep: 'in' },
    yearly: { list: 'years', re: /^\d{4}$/, file: 'yearlystatistics.html', prep: 'in' },
  };
  const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July',
    'August', 'September', 'October', 'November', 'December'];

  const pageName = document.body.getAttribute('data-page');
  if (!Object.prototype.hasOwnProperty.call(PAGES, pageName)) {
    report('Unknown page "' + pageName + '".');
    return;
  }
  const page = PAGES[pageName];

  const el = {
    day: document.getElementById('day'),
    dayList: document.getElementById('day-list'),
    year: document.getElementById('year'),
    month: document.getElementById('month'),
    prev: document.getElementById('prev'),
    next: document.getElementById('next'),
    status: document.getElementById('status'),
    panels: document.getElementById('panels'),
  };

  // The kinds and their labels come from the panels the server rendered.
  const kinds = {};
  const kindOrder = [];
  const panels = {};
  for (const sec of el.panels.querySelectorAll('section.panel')) {
    const k = sec.getAttribute('data-kind');
    kinds[k] = sec.getAttribute('data-label');
    kindOrder.push(k);
    panels[k] = sec;
  }
  const defaultKind = kindOrder[0];
  const SVGNS = 'http://www.w3.org/2000/svg';
  const served = location.protocol === 'http:' || location.protocol === 'https:';

  function isRealDay(p) {
    const y = Number(p.slice(0, 4));
    const m = Number(p.slice(4, 6));
    const d = Number(p.slice(6, 8));
    const t = new Date(Date.UTC(y, m - 1, d));
    return t.getUTCFullYear() === y && t.getUTCMonth() === m - 1 && t.getUTCDate() === d;
  }

  function validPeriod(name, p) {
    if (typeof p !== 'string' || !PAGES[name].re.test(p)) {
      return false;
    }
    if (name === 'daily') {
      return isRealDay(p);
    }
    if (name === 'monthly') {
      const m = Number(p.slice(4, 6));
      return m >= 1 && m <= 12;
    }
    return true;
  }

  // The index is data, not code: it is parsed, and every entry that is not
  // a well-formed period is dropped, so nothing odd reaches a URL.
  function readIndex(given) {
    let raw = given || {};
    const node = document.getElementById('alog-index');
    try {
      if (!given) {
        raw = JSON.parse(node ? node.textContent : '{}') || {};
      }
    } catch (e) {
      report('The page index is unreadable: ' + e.message);
    }
    const clean = function (list, name) {
      if (!Array.isArray(list)) {
        return [];
      }
      const ok = list.filter(function (p) { return validPeriod(name, p); });
      return Array.from(new Set(ok)).sort();
    };
    // Archived days (pruned from the counting Redis by retain_days, their
    // files kept) are days like the others for the picker and the
    // Previous/Next buttons; the set says which to label.
    const counted = clean(raw.days, 'daily');
    const counting = new Set(counted);
    const archived = clean(raw.archived, 'daily').filter(function (d) { return !counting.has(d); });
    const idx = {
      days: Array.from(new Set(counted.concat(archived))).sort(),
      months: clean(raw.months, 'monthly'),
      years: clean(raw.years, 'yearly'),
      archived: new Set(archived),
    };
    idx.oldest = validPeriod('daily', raw.oldest) ? raw.oldest : (idx.days[0] || '');
    idx.newest = validPeriod('daily', raw.newest) ? raw.newest : (idx.days[idx.days.length - 1] || '');
    // The date input spans every day that has files, archived ones included.
    if (idx.days.length && (!idx.oldest || idx.days[0] < idx.oldest)) {
      idx.oldest = idx.days[0];
    }
    if (idx.days.length && idx.days[idx.days.length - 1] > idx.newest) {
      idx.newest = idx.days[idx.days.length - 1];
    }
    return idx;
  }

  const index = readIndex();
  const periods = index[page.list];
  const has = new Set(periods);

  function newestOf(name) {
    const list = index[PAGES[name].list];
    if (name === 'daily' && has.has(index.newest)) {
      return index.newest;
    }
    return list.length ? list[list.length - 1] : '';
  }

  function display(p) {
    if (p.length === 8) {
      return p.slice(0, 4) + '-' + p.slice(4, 6) + '-' + p.slice(6);
    }
    if (p.length === 6) {
      return MONTHS[Number(p.slice(4, 6)) - 1] + ' ' + p.slice(0, 4);
    }
    return p;
  }

  function fileURL(period, kind, ext) {
    // The colon is encoded so that "20261125:statssrc.svg" is never taken
    // for a URL with the scheme "20261125".
    return period + '/' + period + '%3Astats' + kind + ext;
  }

  // parse reads the fragment. A part that is not valid falls back to the
  // default: the newest period with data, the first kind. named says that
  // the fragment chose the kind: its panel is marked.
  function parse(hash) {
    const parts = hash.replace(/^#/, '').split('/');
    const period = validPeriod(pageName, parts[0]) ? parts[0] : newestOf(pageName);
    const named = Object.prototype.hasOwnProperty.call(kinds, parts[1]);
    return { period: period, kind: named ? parts[1] : defaultKind, named: named };
  }

  function fragment(state) {
    return '#' + state.period + (state.named ? '/' + state.kind : '');
  }

  function go(state) {
    const target = fragment(state);
    if (location.hash === target) {
      render(state);
    } else {
      location.hash = target; // hashchange renders, and Back works
    }
  }

  function setOptions(select, values, label, selected) {
    while (select.firstChild) {
      select.removeChild(select.firstChild);
    }
    for (const v of values) {
      const opt = document.createElement('option');
      opt.value = v;
      opt.textContent = label(v);
      select.appendChild(opt);
    }
    select.value = selected;
  }

  function neighbours(period) {
    let prev = '';
    let next = '';
    for (const p of periods) {
      if (p < period) {
        prev = p;
      } else if (p > period && !next) {
        next = p;
      }
    }
    return { prev: prev, next: next };
  }

  // The links to the other pages keep the kind, and the period when the
  // other page has data for the one containing the current period.
  function updateNav(state) {
    for (const name of Object.keys(PAGES)) {
      const a = document.getElementById('nav-' + name);
      if (!a || name === pageName) {
        continue;
      }
      const list = index[PAGES[name].list];
      const width = name === 'daily' ? 8 : name === 'monthly' ? 6 : 4;
      let period = state.period && state.period.length >= width ? state.period.slice(0, width) : '';
      if (list.indexOf(period) < 0) {
        period = newestOf(name);
      }
      a.href = PAGES[name].file + (period ? fragment({ period: period, kind: state.kind, named: state.named }) : '');
    }
  }

  function updatePickers(state) {
    const p = state.period;
    if (el.day) {
      if (el.dayList.childElementCount !== periods.length) {
        const frag = document.createDocumentFragment();
        for (let i = periods.length - 1; i >= 0; i--) {
          const opt = document.createElement('option');
          opt.value = display(periods[i]);
          if (index.archived.has(periods[i])) {
            opt.label = 'archived';
          }
          frag.appendChild(opt);
        }
        clear(el.dayList);
        el.dayList.appendChild(frag);
      }
      el.day.value = display(p);
      el.day.setCustomValidity('');
    }
    if (pageName === 'monthly') {
      const years = Array.from(new Set(periods.map(function (m) { return m.slice(0, 4); })));
      const year = p.slice(0, 4);
      if (years.indexOf(year) < 0) {
        years.push(year);
        years.sort();
      }
      setOptions(el.year, years, function (y) { return y; }, year);
      const months = periods.filter(function (m) { return m.slice(0, 4) === year; });
      if (months.indexOf(p) < 0) {
        months.push(p);
        months.sort();
      }
      setOptions(el.month, months, function (m) {
        return MONTHS[Number(m.slice(4, 6)) - 1] + (has.has(m) ? '' : ' (no data)');
      }, p);
    }
    if (pageName === 'yearly') {
      const years = periods.slice();
      if (years.indexOf(p) < 0) {
        years.push(p);
        years.sort();
      }
      setOptions(el.year, years, function (y) { return y + (has.has(y) ? '' : ' (no data)'); }, p);
    }
    const n = neighbours(p);
    el.prev.disabled = !n.prev;
    el.next.disabled = !n.next;
  }

  function clear(node) {
    while (node.firstChild) {
      node.removeChild(node.firstChild);
    }
  }

  function showStatus(text) {
    el.status.textContent = text;
    el.panels.hidden = true;
  }

  function group(n) { return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ','); }
  function share(n, total) { return total > 0 ? (n / total * 100).toFixed(1) + ' %' : ''; }

  // The days of a period, for the explore page's from/to.
  function span(p) {
    const y = Number(p.slice(0, 4));
    if (p.length === 8) {
      return [display(p), display(p)];
    }
    if (p.length === 6) {
      const m = Number(p.slice(4, 6));
      const last = new Date(Date.UTC(y, m, 0)).getUTCDate();
      return [p.slice(0, 4) + '-' + p.slice(4, 6) + '-01',
        p.slice(0, 4) + '-' + p.slice(4, 6) + '-' + String(last).padStart(2, '0')];
    }
    return [p + '-01-01', p + '-12-31'];
  }

  // exploreURL is the explore page's view of one value over the period
  // (its fragment: from, to, kind, value or value_b64 for bytes that are
  // not UTF-8).
  function exploreURL(period, kind, it) {
    const r = span(period);
    const q = new URLSearchParams();
    q.set('from', r[0]);
    q.set('to', r[1]);
    q.set('kind', kind);
    if (typeof it.value_b64 === 'string') {
      q.set('value_b64', it.value_b64);
    } else {
      q.set('value', it.value);
    }
    return 'explore.html#' + q.toString();
  }

  // shownText is a value as the CSV shows it: the compile writes "shown"
  // when the escaped form differs from the value (controls, bidi, invalid
  // bytes, backslashes).
  function shownText(it) {
    if (typeof it.shown === 'string') {
      return it.shown;
    }
    return typeof it.value === 'string' ? it.value : '';
  }

  // showValue puts the shown text into node, the escapes set apart.
  const ESCAPE = /\\(?:x[0-9a-f]{2}|u[0-9a-f]{4}|U[0-9a-f]{8}|[\\tnr])/g;
  function showValue(node, text) {
    if (text === '') {
      const s = document.createElement('span');
      s.className = 'mark';
      s.textContent = '(empty)';
      node.appendChild(s);
      return;
    }
    let last = 0;
    text.replace(ESCAPE, function (esc, at) {
      if (at > last) {
        node.appendChild(document.createTextNode(text.slice(last, at)));
      }
      const s = document.createElement('span');
      s.className = 'esc';
      s.textContent = esc;
      node.appendChild(s);
      last = at + esc.length;
      return esc;
    });
    if (last < text.length) {
      node.appendChild(document.createTextNode(text.slice(last)));
    }
  }

  // shortLabel cuts a label for the chart's label column; the table and
  // the bar's tooltip carry it whole.
  function shortLabel(text) {
    const chars = Array.from(text === '' ? '(empty)' : text);
    return chars.length > 22 ? chars.slice(0, 21).join('') + '…' : chars.join('');
  }

  function svgEl(name, attrs, parent) {
    const n = document.createElementNS(SVGNS, name);
    for (const a of Object.keys(attrs)) {
      n.setAttribute(a, attrs[a]);
    }
    if (parent) {
      parent.appendChild(n);
    }
    return n;
  }

  const BARS = 15; // bars drawn; the table lists every value of the JSON
  // drawChart draws the top values as horizontal bars sized by a viewBox,
  // so the chart fills its panel at any width without being cut.
  function drawChart(box, doc, what) {
    const top = doc.top.slice(0, BARS);
    const W = 420;
    const ROW = 22;
    const LABEL = 150;
    const COUNT = 108; // room for "12,345 · 83.0 %" after the longest bar
    const H = top.length * ROW + 4;
    const svg = svgEl('svg', { class: 'bars', viewBox: '0 0 ' + W + ' ' + H, role: 'img', 'aria-label': 'Bar chart: ' + what });
    const max = top.length ? top[0].count : 1;
    top.forEach(function (it, i) {
      const text = shownText(it);
      const y = i * ROW + 2;
      const g = svgEl('g', {}, svg);
      const title = svgEl('title', {}, g);
      title.textContent = (text === '' ? '(empty)' : text) + (it.name ? ' (' + it.name + ')' : '') +
        ': ' + group(it.count) + ' attempts, ' + share(it.count, doc.attempts);
      svgEl('rect', { class: 'track', x: LABEL, y: y, width: W - LABEL - COUNT, height: ROW - 6, rx: 2 }, g);
      const w = Math.max(1, (W - LABEL - COUNT) * it.count / max);
      svgEl('rect', { class: 'bar', x: LABEL, y: y, width: w.toFixed(1), height: ROW - 6, rx: 2 }, g);
      const label = svgEl('text', { x: 0, y: y + ROW - 10 }, g);
      label.textContent = shortLabel(text);
      const count = svgEl('text', { class: 'c', x: W, y: y + ROW - 10, 'text-anchor': 'end' }, g);
      count.textContent = group(it.count) + ' · ' + share(it.count, doc.attempts);
    });
    box.appendChild(svg);
  }

  function fillTable(tbody, doc, period, kind) {
    doc.top.forEach(function (it, i) {
      const tr = document.createElement('tr');
      const rank = document.createElement('td');
      rank.className = 'rank';
      rank.textContent = String(i + 1);
      const v = document.createElement('td');
      v.className = 'v';
      const a = document.createElement('a');
      a.className = 'val';
      a.href = exploreURL(period, kind, it);
      a.title = 'Explore this value: who else, since when';
      showValue(a, shownText(it));
      v.appendChild(a);
      if (it.name) {
        const nm = document.createElement('span');
        nm.className = 'nm';
        nm.textContent = it.name;
        v.appendChild(nm);
      }
      const c = document.createElement('td');
      c.className = 'num';
      c.textContent = group(it.count);
      const sh = document.createElement('td');
      sh.className = 'share';
      sh.textContent = share(it.count, doc.attempts);
      tr.append(rank, v, c, sh);
      tbody.appendChild(tr);
    });
  }

  // A JSON summary is data from attackers' values: only its shape is
  // trusted, and every string reaches the page as text.
  function validDoc(doc) {
    return doc && typeof doc === 'object' && Array.isArray(doc.top) && Number.isFinite(doc.attempts) &&
      doc.top.every(function (it) { return it && typeof it.value === 'string' && Number.isFinite(it.count); });
  }

  let generation = 0;
  function showPanel(kind, state, gen) {
    const sec = panels[kind];
    const box = sec.querySelector('.chart');
    const tbody = sec.querySelector('tbody');
    const meta = sec.querySelector('.meta');
    const what = kinds[kind] + ' ' + page.prep + ' ' + display(state.period);
    clear(box);
    clear(tbody);
    meta.textContent = '';
    sec.querySelector('a.csv').href = fileURL(state.period, kind, '.csv');
    sec.querySelector('a.csv').setAttribute('download', state.period + '-stats' + kind + '.csv');
    sec.querySelector('a.svg').href = fileURL(state.period, kind, '.svg');
    sec.querySelector('a.json').href = fileURL(state.period, kind, '.json');
    sec.querySelector('a.json').hidden = !served;
    sec.classList.toggle('focus', state.named && kind === state.kind && kindOrder.length > 1);
    sec.querySelector('table').hidden = !served;
    function message(text) {
      const p = document.createElement('p');
      p.className = 'msg';
      p.textContent = text;
      box.appendChild(p);
    }
    if (!served) {
      // file://: scripts cannot read the JSON, the compiled chart shows.
      const img = document.createElement('img');
      img.alt = 'Bar chart: ' + what;
      img.width = 1000;
      img.height = 700;
      img.addEventListener('error', function () {
        clear(box);
        message('The chart of ' + what + ' is not available yet; it is drawn at the next compile.');
      });
      img.src = fileURL(state.period, kind, '.svg');
      box.appendChild(img);
      return;
    }
    fetch(fileURL(state.period, kind, '.json'), { cache: 'no-cache' })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(new Error('HTTP ' + r.status)); })
      .then(function (doc) {
        if (gen !== generation) {
          return;
        }
        if (!validDoc(doc)) {
          throw new Error('not a ranking');
        }
        const distinct = Number.isFinite(doc.distinct) ? doc.distinct : doc.top.length;
        meta.textContent = group(doc.attempts) + ' attempts · ' + group(distinct) + ' distinct' +
          (distinct > doc.top.length ? ' · top ' + doc.top.length + ' listed' : '');
        if (!doc.top.length) {
          message('No attempts recorded ' + page.prep + ' ' + display(state.period) + '.');
          return;
        }
        drawChart(box, doc, what);
        fillTable(tbody, doc, state.period, kind);
      })
      .catch(function () {
        if (gen !== generation) {
          return;
        }
        clear(box);
        clear(tbody);
        message('The ranking of ' + what + ' is not available yet; it is drawn at the next compile.');
      });
  }

  function render(state) {
    if (!periods.length) {
      for (const c of [el.day, el.year, el.month, el.prev, el.next]) {
        if (c) {
          c.disabled = true;
        }
      }
      showStatus('No data yet: no attempt has been counted. Charts appear here after the first compile.');
      return;
    }
    updatePickers(state);
    updateNav(state);
    document.title = kinds[state.kind] + ' ' + page.prep + ' ' + display(state.period) + ' · sshd invalid users';
    generation++;
    if (!has.has(state.period)) {
      showStatus('No attempts were recorded ' + page.prep + ' ' + display(state.period) + '.');
      return;
    }
    el.status.textContent = pageName === 'daily' && index.archived.has(state.period)
      ? 'Archived: ' + display(state.period) + ' was pruned from the counting Redis (retain_days); its charts and CSVs are as last compiled, and its attempts count in its month and year.'
      : '';
    el.panels.hidden = false;
    for (const k of kindOrder) {
      showPanel(k, state, generation);
    }
  }

  if (el.day) {
    // ISO only: the text is read as YYYY-MM-DD whatever the browser's
    // locale; anything else is refused on the field itself.
    el.day.addEventListener('change', function () {
      const v = el.day.value.trim();
      const p = v.replace(/-/g, '');
      if (/^\d{4}-\d{2}-\d{2}$/.test(v) && isRealDay(p)) {
        el.day.setCustomValidity('');
        go({ period: p, kind: parse(location.hash).kind, named: parse(location.hash).named });
      } else {
        el.day.setCustomValidity('A day as YYYY-MM-DD, e.g. ' + display(index.newest || '20260101') + '.');
        el.day.reportValidity();
      }
    });
  }
  if (pageName === 'monthly') {
    el.year.addEventListener('change', function () {
      const year = el.year.value;
      const current = parse(location.hash).period;
      const same = year + current.slice(4, 6);
      const inYear = periods.filter(function (m) { return m.slice(0, 4) === year; });
      const period = has.has(same) ? same : (inYear[inYear.length - 1] || same);
      go({ period: period, kind: parse(location.hash).kind, named: parse(location.hash).named });
    });
    el.month.addEventListener('change', function () {
      go({ period: el.month.value, kind: parse(location.hash).kind, named: parse(location.hash).named });
    });
  }
  if (pageName === 'yearly') {
    el.year.addEventListener('change', function () {
      go({ period: el.year.value, kind: parse(location.hash).kind, named: parse(location.hash).named });
    });
  }
  el.prev.addEventListener('click', function () {
    const state = parse(location.hash);
    const n = neighbours(state.period);
    if (n.prev) {
      go({ period: n.prev, kind: state.kind, named: state.named });
    }
  });
  el.next.addEventListener('click', function () {
    const state = parse(location.hash);
    const n = neighbours(state.period);
    if (n.next) {
      go({ period: n.next, kind: state.kind, named: state.named });
    }
  });
  window.addEventListener('hashchange', function () {
    render(parse(location.hash));
  });
  // fresh.js hands over the index of a newer compile: the lists are
  // replaced in place and the view redrawn, so a page opened without a
  // fragment moves on to the newest period, and a chosen one stays.
  document.addEventListener('alog:index', function (ev) {
    const next = readIndex(ev.detail);
    index.days = next.days;
    index.months = next.months;
    index.years = next.years;
    index.oldest = next.oldest;
    index.newest = next.newest;
    index.archived = next.archived;
    periods.splice(0, periods.length, ...next[page.list]);
    has.clear();
    periods.forEach(function (p) { has.add(p); });
    for (const c of [el.day, el.year, el.month, el.prev, el.next]) {
      if (c) {
        c.disabled = false;
      }
    }
    render(parse(location.hash)); // the rankings are read again: they may have grown
  });

  // A fragment that does not name a valid view is replaced by the view
  // shown, so the address bar never shares something else than the page.
  const initial = parse(location.hash);
  if (location.hash && location.hash !== fragment(initial) && initial.period) {
    try {
      history.replaceState(null, '', fragment(initial));
    } catch (e) {
      // Some sandboxed frames refuse history changes; the view is right anyway.
    }
  }
  render(initial);
}());

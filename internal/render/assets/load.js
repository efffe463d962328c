// load.js drives the statistics pages of analyzer-d4-log: it fills the
// period pickers from the index embedded in the page, shows the chart of
// the chosen period and kind, and keeps the choice in the URL fragment
// (#20261125/src, #202611/username, #2026/host) so a view can be shared and
// survives a reload. It runs from file:// and from any static server at any
// path: every URL it makes is relative and nothing is fetched but charts;
// a newer index comes from fresh.js (event alog:index).
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
    year: document.getElementById('year'),
    month: document.getElementById('month'),
    kind: document.getElementById('kind'),
    prev: document.getElementById('prev'),
    next: document.getElementById('next'),
    status: document.getElementById('status'),
    chart: document.getElementById('chart'),
    img: document.getElementById('chart-img'),
    link: document.getElementById('chart-link'),
    caption: document.getElementById('caption'),
    csv: document.getElementById('csv'),
  };

  // The kinds and their labels come from the select the server rendered.
  const kinds = {};
  const kindOrder = [];
  for (const opt of el.kind.options) {
    kinds[opt.value] = opt.textContent;
    kindOrder.push(opt.value);
  }
  const defaultKind = kindOrder[0];

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
  // default: the newest period with data, the first kind.
  function parse(hash) {
    const parts = hash.replace(/^#/, '').split('/');
    const period = validPeriod(pageName, parts[0]) ? parts[0] : newestOf(pageName);
    const kind = Object.prototype.hasOwnProperty.call(kinds, parts[1]) ? parts[1] : defaultKind;
    return { period: period, kind: kind };
  }

  function fragment(state) {
    return '#' + state.period + '/' + state.kind;
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
      a.href = PAGES[name].file + (period ? fragment({ period: period, kind: state.kind }) : '');
    }
  }

  function updatePickers(state) {
    const p = state.period;
    if (el.day) {
      el.day.min = display(index.oldest);
      el.day.max = display(index.newest);
      el.day.value = display(p);
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
    el.kind.value = state.kind;
    const n = neighbours(p);
    el.prev.disabled = !n.prev;
    el.next.disabled = !n.next;
  }

  function showStatus(text) {
    el.status.textContent = text;
    el.chart.hidden = true;
    el.img.removeAttribute('src');
  }

  function render(state) {
    if (!periods.length) {
      for (const c of [el.day, el.year, el.month, el.kind, el.prev, el.next]) {
        if (c) {
          c.disabled = true;
        }
      }
      showStatus('No data yet: no attempt has been counted. Charts appear here after the first compile.');
      return;
    }
    updatePickers(state);
    updateNav(state);
    const what = kinds[state.kind] + ' ' + page.prep + ' ' + display(state.period);
    document.title = what + ' · sshd invalid users';
    if (!has.has(state.period)) {
      showStatus('No attempts were recorded ' + page.prep + ' ' + display(state.period) + '.');
      return;
    }
    el.status.textContent = pageName === 'daily' && index.archived.has(state.period)
      ? 'Archived: ' + display(state.period) + ' was pruned from the counting Redis (retain_days); its chart and CSV are as last compiled, and its attempts count in its month and year.'
      : '';
    const src = fileURL(state.period, state.kind, '.svg');
    if (el.img.getAttribute('src') !== src) {
      el.img.src = src;
    }
    el.link.href = src;
    el.img.alt = 'Bar chart: ' + what;
    el.caption.textContent = what + (pageName === 'daily' && index.archived.has(state.period) ? ' (archived)' : '');
    el.csv.href = fileURL(state.period, state.kind, '.csv');
    el.csv.setAttribute('download', state.period + '-stats' + state.kind + '.csv');
    el.chart.hidden = false;
  }

  el.img.addEventListener('error', function () {
    const state = parse(location.hash);
    if (el.img.getAttribute('src')) {
      showStatus('The chart of ' + kinds[state.kind].toLowerCase() + ' ' + page.prep + ' ' +
        display(state.period) + ' is not available yet; it is drawn at the next compile.');
    }
  });

  if (el.day) {
    el.day.addEventListener('change', function () {
      const v = el.day.value;
      if (/^\d{4}-\d{2}-\d{2}$/.test(v)) {
        go({ period: v.replace(/-/g, ''), kind: el.kind.value });
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
      go({ period: period, kind: el.kind.value });
    });
    el.month.addEventListener('change', function () {
      go({ period: el.month.value, kind: el.kind.value });
    });
  }
  if (pageName === 'yearly') {
    el.year.addEventListener('change', function () {
      go({ period: el.year.value, kind: el.kind.value });
    });
  }
  el.kind.addEventListener('change', function () {
    go({ period: parse(location.hash).period, kind: el.kind.value });
  });
  el.prev.addEventListener('click', function () {
    const state = parse(location.hash);
    const n = neighbours(state.period);
    if (n.prev) {
      go({ period: n.prev, kind: state.kind });
    }
  });
  el.next.addEventListener('click', function () {
    const state = parse(location.hash);
    const n = neighbours(state.period);
    if (n.next) {
      go({ period: n.next, kind: state.kind });
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
    for (const c of [el.day, el.year, el.month, el.kind, el.prev, el.next]) {
      if (c) {
        c.disabled = false;
      }
    }
    const state = parse(location.hash);
    el.img.removeAttribute('src'); // the chart of this period may have been redrawn
    render(state);
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

// fresh.js says on every page how fresh its data is and keeps it fresh.
// It reads status.json, which each compile writes beside the pages, at
// load, then again a while after each answer (the compile interval, between
// 15 and 60 seconds), and at once whenever the tab is shown or focused
// again: the line "Counted up to …, compiled …" and the label of the newest
// day follow, and when a compile brought new data the page takes it without
// a full reload (the statistics pages get the new index, the overview its
// new content), so a tab left open for a day, even one never looked at
// again like a wall display, shows today.
// Opened from file:// or a server without status.json, the page stays as
// compiled and the line says nothing.
'use strict';

(function () {
  const line = document.getElementById('freshness');
  if (!line) {
    return;
  }
  const HOUR = 3600 * 1000;
  const DAY = 24 * HOUR;
  let compiled = '';

  function pad(n) { return (n < 10 ? '0' : '') + n; }

  // zoned is an instant moved by the configured zone's offset, so that its
  // UTC fields read as the wall clock there.
  function zoned(ms, offset) { return new Date(ms + offset * 1000); }
  function ymd(d) { return d.getUTCFullYear() + pad(d.getUTCMonth() + 1) + pad(d.getUTCDate()); }
  function dashed(p) { return p.slice(0, 4) + '-' + p.slice(4, 6) + '-' + p.slice(6, 8); }
  function clock(ms, offset, now) {
    const d = zoned(ms, offset);
    const t = pad(d.getUTCHours()) + ':' + pad(d.getUTCMinutes()) + ':' + pad(d.getUTCSeconds());
    return ymd(d) === ymd(zoned(now, offset)) ? t : dashed(ymd(d)) + ' ' + t;
  }
  function dayMs(p) { return Date.UTC(+p.slice(0, 4), +p.slice(4, 6) - 1, +p.slice(6, 8)); }

  // label says whether the newest day may still grow: only while it is
  // today in the configured zone, or yesterday within the first hour after
  // midnight (lines stamped before midnight still arriving); an older
  // newest day is labelled with its age, so stale data never looks current.
  function label(newest, offset, now) {
    if (!/^\d{8}$/.test(newest || '')) {
      return '';
    }
    const z = zoned(now, offset);
    const today = ymd(z);
    const yesterday = ymd(new Date(z.getTime() - DAY));
    if (newest === today || (newest === yesterday && z.getUTCHours() < 1)) {
      return 'newest day ' + dashed(newest) + ' may be incomplete';
    }
    const age = Math.round((dayMs(today) - dayMs(newest)) / DAY);
    if (age <= 0) {
      return 'newest day ' + dashed(newest);
    }
    return 'newest day ' + dashed(newest) + ' is ' + age + (age === 1 ? ' day' : ' days') + ' old';
  }

  function show(st) {
    const now = Date.now();
    const offset = Number.isFinite(st.utc_offset_seconds) ? st.utc_offset_seconds : 0;
    const parts = [];
    // newest_line is the stamp of the newest line counted, whoever
    // counted it and when; the daemon's own last count is only its clock.
    const counted = Date.parse(st.newest_line || '');
    parts.push(Number.isFinite(counted) ? 'counted up to ' + clock(counted, offset, now) : 'no line counted yet');
    const at = Date.parse(st.compiled_at || '');
    if (Number.isFinite(at)) {
      parts.push('compiled ' + clock(at, offset, now));
    }
    const l = label(st.index && st.index.newest, offset, now);
    if (l) {
      parts.push(l);
    }
    parts[0] = parts[0].charAt(0).toUpperCase() + parts[0].slice(1);
    line.textContent = parts.join(', ') + (st.timezone ? ' (' + st.timezone + ')' : '') + '.';
    line.hidden = false;
  }

  // take brings the page up to a compile it has not shown yet.
  function take(st) {
    if (document.body.getAttribute('data-page') !== 'overview') {
      document.dispatchEvent(new CustomEvent('alog:index', { detail: st.index || {} }));
      return;
    }
    fetch(location.pathname.replace(/[^/]*$/, '') + 'index.html', { cache: 'no-cache' })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(new Error('HTTP ' + r.status)); })
      .then(function (text) {
        const fresh = new DOMParser().parseFromString(text, 'text/html').querySelector('main');
        const main = document.querySelector('main');
        if (fresh && main) {
          main.replaceWith(document.adoptNode(fresh));
        }
      })
      .catch(function () { /* the next round tries again */ });
  }

  // The next look is scheduled only once the previous one is answered, so
  // a slow server never has two requests of one page waiting, and there is
  // never more than one timer.
  let timer = 0;
  let asking = false;
  let period = 60 * 1000;
  function schedule() {
    clearTimeout(timer);
    timer = 0;
    if (document.visibilityState !== 'hidden') {
      timer = setTimeout(poll, period);
    }
  }
  function poll() {
    clearTimeout(timer);
    timer = 0;
    if (asking) {
      return;
    }
    asking = true;
    fetch('status.json', { cache: 'no-cache' })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (st) {
        if (!st || typeof st !== 'object') {
          return;
        }
        if (Number.isFinite(st.refresh_seconds)) {
          period = Math.min(60, Math.max(15, st.refresh_seconds)) * 1000;
        }
        show(st);
        if (compiled && st.compiled_at !== compiled) {
          take(st);
        }
        compiled = st.compiled_at;
      })
      .catch(function () {
        // Not served (file://) or the server is away: keep the page as
        // it is; the next look tries again.
      })
      .then(function () {
        asking = false;
        schedule();
      });
  }
  // A hidden tab is not polled (browsers would throttle it anyway); it
  // looks at once when shown again, so what it shows is never older than
  // the moment it is looked at.
  if (location.protocol === 'http:' || location.protocol === 'https:') {
    poll();
    document.addEventListener('visibilitychange', function () {
      if (document.visibilityState === 'visible') {
        poll();
      } else {
        clearTimeout(timer);
        timer = 0;
      }
    });
    window.addEventListener('focus', poll);
  }
}());

// The backfill dashboard. No framework, no build step: plain DOM built with createElement and
// textContent, never from HTML strings, so nothing a user or an upstream sends can run as
// markup. Progress streams are read with fetch() and parsed here, because the browser's own
// event-stream client cannot send the Authorization header.
'use strict';

(() => {
  const TOKEN_KEY = 'backfill.apiToken';
  const TERMINAL = new Set(['succeeded', 'completed_with_errors', 'failed', 'cancelled']);
  // Sources that fetch a trading day of every ticker at once: their tasks are days.
  const BULK = new Set(['flatfiles', 'grouped']);
  const STATUS_LABEL = {
    queued: 'queued',
    running: 'running',
    succeeded: 'succeeded',
    completed_with_errors: 'completed with errors',
    failed: 'failed',
    cancelled: 'cancelled',
  };
  // Browsers open at most six HTTP/1.1 connections to one server: keep room for the API calls.
  const MAX_STREAMS = 3;
  const RECENT_LIMIT = 15;
  const REFRESH_MS = 5000;
  // The most bars the chart draws: a longer series is drawn in coarser bars resampled from it.
  const CHART_MAX = 2000;
  // The timeframes the chart resamples to, finest first.
  const CHART_STEPS = ['1m', '5m', '15m', '1h', '1d', '1w', '1mo'];
  // A job that ended this way can be retried when one of its symbols (or days) did not end stored.
  const RETRYABLE = new Set(['completed_with_errors', 'failed', 'cancelled']);
  const PLAN_DEBOUNCE_MS = 300;
  const SVG_NS = 'http://www.w3.org/2000/svg';

  const $ = (id) => document.getElementById(id);

  const state = {
    jobs: new Map(), // id -> {job, progress}, newest first
    rows: new Map(), // id -> row elements
    selected: null, // id of the job shown in detail
    detail: null, // its last status body
    detailRows: new Map(), // 'symbol:AAPL' or 'day:2024-01-02' -> task row elements
    streams: new Map(), // id -> AbortController
    refreshTimer: null,
    chart: null, // {candles, symbol, timeframe, source, hours, capped}
    chartSeq: 0,
    authWaiting: false,
    planTimer: null,
    planSeq: 0,
    savedSymbols: '', // what the symbols field held before "All tickers" cleared it
    actionBusy: false, // a cancel or retry is on its way
    scheduleRows: new Map(), // name -> schedule row elements
  };

  // ---------------------------------------------------------------- DOM helpers

  /** An element with attributes and children; strings become text nodes. */
  function h(tag, attrs, ...children) {
    const node = document.createElement(tag);
    setAttrs(node, attrs);
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function s(tag, attrs) {
    const node = document.createElementNS(SVG_NS, tag);
    setAttrs(node, attrs);
    return node;
  }

  function setAttrs(node, attrs) {
    if (!attrs) return;
    for (const [key, value] of Object.entries(attrs)) {
      if (value === null || value === undefined || value === false) continue;
      if (key === 'text') node.textContent = String(value);
      else if (key.startsWith('on') && typeof value === 'function') {
        node.addEventListener(key.slice(2), value);
      } else node.setAttribute(key, value === true ? '' : String(value));
    }
  }

  function show(node, visible) {
    node.hidden = !visible;
  }

  function setText(node, text) {
    if (node.textContent !== text) node.textContent = text;
  }

  // ---------------------------------------------------------------- formatting

  const intFmt = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
  const compactFmt = new Intl.NumberFormat(undefined, { notation: 'compact', maximumFractionDigits: 1 });
  const dateTimeFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
  const shortFmt = new Intl.DateTimeFormat(undefined, {
    month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit',
  });
  const nyDateFmt = new Intl.DateTimeFormat('en-CA', {
    timeZone: 'America/New_York', year: 'numeric', month: '2-digit', day: '2-digit',
  });

  function fmtInt(n) {
    return n === null || n === undefined ? '—' : intFmt.format(n);
  }

  function fmtPrice(p) {
    if (!Number.isFinite(p)) return '—';
    const abs = Math.abs(p);
    const digits = abs >= 1000 ? 2 : abs >= 1 ? 2 : abs >= 0.01 ? 4 : 6;
    return p.toLocaleString(undefined, { minimumFractionDigits: digits, maximumFractionDigits: digits });
  }

  function fmtTime(iso) {
    if (!iso) return '—';
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? String(iso) : dateTimeFmt.format(d);
  }

  function fmtShortTime(iso) {
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? String(iso) : shortFmt.format(d);
  }

  function fmtAgo(iso) {
    const d = new Date(iso);
    const secs = Math.round((Date.now() - d.getTime()) / 1000);
    if (!Number.isFinite(secs)) return '';
    if (secs < 45) return 'just now';
    if (secs < 3600) return `${Math.round(secs / 60)} min ago`;
    if (secs < 86400) return `${Math.round(secs / 3600)} h ago`;
    return `${Math.round(secs / 86400)} d ago`;
  }

  function fmtDuration(secs) {
    if (secs === null || secs === undefined || !Number.isFinite(secs)) return '—';
    const s = Math.max(0, Math.round(secs));
    if (s < 60) return `${s} s`;
    if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
    return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  }

  /** The New York trading date of an instant, as YYYY-MM-DD. */
  function nyDate(iso) {
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? '' : nyDateFmt.format(d);
  }

  function localDate(d) {
    const pad = (n) => String(n).padStart(2, '0');
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  }

  /** Percent for display and for aria-valuenow: floored, so 100 means done. */
  function pct(progress) {
    const p = Number(progress && progress.percent);
    return Number.isFinite(p) ? Math.min(100, Math.max(0, Math.floor(p * 10) / 10)) : 0;
  }

  function symbolsSummary(symbols, max) {
    if (symbols.length <= max) return symbols.join(', ');
    return `${symbols.slice(0, max).join(', ')} +${symbols.length - max} more`;
  }

  const byteUnits = ['kB', 'MB', 'GB', 'TB', 'PB'];

  /** Bytes in decimal units: 950 B, 3.5 MB, 12 GB. */
  function fmtBytes(n) {
    if (n === null || n === undefined || !Number.isFinite(Number(n))) return '—';
    let value = Number(n);
    if (value < 1000) return `${intFmt.format(value)} B`;
    let unit = -1;
    do {
      value /= 1000;
      unit += 1;
    } while (value >= 999.95 && unit < byteUnits.length - 1);
    const digits = value < 9.995 ? 1 : 0;
    return `${value.toLocaleString(undefined, { minimumFractionDigits: digits, maximumFractionDigits: digits })} ${byteUnits[unit]}`;
  }

  function plural(n, one, many) {
    return `${fmtInt(n)} ${n === 1 ? one : many}`;
  }

  /** Whether a job (or a plan's spec) fetches by trading day rather than by symbol. */
  function isBulk(job) {
    return BULK.has(job.source);
  }

  /** What a job covers: its symbols, or "all tickers". */
  function jobSubject(job, max) {
    return job.universe === 'all' ? 'all tickers' : symbolsSummary(job.symbols, max);
  }

  /** A job's tasks: symbols, or days for the bulk sources. */
  function unitWord(job, n) {
    if (isBulk(job)) return n === 1 ? 'day' : 'days';
    return n === 1 ? 'symbol' : 'symbols';
  }

  /** A source's upstream calls: file downloads for Flat Files, requests otherwise. */
  function callsText(source, n) {
    return source === 'flatfiles' ? plural(n, 'download', 'downloads') : plural(n, 'request', 'requests');
  }

  /** The key of a task's row: its symbol or its day. */
  function taskKey(task) {
    return task.day ? `day:${task.day}` : `symbol:${task.symbol}`;
  }

  const weekdayFmt = new Intl.DateTimeFormat(undefined, {
    weekday: 'long', year: 'numeric', month: 'long', day: 'numeric', timeZone: 'UTC',
  });

  function fmtDay(day) {
    const d = new Date(`${day}T00:00:00Z`);
    return Number.isNaN(d.getTime()) ? String(day) : weekdayFmt.format(d);
  }

  // ---------------------------------------------------------------- API

  class ApiError extends Error {
    constructor(status, code, message, details) {
      super(message);
      this.status = status;
      this.code = code;
      this.details = details;
    }
  }

  function token() {
    try {
      return sessionStorage.getItem(TOKEN_KEY);
    } catch {
      return null;
    }
  }

  function authHeaders(extra) {
    const headers = new Headers(extra || {});
    const t = token();
    if (t) headers.set('Authorization', `Bearer ${t}`);
    return headers;
  }

  async function readError(res) {
    let body = null;
    try {
      body = await res.json();
    } catch {
      body = null;
    }
    const e = body && typeof body === 'object' ? body.error : null;
    if (e && typeof e.message === 'string') {
      return new ApiError(res.status, String(e.code || `http_${res.status}`), e.message, e.details);
    }
    return new ApiError(res.status, `http_${res.status}`, `${res.status} ${res.statusText || 'error'}`);
  }

  /** Calls the API; answers the JSON body or throws an ApiError (a 401 also asks for a token). */
  async function api(path, options = {}) {
    const headers = authHeaders(options.headers);
    headers.set('Accept', 'application/json');
    let res;
    try {
      res = await fetch(path, { ...options, headers, cache: 'no-store' });
    } catch (err) {
      setServerState('offline');
      throw new ApiError(0, 'network', `the server does not answer (${err.message})`);
    }
    setServerState('online');
    if (!res.ok) {
      const err = await readError(res);
      if (res.status === 401) askForToken(err);
      throw err;
    }
    return res.status === 204 ? null : res.json();
  }

  function setServerState(which) {
    const node = $('server-state');
    node.dataset.state = which;
    setText(node, which === 'online' ? 'connected' : which === 'offline' ? 'server unreachable' : which);
  }

  // ---------------------------------------------------------------- token

  function askForToken(err) {
    const hadToken = Boolean(token());
    const message = $('auth-error');
    if (hadToken) {
      setText(message, `The server refused the token: ${err.message}`);
      show(message, true);
    } else {
      show(message, false);
    }
    if (!state.authWaiting) {
      state.authWaiting = true;
      stopAll();
      show($('auth'), true);
      $('main').setAttribute('inert', '');
      $('auth-token').focus();
    }
  }

  function onTokenSubmit(event) {
    event.preventDefault();
    const value = $('auth-token').value.trim();
    if (!value) {
      setText($('auth-error'), 'Enter the token the server was started with (BACKFILL_API_TOKEN).');
      show($('auth-error'), true);
      return;
    }
    try {
      sessionStorage.setItem(TOKEN_KEY, value);
    } catch {
      // Without session storage the token lives until the page is closed.
    }
    $('auth-token').value = '';
    state.authWaiting = false;
    show($('auth'), false);
    $('main').removeAttribute('inert');
    start();
  }

  function forgetToken() {
    try {
      sessionStorage.removeItem(TOKEN_KEY);
    } catch {
      // Nothing stored.
    }
    window.location.reload();
  }

  // ---------------------------------------------------------------- start-up

  async function start() {
    show($('forget-token'), Boolean(token()));
    try {
      const info = await api('/api/v1/info');
      setText($('version'), `v${info.version}`);
      show($('demo-banner'), info.demo === true);
      document.body.classList.toggle('is-demo', info.demo === true);
    } catch (err) {
      if (err.status === 401) return;
    }
    schedulePlan();
    await Promise.all([refreshJobs(), refreshAutomation()]);
    scheduleRefresh();
  }

  function stopAll() {
    clearTimeout(state.refreshTimer);
    state.refreshTimer = null;
    for (const ctrl of state.streams.values()) ctrl.abort();
    state.streams.clear();
  }

  function scheduleRefresh() {
    clearTimeout(state.refreshTimer);
    state.refreshTimer = setTimeout(async () => {
      if (!document.hidden && !state.authWaiting) await Promise.all([refreshJobs(), refreshAutomation()]);
      if (!state.authWaiting) scheduleRefresh();
    }, REFRESH_MS);
  }

  // ---------------------------------------------------------------- recent jobs

  async function refreshJobs() {
    let body;
    try {
      body = await api(`/api/v1/backfill/recent?limit=${RECENT_LIMIT}`);
    } catch (err) {
      if (err.status !== 401) {
        setText($('jobs-error'), `Could not load the jobs: ${err.message}`);
        show($('jobs-error'), true);
      }
      return;
    }
    show($('jobs-error'), false);
    const next = new Map();
    for (const summary of body.jobs) {
      const known = state.jobs.get(summary.job.id);
      // A stream may have seen a newer state than this list.
      next.set(summary.job.id, known && isNewer(known, summary) ? known : summary);
    }
    // Keep a just-submitted job that the list does not show yet.
    for (const [id, summary] of state.jobs) {
      if (!next.has(id) && id === state.selected) next.set(id, summary);
    }
    state.jobs = new Map([...next.entries()].sort((a, b) => cmpCreated(b[1], a[1])));
    renderJobs();
    ensureStreams();
    // The list may have seen the shown job end before its stream said so (which then stops):
    // read the job again, so that its view and its buttons are not left behind.
    const listed = state.selected && state.detail ? state.jobs.get(state.selected) : null;
    if (listed && listed.job.status !== state.detail.job.status) await loadDetail(state.selected);
  }

  function cmpCreated(a, b) {
    return String(a.job.created_at).localeCompare(String(b.job.created_at));
  }

  function isNewer(a, b) {
    if (TERMINAL.has(a.job.status) && !TERMINAL.has(b.job.status)) return true;
    return pct(a.progress) > pct(b.progress) && a.job.status === b.job.status;
  }

  function renderJobs() {
    const list = $('job-list');
    show($('jobs-empty'), state.jobs.size === 0);
    for (const [id, row] of state.rows) {
      if (!state.jobs.has(id)) {
        row.li.remove();
        state.rows.delete(id);
      }
    }
    for (const [id, summary] of state.jobs) {
      let row = state.rows.get(id);
      if (!row) {
        row = createJobRow(id);
        state.rows.set(id, row);
      }
      updateJobRow(row, summary);
      list.append(row.li);
    }
  }

  function createJobRow(id) {
    const status = h('span', { class: 'pill' });
    const symbols = h('span', { class: 'job-symbols' });
    const timeframe = h('span', { class: 'tag' });
    const source = h('span', { class: 'tag tag-source' });
    const range = h('span', { class: 'muted' });
    const created = h('span', { class: 'muted' });
    const fill = h('span', { class: 'bar-fill' });
    const bar = h('span', {
      class: 'bar', role: 'progressbar', 'aria-valuemin': '0', 'aria-valuemax': '100', 'aria-valuenow': '0',
    }, fill);
    const percent = h('span', { class: 'bar-label' });
    const counts = h('span', { class: 'muted job-counts' });
    const button = h('button', { type: 'button', class: 'job-open', onclick: () => selectJob(id) },
      h('span', { class: 'job-line' }, status, symbols, timeframe, source),
      h('span', { class: 'job-line' }, range, created),
      h('span', { class: 'job-progress' }, bar, percent),
      counts);
    const li = h('li', { class: 'job', 'data-job-id': id }, button);
    return { li, button, status, symbols, timeframe, source, range, created, bar, fill, percent, counts };
  }

  function updateJobRow(row, summary) {
    const { job, progress } = summary;
    const p = pct(progress);
    row.li.dataset.status = job.status;
    row.li.classList.toggle('selected', job.id === state.selected);
    row.button.setAttribute('aria-pressed', job.id === state.selected ? 'true' : 'false');
    row.status.className = `pill st-${job.status}`;
    setText(row.status, STATUS_LABEL[job.status] || job.status);
    setText(row.symbols, jobSubject(job, 4));
    row.symbols.title = job.universe === 'all' ? 'Every ticker the source has each day' : job.symbols.join(', ');
    row.symbols.classList.toggle('is-all', job.universe === 'all');
    setText(row.timeframe, job.timeframe);
    const source = job.source || 'rest';
    setText(row.source, source);
    row.source.dataset.source = source;
    row.source.title = job.source_reason ? `Source: ${job.source_reason}` : `Source: ${source}`;
    setText(row.range, `${nyDate(job.range.from)} → ${nyDate(job.range.to)}`);
    setText(row.created, fmtAgo(job.created_at));
    row.created.title = fmtTime(job.created_at);
    setBar(row.bar, row.fill, p, job.status);
    row.bar.setAttribute('aria-label', `Progress of the job on ${jobSubject(job, 3)}`);
    setText(row.percent, `${Math.floor(p)} %`);
    setText(row.counts, `${fmtInt(progress.symbols_done)}/${fmtInt(progress.symbols_total)} `
      + `${unitWord(job, progress.symbols_total)}`
      + `${progress.symbols_failed ? ` · ${fmtInt(progress.symbols_failed)} failed` : ''}`
      + ` · ${fmtInt(progress.candles_stored)} candles`);
  }

  function setBar(bar, fill, p, status) {
    bar.setAttribute('aria-valuenow', String(p));
    bar.dataset.status = status;
    fill.style.width = `${p}%`;
  }

  // ---------------------------------------------------------------- progress streams

  function isActive(id) {
    const summary = state.jobs.get(id) || (state.detail && state.detail.job.id === id ? state.detail : null);
    return Boolean(summary) && !TERMINAL.has(summary.job.status);
  }

  /** Streams the selected job and the newest running ones, closing the others. */
  function ensureStreams() {
    if (state.authWaiting) return;
    const wanted = [];
    if (state.selected && isActive(state.selected)) wanted.push(state.selected);
    for (const id of state.jobs.keys()) {
      if (wanted.length >= MAX_STREAMS) break;
      if (!wanted.includes(id) && isActive(id)) wanted.push(id);
    }
    for (const [id, ctrl] of state.streams) {
      if (!wanted.includes(id)) {
        ctrl.abort();
        state.streams.delete(id);
      }
    }
    for (const id of wanted) {
      if (!state.streams.has(id)) followJob(id);
    }
  }

  async function followJob(id) {
    const ctrl = new AbortController();
    state.streams.set(id, ctrl);
    let delay = 1000;
    let ended = false;
    try {
      while (!ctrl.signal.aborted && !ended) {
        try {
          const res = await fetch(`/api/v1/backfill/${encodeURIComponent(id)}/events`, {
            headers: authHeaders({ Accept: 'text/event-stream' }),
            signal: ctrl.signal,
            cache: 'no-store',
          });
          if (!res.ok) {
            const err = await readError(res);
            if (res.status === 401) askForToken(err);
            if (res.status < 500) return;
            throw err;
          }
          setServerState('online');
          await readEvents(res.body, (event) => {
            if (event.event === 'progress' || event.event === 'done') {
              delay = 1000;
              onStatus(JSON.parse(event.data));
              countEvent(id, event.event);
              if (event.event === 'done') ended = true;
            } else if (event.event === 'error') {
              ended = true;
              let message = 'the job can no longer be read';
              try {
                message = JSON.parse(event.data).error.message || message;
              } catch {
                // Keep the generic message.
              }
              if (id === state.selected) showDetailError(message);
            }
          });
        } catch (err) {
          if (ctrl.signal.aborted) return;
          if (err instanceof ApiError === false) setServerState('offline');
        }
        if (!ended && !ctrl.signal.aborted) {
          await sleep(delay, ctrl.signal);
          delay = Math.min(delay * 2, 15000);
        }
      }
    } finally {
      if (state.streams.get(id) === ctrl) state.streams.delete(id);
      if (ended) {
        refreshJobs();
      }
    }
  }

  /** Counts a job's stream events on its row (data-stream-events, data-stream-done). */
  function countEvent(id, name) {
    const row = state.rows.get(id);
    if (!row) return;
    row.li.dataset.streamEvents = String(Number(row.li.dataset.streamEvents || 0) + 1);
    if (name === 'done') row.li.dataset.streamDone = 'true';
  }

  function sleep(ms, signal) {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      signal.addEventListener('abort', () => {
        clearTimeout(timer);
        resolve();
      }, { once: true });
    });
  }

  /**
   * Reads a text/event-stream body and calls onEvent({event, data}) for every complete event
   * (the framing of the HTML standard: lines, "field: value", a blank line ends an event).
   */
  async function readEvents(body, onEvent) {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    let eventName = '';
    let data = [];
    const line = (text) => {
      if (text === '') {
        if (data.length > 0) onEvent({ event: eventName || 'message', data: data.join('\n') });
        eventName = '';
        data = [];
        return;
      }
      if (text.startsWith(':')) return;
      const colon = text.indexOf(':');
      const field = colon < 0 ? text : text.slice(0, colon);
      let value = colon < 0 ? '' : text.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'event') eventName = value;
      else if (field === 'data') data.push(value);
    };
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      for (;;) {
        const match = /\r\n|\r|\n/.exec(buffer);
        if (!match) break;
        // A lone CR at the end may be the first half of CRLF: wait for more.
        if (match[0] === '\r' && match.index === buffer.length - 1) break;
        line(buffer.slice(0, match.index));
        buffer = buffer.slice(match.index + match[0].length);
      }
    }
  }

  /** A status body from a stream, a submission, a cancel or a retry. */
  function onStatus(body) {
    const id = body.job.id;
    const summary = { job: body.job, progress: body.progress };
    state.jobs.set(id, summary);
    const row = state.rows.get(id);
    if (row) updateJobRow(row, summary);
    else {
      state.jobs = new Map([...state.jobs.entries()].sort((a, b) => cmpCreated(b[1], a[1])));
      renderJobs();
    }
    if (id === state.selected) renderDetail(body);
  }

  // ---------------------------------------------------------------- job detail

  async function selectJob(id) {
    if (state.selected !== id) {
      state.selected = id;
      state.detail = null;
      state.detailRows.clear();
      $('detail-body').replaceChildren();
      delete $('job-detail').dataset.status;
      show($('detail-error'), false);
      updateJobActions(null);
    }
    for (const [rowId, row] of state.rows) {
      row.li.classList.toggle('selected', rowId === id);
      row.button.setAttribute('aria-pressed', rowId === id ? 'true' : 'false');
    }
    const section = $('job-detail');
    section.dataset.jobId = id;
    show(section, true);
    await loadDetail(id);
    ensureStreams();
  }

  /** Reads the shown job's status body and shows it. */
  async function loadDetail(id) {
    try {
      const body = await api(`/api/v1/backfill/status/${encodeURIComponent(id)}`);
      if (state.selected === id) onStatus(body);
    } catch (err) {
      if (state.selected === id && err.status !== 401) showDetailError(`Could not load the job: ${err.message}`);
    }
  }

  function closeDetail() {
    state.selected = null;
    state.detail = null;
    state.detailRows.clear();
    show($('job-detail'), false);
    delete $('job-detail').dataset.jobId;
    for (const row of state.rows.values()) {
      row.li.classList.remove('selected');
      row.button.setAttribute('aria-pressed', 'false');
    }
    ensureStreams();
  }

  function showDetailError(message) {
    setText($('detail-error'), message);
    show($('detail-error'), true);
  }

  function renderDetail(body) {
    const { job, progress, tasks } = body;
    const container = $('detail-body');
    let view = state.detail && state.detail.view;
    if (!view || view.id !== job.id) view = buildDetail(container, job);
    state.detail = { ...body, view };
    const p = pct(progress);
    const source = job.source || 'rest';

    setText($('detail-title'), `Job ${job.id.slice(0, 8)}`);
    $('job-detail').dataset.status = job.status;
    $('detail-title').title = job.id;
    view.status.className = `pill st-${job.status}`;
    setText(view.status, STATUS_LABEL[job.status] || job.status);
    setText(view.spec, [
      jobSubject(job, 8),
      job.timeframe,
      `${nyDate(job.range.from)} → ${nyDate(job.range.to)}`,
      job.adjusted ? 'adjusted' : 'raw prices',
      `mode ${job.mode}`,
    ].join(' · '));
    setText(view.source, source);
    view.source.dataset.source = source;
    setText(view.sourceReason, job.source_reason || '');
    setText(view.times, `created ${fmtTime(job.created_at)}`
      + (job.started_at ? ` · started ${fmtTime(job.started_at)}` : '')
      + (job.finished_at ? ` · finished ${fmtTime(job.finished_at)}` : ''));
    setText(view.jobError, job.error || '');
    show(view.jobError, Boolean(job.error));
    setBar(view.bar, view.fill, p, job.status);
    setText(view.percent, `${Math.floor(p)} %`);

    const stats = [
      `${fmtInt(progress.symbols_done)} / ${fmtInt(progress.symbols_total)}`,
      fmtInt(progress.symbols_failed),
      `${fmtInt(progress.symbols_running)} / ${fmtInt(progress.symbols_queued)}`,
      fmtInt(progress.candles_stored),
      fmtInt(progress.requests),
      fmtBytes(progress.bytes),
      fmtInt(progress.pages),
      progress.candles_per_second ? `${compactFmt.format(progress.candles_per_second)}/s` : '—',
      fmtDuration(progress.elapsed_seconds),
      TERMINAL.has(job.status) ? '—' : fmtDuration(progress.eta_seconds),
    ];
    stats.forEach((value, i) => setText(view.stats[i], value));
    view.statsBox.classList.toggle('has-failures', progress.symbols_failed > 0);
    updateJobActions(body);

    const seen = new Set();
    for (const task of tasks) {
      const key = taskKey(task);
      seen.add(key);
      let row = state.detailRows.get(key);
      if (!row) {
        row = task.day ? createDayRow(task.day) : createSymbolRow(task.symbol, job);
        state.detailRows.set(key, row);
      }
      row.update(row, task);
      view.tbody.append(row.tr);
    }
    for (const [key, row] of state.detailRows) {
      if (!seen.has(key)) {
        row.tr.remove();
        state.detailRows.delete(key);
      }
    }
  }

  function buildDetail(container, job) {
    state.detailRows.clear();
    const bulk = isBulk(job);
    const status = h('span', { class: 'pill' });
    const spec = h('p', { class: 'detail-spec' });
    const source = h('span', { class: 'tag tag-source' });
    const sourceReason = h('span', { class: 'source-reason' });
    const times = h('p', { class: 'muted small-text' });
    const jobError = h('p', { class: 'error-text', hidden: true });
    const fill = h('span', { class: 'bar-fill' });
    const bar = h('span', {
      class: 'bar bar-lg', role: 'progressbar', 'aria-valuemin': '0', 'aria-valuemax': '100',
      'aria-valuenow': '0', 'aria-label': 'Progress of this job',
    }, fill);
    const percent = h('span', { class: 'bar-label' });
    const labels = [bulk ? 'Days done' : 'Symbols done', 'Failed', 'Running / queued', 'Candles stored',
      job.source === 'flatfiles' ? 'Downloads' : 'Requests', 'Received', 'Pages', 'Rate', 'Elapsed', 'ETA'];
    const stats = labels.map(() => h('dd'));
    const statsBox = h('dl', { class: 'stats' },
      labels.map((label, i) => h('div', { class: 'stat' }, h('dt', { text: label }), stats[i])));
    const columns = bulk
      ? ['Day', 'Status', 'Candles', 'Requests', 'Bytes', 'File', 'Tries', 'Note']
      : ['Symbol', 'Status', 'Candles', 'Pages', 'Requests', 'Bytes', 'Tries', 'Stored through', 'Last error', ''];
    const titles = {
      Requests: job.source === 'flatfiles' ? 'File downloads and look-ups' : 'Upstream requests, retries included',
      Bytes: 'Bytes received from upstream',
      File: 'How far into the day’s file the stored rows reach',
      Tries: 'Attempts: how many times a worker started this task',
    };
    const tbody = h('tbody');
    const table = h('div', { class: 'table-wrap' }, h('table', { class: `tasks ${bulk ? 'tasks-days' : 'tasks-symbols'}` },
      h('caption', { class: 'sr-only', text: bulk ? 'Trading days of this job' : 'Symbols of this job' }),
      h('thead', null, h('tr', null,
        columns.map((t, i) => h('th', {
          scope: 'col', class: i >= 2 && i <= 6 ? 'num' : null, title: titles[t], text: t,
        })))),
      tbody));
    container.replaceChildren(
      h('div', { class: 'detail-head' }, status, spec),
      h('p', { class: 'detail-source' }, h('span', { class: 'sr-only', text: 'Source: ' }), source, sourceReason),
      times,
      jobError,
      h('div', { class: 'job-progress' }, bar, percent),
      statsBox,
      table,
    );
    return {
      id: job.id, status, spec, source, sourceReason, times, jobError, bar, fill, percent, stats, statsBox, tbody,
    };
  }

  function createSymbolRow(symbol, job) {
    const status = h('span', { class: 'pill' });
    const cells = {
      candles: h('td', { class: 'num' }),
      pages: h('td', { class: 'num' }),
      requests: h('td', { class: 'num' }),
      bytes: h('td', { class: 'num' }),
      attempts: h('td', { class: 'num' }),
      checkpoint: h('td', { class: 'muted' }),
      error: h('td', { class: 'task-error' }),
    };
    const chart = h('button', {
      type: 'button',
      class: 'secondary small',
      'data-symbol': symbol,
      'aria-label': `Chart of ${symbol}`,
      onclick: () => openChart(symbol, job),
    }, 'Chart');
    const tr = h('tr', { 'data-symbol': symbol },
      h('th', { scope: 'row', class: 'mono', text: symbol }),
      h('td', null, status),
      cells.candles, cells.pages, cells.requests, cells.bytes, cells.attempts, cells.checkpoint, cells.error,
      h('td', { class: 'cell-actions' }, chart));
    return { tr, status, ...cells, update: updateSymbolRow };
  }

  function updateSymbolRow(row, task) {
    setTaskStatus(row, task);
    setText(row.candles, fmtInt(task.candles_stored));
    setText(row.pages, fmtInt(task.pages));
    setText(row.requests, fmtInt(task.requests));
    setText(row.bytes, fmtBytes(task.bytes));
    setText(row.attempts, fmtInt(task.attempts));
    setText(row.checkpoint, task.checkpoint ? fmtShortTime(task.checkpoint) : '—');
    row.checkpoint.title = task.checkpoint ? fmtTime(task.checkpoint) : '';
    setText(row.error, withNextAttempt(task, task.last_error || '') || '—');
    row.error.title = task.last_error || '';
    row.error.classList.toggle('has-error', Boolean(task.last_error));
  }

  function createDayRow(day) {
    const status = h('span', { class: 'pill' });
    const cells = {
      candles: h('td', { class: 'num' }),
      requests: h('td', { class: 'num' }),
      bytes: h('td', { class: 'num' }),
      file: h('td', { class: 'num' }),
      attempts: h('td', { class: 'num' }),
      note: h('td', { class: 'task-note' }),
    };
    const tr = h('tr', { 'data-day': day },
      h('th', { scope: 'row', class: 'mono', text: day, title: fmtDay(day) }),
      h('td', null, status),
      cells.candles, cells.requests, cells.bytes, cells.file, cells.attempts, cells.note);
    return { tr, status, ...cells, update: updateDayRow };
  }

  function updateDayRow(row, task) {
    setTaskStatus(row, task);
    setText(row.candles, fmtInt(task.candles_stored));
    row.candles.title = `${fmtInt(task.rows_done)} rows read, ${fmtInt(task.candles_fetched)} bars received`;
    setText(row.requests, fmtInt(task.requests));
    setText(row.bytes, fmtBytes(task.bytes));
    setText(row.attempts, fmtInt(task.attempts));
    // How far into the day's file the stored rows reach: a percent while it runs, its size after.
    const size = task.file_size;
    let file = '—';
    let fileTitle = '';
    if (size) {
      const offset = Math.min(task.file_offset || 0, size);
      fileTitle = `${fmtBytes(offset)} of ${fmtBytes(size)}`;
      file = task.status === 'running' ? `${Math.floor((offset / size) * 100)} %` : fmtBytes(size);
    }
    setText(row.file, file);
    row.file.title = fileTitle;
    // A note says how a day ended when that is not an error; an error matters more unless the
    // day succeeded after it.
    const error = task.last_error || '';
    const showError = Boolean(error) && !(task.status === 'succeeded' && task.note);
    const text = showError ? withNextAttempt(task, error) : (task.note || '');
    setText(row.note, text || '—');
    row.note.title = showError ? error : (task.note || '');
    row.note.classList.toggle('has-error', showError);
    row.note.classList.toggle('has-note', !showError && Boolean(task.note));
  }

  function setTaskStatus(row, task) {
    row.tr.dataset.status = task.status;
    row.status.className = `pill st-${task.status}`;
    setText(row.status, STATUS_LABEL[task.status] || task.status);
  }

  /** A task's error, followed by when it will be tried again. */
  function withNextAttempt(task, error) {
    if (task.next_attempt_at && task.status === 'queued') {
      return `${error}${error ? ' · ' : ''}next attempt ${fmtTime(task.next_attempt_at)}`;
    }
    return error;
  }

  /**
   * Why the API would refuse to cancel or retry the job of a status body (null: it allows it),
   * as its handlers decide by the domain's state machine: only a queued or running job can be
   * cancelled; a job can be retried once it ended failed, cancelled or with errors, and only if
   * one of its symbols (or days) failed or was cancelled, so that there is something to requeue.
   */
  function refusals(body) {
    const { job, tasks } = body;
    const label = STATUS_LABEL[job.status] || job.status;
    const cancel = TERMINAL.has(job.status)
      ? `The job already ended (${label}): only a queued or running job can be cancelled.`
      : null;
    let retry = null;
    if (!RETRYABLE.has(job.status)) {
      retry = job.status === 'succeeded'
        ? 'The job succeeded: nothing to retry.'
        : `The job is ${label}: it can be retried once it has ended.`;
    } else if (!tasks.some((t) => t.status === 'failed' || t.status === 'cancelled')) {
      retry = `No ${isBulk(job) ? 'day' : 'symbol'} failed or was cancelled: nothing to retry.`;
    }
    return { cancel, retry };
  }

  /** Enables Cancel and Retry where the API allows them; a disabled button says why. */
  function updateJobActions(body) {
    const why = body ? refusals(body) : { cancel: 'Loading the job…', retry: 'Loading the job…' };
    for (const [id, reason] of [['d-cancel', why.cancel], ['d-retry', why.retry]]) {
      const button = $(id);
      button.disabled = state.actionBusy || reason !== null;
      button.dataset.allowed = String(reason === null);
      button.title = reason || '';
    }
  }

  async function jobAction(action) {
    const id = state.selected;
    if (!id) return;
    state.actionBusy = true;
    updateJobActions(state.detail);
    show($('detail-error'), false);
    try {
      const body = await api(`/api/v1/backfill/${encodeURIComponent(id)}/${action}`, { method: 'POST' });
      onStatus(body);
      ensureStreams();
      refreshJobs();
    } catch (err) {
      if (err.status !== 401) showDetailError(`Could not ${action} the job: ${err.message}`);
    } finally {
      state.actionBusy = false;
      updateJobActions(state.detail && state.detail.job.id === state.selected ? state.detail : null);
    }
  }

  // ---------------------------------------------------------------- submission

  async function onSubmit(event) {
    event.preventDefault();
    const button = $('f-submit');
    const errorBox = $('form-error');
    show(errorBox, false);
    show($('form-ok'), false);
    const request = formRequest();
    button.disabled = true;
    setText(button, 'Starting…');
    try {
      const body = await api('/api/v1/backfill', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(request),
      });
      const ok = $('form-ok');
      setText(ok, queuedMessage(body));
      ok.dataset.jobId = body.job.id;
      show(ok, true);
      onStatus(body);
      await selectJob(body.job.id);
    } catch (err) {
      if (err.status !== 401) showFormError(err);
    } finally {
      button.disabled = false;
      setText(button, 'Start backfill');
    }
  }

  /** The request the form describes: symbols or the whole market, and a source if one is picked. */
  function formRequest() {
    const all = $('f-all').checked;
    const request = {};
    if (all) request.universe = 'all';
    else request.symbols = $('f-symbols').value.split(/[,;\r\n]+/).map((x) => x.trim()).filter(Boolean);
    Object.assign(request, {
      timeframe: $('f-timeframe').value,
      from: $('f-from').value,
      to: $('f-to').value,
      adjusted: $('f-adjusted').checked,
      mode: $('f-mode').value,
    });
    // No choice leaves it to the server: rest, or auto for the whole market.
    if ($('f-source').value) request.source = $('f-source').value;
    return request;
  }

  function queuedMessage(body) {
    const { job, tasks } = body;
    const head = `Job ${job.id.slice(0, 8)} queued: `;
    if (!isBulk(job)) {
      return `${head}${plural(job.symbols.length, 'symbol', 'symbols')} at ${job.timeframe}.`;
    }
    const subject = job.universe === 'all' ? 'all tickers' : plural(job.symbols.length, 'symbol', 'symbols');
    return `${head}${subject}, ${plural(tasks.length, 'day', 'days')} at ${job.timeframe} from ${job.source}.`;
  }

  function onAllTickers() {
    const all = $('f-all').checked;
    const symbols = $('f-symbols');
    if (all) {
      state.savedSymbols = symbols.value;
      symbols.value = '';
    } else if (!symbols.value) {
      symbols.value = state.savedSymbols;
    }
    symbols.disabled = all;
    symbols.placeholder = all ? 'every ticker of the source' : 'AAPL, MSFT, X:BTCUSD';
  }

  // ---------------------------------------------------------------- plan preview

  function schedulePlan() {
    clearTimeout(state.planTimer);
    state.planTimer = setTimeout(loadPlan, PLAN_DEBOUNCE_MS);
  }

  /** Asks the server what the form's job would be and cost, once the form says enough. */
  async function loadPlan() {
    const seq = ++state.planSeq;
    const request = formRequest();
    const box = $('plan');
    const body = $('plan-body');
    const ready = (request.universe === 'all' || request.symbols.length > 0) && request.from && request.to;
    if (!ready) {
      box.dataset.state = 'idle';
      delete box.dataset.code;
      delete box.dataset.request;
      body.removeAttribute('aria-busy');
      body.replaceChildren(h('p', { class: 'plan-empty' }, 'Enter symbols (or tick ', h('em', { text: 'All tickers' }),
        ') and dates to see what each source would cost.'));
      return;
    }
    if (state.authWaiting) return;
    box.dataset.state = 'loading';
    body.setAttribute('aria-busy', 'true');
    let plan;
    try {
      plan = await api('/api/v1/backfill/plan', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(request),
      });
    } catch (err) {
      if (seq !== state.planSeq) return;
      body.removeAttribute('aria-busy');
      // A 401 asks for the token; the plan is asked again once it is given.
      if (err.status === 401) box.dataset.state = 'idle';
      else renderPlanError(err);
      // What the plan shown answers (the tests compare it with the API's own answer).
      box.dataset.request = JSON.stringify(request);
      return;
    }
    if (seq !== state.planSeq) return;
    body.removeAttribute('aria-busy');
    renderPlan(plan);
    box.dataset.request = JSON.stringify(request);
  }

  function renderPlan(plan) {
    const { spec, tasks, costs } = plan;
    const box = $('plan');
    box.dataset.state = 'ready';
    box.dataset.source = spec.source;
    delete box.dataset.code;
    const rows = [];
    for (const cost of costs) {
      const chosen = cost.source === spec.source;
      const rowState = chosen ? 'chosen' : cost.unavailable ? 'unavailable' : 'available';
      // A source that cannot serve the job at all (the rest source for the whole market) costs nothing.
      const none = Boolean(cost.unavailable) && cost.calls === 0;
      rows.push(h('tr', {
        class: `plan-row plan-row-${rowState}`,
        'data-source': cost.source,
        'data-state': rowState,
        'data-calls': cost.calls,
        'data-bytes': cost.estimated_bytes,
      },
        h('th', { scope: 'row', class: 'mono', text: cost.source }),
        h('td', { class: 'num plan-calls', text: none ? '—' : callsText(cost.source, cost.calls) }),
        h('td', {
          class: 'num plan-bytes',
          text: none ? '—' : fmtBytes(cost.estimated_bytes),
          title: none ? null : `about ${fmtInt(cost.estimated_bytes)} bytes`,
        })));
      // Below the chosen source, why it was chosen; below one that cannot serve the job, why not.
      const why = chosen ? spec.source_reason : cost.unavailable;
      if (why || rowState !== 'available') {
        rows.push(h('tr', { class: `plan-why plan-why-${rowState}`, 'data-why': cost.source },
          h('td', { colspan: '3' },
            h('span', { class: `plan-pill plan-${rowState}`, text: rowState }),
            ' ',
            h('span', { class: 'plan-why-text', text: why || '' }))));
      }
    }
    const unit = isBulk(spec) ? 'day' : 'symbol';
    $('plan-body').replaceChildren(
      h('p', { class: 'plan-summary' }, `${plural(tasks, unit, `${unit}s`)} from `, h('strong', { text: spec.source }),
        ` · ${spec.universe === 'all' ? 'all tickers' : plural(spec.symbols.length, 'symbol', 'symbols')}`),
      h('table', { class: 'plan-table' },
        h('caption', { class: 'sr-only', text: 'What each source would cost this job' }),
        h('thead', null, h('tr', null, ['Source', 'Calls', 'Est. size'].map((t, i) => h('th', {
          scope: 'col', class: i > 0 ? 'num' : null, text: t,
        })))),
        h('tbody', null, rows)),
    );
  }

  function renderPlanError(err) {
    const box = $('plan');
    box.dataset.state = 'error';
    box.dataset.code = err.code;
    delete box.dataset.source;
    $('plan-body').replaceChildren(h('p', { class: 'plan-error' },
      h('strong', { text: err.status ? `Not possible (${err.status} ${err.code})` : 'No plan' }),
      h('span', { class: 'plan-error-message', text: err.message })));
  }

  function showFormError(err) {
    const box = $('form-error');
    const parts = [h('p', { class: 'form-error-title' },
      h('strong', { text: err.status ? `Rejected (${err.status} ${err.code})` : 'Not sent' })),
    h('p', { class: 'form-error-message', text: err.message })];
    const bad = err.details && Array.isArray(err.details.symbols) ? err.details.symbols : [];
    if (bad.length > 0) {
      parts.push(h('ul', { class: 'form-error-list' }, bad.map((item) => h('li', null,
        h('code', { text: String(item.input) }), ` — ${String(item.reason)}`))));
    }
    box.dataset.code = err.code;
    box.replaceChildren(...parts);
    show(box, true);
  }

  // ---------------------------------------------------------------- chart

  function openChart(symbol, job) {
    $('c-symbol').value = symbol;
    const tf = $('c-timeframe');
    if (![...tf.options].some((o) => o.value === job.timeframe)) {
      tf.append(h('option', { value: job.timeframe, text: job.timeframe }));
    }
    tf.value = job.timeframe;
    tf.dispatchEvent(new Event('change'));
    $('c-from').value = nyDate(job.range.from);
    $('c-to').value = nyDate(job.range.to);
    $('c-adjusted').checked = job.adjusted;
    loadChart();
    $('chart-card').scrollIntoView({ behavior: 'smooth', block: 'start' });
  }

  const UNIT_MS = {
    s: 1e3, m: 6e4, h: 36e5, d: 864e5, w: 6048e5, mo: 2629746e3, q: 7889238e3, y: 31556952e3,
  };

  /** A timeframe's name (`5m`, `1h`, `1mo`) read: its length and whether its bars are intraday. */
  function parseTimeframe(name) {
    const m = /^(\d+)(s|m|h|d|w|mo|q|y)$/.exec(name);
    if (!m) return null;
    const n = Number(m[1]);
    return { n, unit: m[2], ms: n * UNIT_MS[m[2]], intraday: ['s', 'm', 'h'].includes(m[2]) };
  }

  /**
   * Whether the API builds `target` bars from stored `source` bars (the domain's Resampler):
   * intraday targets are a whole number (2 or more) of intraday source bars and divide a day;
   * calendar targets are 1d (from intraday bars), 1w, 1mo, 1q or 1y; regular hours need intraday
   * source bars.
   */
  function canResample(source, target, hours) {
    const s = parseTimeframe(source);
    const t = parseTimeframe(target);
    if (!s || !t || !(s.intraday || (s.unit === 'd' && s.n === 1))) return false;
    if (hours === 'regular' && !s.intraday) return false;
    if (t.intraday) return s.intraday && t.ms > s.ms && t.ms % s.ms === 0 && UNIT_MS.d % t.ms === 0;
    if (t.n !== 1) return false;
    return t.unit === 'd' ? s.intraday : true;
  }

  /**
   * The bars the chart shows for a stored series: the stored ones if they fit, otherwise the
   * finest of CHART_STEPS resampled from them whose bars over `span` (the stored coverage in the
   * range, in ms; null when unknown) fit in CHART_MAX; the coarsest when none does. Regular hours
   * always resample.
   */
  function chartBars(stored, hours, span) {
    const regular = hours === 'regular' && canResample(stored, '1d', 'regular');
    const candidates = (regular ? [] : [stored])
      .concat(CHART_STEPS.filter((t) => canResample(stored, t, regular ? 'regular' : 'extended')));
    const fits = (tf) => span === null || Math.ceil(span / parseTimeframe(tf).ms) <= CHART_MAX;
    const timeframe = candidates.find(fits) || candidates[candidates.length - 1] || stored;
    return {
      timeframe,
      source: timeframe === stored ? null : stored,
      hours: timeframe === stored ? null : (regular ? 'regular' : 'extended'),
    };
  }

  const nyOffsetFmt = new Intl.DateTimeFormat('en-US', { timeZone: 'America/New_York', timeZoneName: 'shortOffset' });

  /** The instant a New York date (YYYY-MM-DD) begins, in ms; NaN for a bad date. */
  function nyMidnight(day) {
    const utc = Date.parse(`${day}T00:00:00Z`);
    if (Number.isNaN(utc)) return NaN;
    const name = nyOffsetFmt.formatToParts(new Date(utc + 12 * 36e5)).find((p) => p.type === 'timeZoneName');
    const m = /GMT([+-])(\d+)(?::(\d+))?/.exec(name ? name.value : '');
    const minutes = m ? (m[1] === '-' ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3] || 0)) : -300;
    return utc - minutes * 6e4;
  }

  /** The date after a YYYY-MM-DD date. */
  function nextDay(day) {
    const t = Date.parse(`${day}T00:00:00Z`);
    return Number.isNaN(t) ? day : new Date(t + UNIT_MS.d).toISOString().slice(0, 10);
  }

  /**
   * How long the stored series covers within the chart's dates, in ms (from its coverage);
   * null when the coverage cannot be read.
   */
  async function coveredSpan(symbol, timeframe, adjusted, from, to) {
    let body;
    try {
      const q = new URLSearchParams({ timeframe, adjusted: String(adjusted) });
      body = await api(`/api/v1/candles/${encodeURIComponent(symbol)}/coverage?${q}`);
    } catch (err) {
      if (err.status === 401) throw err;
      return null;
    }
    const lo = from ? nyMidnight(from) : -Infinity;
    const hi = to ? nyMidnight(nextDay(to)) : Date.now();
    let span = 0;
    for (const iv of body.intervals) {
      const a = Math.max(Number.isNaN(lo) ? -Infinity : lo, Date.parse(iv.from));
      const b = Math.min(Number.isNaN(hi) ? Infinity : hi, Date.parse(iv.to) + 1);
      if (b > a) span += b - a;
    }
    return span;
  }

  /** What the chart shows: "5m bars resampled from 1m" or "1h bars as stored". */
  function basisText(chart) {
    if (!chart.source) return `${chart.timeframe} bars as stored`;
    return `${chart.timeframe} bars resampled from ${chart.source}${chart.hours === 'regular' ? ', regular hours' : ''}`;
  }

  async function loadChart() {
    const seq = ++state.chartSeq;
    const symbol = $('c-symbol').value.trim();
    const stored = $('c-timeframe').value;
    const adjusted = $('c-adjusted').checked;
    const from = $('c-from').value;
    const to = $('c-to').value;
    const box = $('chart');
    show($('chart-error'), false);
    if (!symbol) {
      setText($('chart-error'), 'Enter a symbol.');
      show($('chart-error'), true);
      return;
    }
    box.dataset.state = 'loading';
    box.setAttribute('aria-busy', 'true');
    setText($('chart-meta'), `Loading ${symbol} ${stored}…`);
    loadQuality(seq, symbol, stored, adjusted, from, to);
    const candles = [];
    let capped = false;
    let bars;
    try {
      const span = await coveredSpan(symbol, stored, adjusted, from, to);
      if (seq !== state.chartSeq) return;
      bars = chartBars(stored, $('c-hours').value, span);
      const query = new URLSearchParams({
        timeframe: bars.timeframe, adjusted: String(adjusted), limit: String(CHART_MAX),
      });
      if (bars.source) {
        query.set('resample_from', bars.source);
        query.set('hours', bars.hours);
      }
      if (from) query.set('from', from);
      if (to) query.set('to', to);
      let cursor = null;
      do {
        if (cursor) query.set('cursor', cursor);
        const page = await api(`/api/v1/candles/${encodeURIComponent(symbol)}?${query}`);
        if (seq !== state.chartSeq) return;
        for (const c of page.candles) candles.push(c);
        cursor = page.next_cursor;
        if (cursor && candles.length >= CHART_MAX) capped = true;
      } while (cursor && !capped);
    } catch (err) {
      if (seq !== state.chartSeq) return;
      box.dataset.state = 'error';
      box.removeAttribute('aria-busy');
      setText($('chart-meta'), '');
      if (err.status !== 401) {
        setText($('chart-error'), `Could not load the candles: ${err.message}`);
        show($('chart-error'), true);
      }
      return;
    }
    state.chart = { candles, symbol: symbol.toUpperCase(), capped, ...bars };
    drawChart();
  }

  function drawChart() {
    const box = $('chart');
    const chart = state.chart;
    if (!chart) return;
    box.removeAttribute('aria-busy');
    const { candles, symbol, timeframe, capped } = chart;
    const basis = basisText(chart);
    box.dataset.timeframe = timeframe;
    box.dataset.resampledFrom = chart.source || '';
    box.dataset.hours = chart.hours || '';
    if (candles.length === 0) {
      box.dataset.state = 'empty';
      box.dataset.candles = '0';
      delete box.dataset.first;
      delete box.dataset.last;
      box.replaceChildren(h('p', { class: 'empty' },
        `No ${chart.source || timeframe} candles of ${symbol} are stored in this range. Run a backfill first.`));
      setText($('chart-meta'), `${symbol} · ${chart.source || timeframe} · no candles`);
      return;
    }
    const first = candles[0];
    const last = candles[candles.length - 1];
    const change = first.open ? ((last.close - first.open) / first.open) * 100 : 0;
    setText($('chart-meta'), `${symbol} · ${basis} · ${fmtInt(candles.length)} candles`
      + `${capped ? ` (first ${fmtInt(CHART_MAX)} only)` : ''} · last ${fmtPrice(last.close)}`
      + ` (${change >= 0 ? '+' : ''}${change.toFixed(2)} %)`);

    const width = Math.max(320, Math.floor(box.clientWidth || 800));
    const height = width < 640 ? 320 : 440;
    const m = { top: 14, right: 72, bottom: 30, left: 12 };
    const plotW = width - m.left - m.right;
    const volH = Math.round((height - m.top - m.bottom) * 0.18);
    const priceH = height - m.top - m.bottom - volH - 8;
    const volTop = m.top + priceH + 8;

    let lo = Infinity;
    let hi = -Infinity;
    let maxVol = 0;
    for (const c of candles) {
      lo = Math.min(lo, c.low, c.open, c.close);
      hi = Math.max(hi, c.high, c.open, c.close);
      maxVol = Math.max(maxVol, c.volume);
    }
    if (hi === lo) {
      hi += Math.abs(hi) * 0.01 || 1;
      lo -= Math.abs(lo) * 0.01 || 1;
    }
    const pad = (hi - lo) * 0.04;
    hi += pad;
    lo -= pad;
    const ticks = niceTicks(lo, hi, priceH < 260 ? 4 : 6).filter((t) => t >= lo && t <= hi);
    const y = (p) => m.top + ((hi - p) / (hi - lo)) * priceH;
    const step = plotW / candles.length;
    const x = (i) => m.left + (i + 0.5) * step;
    const bodyW = Math.max(1, Math.min(step * 0.7, 18));

    const root = s('svg', {
      class: 'chart-svg', width, height, viewBox: `0 0 ${width} ${height}`, role: 'img',
      'aria-label': `Candlestick chart of ${symbol}, ${basis}: ${candles.length} candles from `
        + `${fmtTime(first.ts)} to ${fmtTime(last.ts)}`,
    });
    const grid = s('g', { class: 'grid' });
    const axis = s('g', { class: 'axis' });
    const lastY = y(last.close);
    for (const t of ticks) {
      const ty = Math.round(y(t)) + 0.5;
      grid.append(s('line', { x1: m.left, x2: m.left + plotW, y1: ty, y2: ty }));
      // The last close's tag covers labels next to it.
      if (Math.abs(ty - lastY) < 14) continue;
      const label = s('text', { x: m.left + plotW + 8, y: ty + 4, class: 'tick' });
      label.textContent = fmtPrice(t);
      axis.append(label);
    }
    const xTicks = timeTicks(candles, Math.max(2, Math.floor(plotW / 120)));
    for (const i of xTicks) {
      const tx = Math.round(x(i)) + 0.5;
      grid.append(s('line', { x1: tx, x2: tx, y1: m.top, y2: volTop + volH, class: 'vgrid' }));
      const label = s('text', { x: tx, y: height - 10, class: 'tick', 'text-anchor': 'middle' });
      label.textContent = fmtAxisTime(candles[i].ts, candles);
      axis.append(label);
    }
    axis.append(s('line', { x1: m.left, x2: m.left + plotW, y1: volTop + volH + 0.5, y2: volTop + volH + 0.5, class: 'baseline' }));
    root.append(grid);

    const volumes = s('g', { class: 'volumes' });
    const bodies = s('g', { class: 'candles' });
    candles.forEach((c, i) => {
      const up = c.close >= c.open;
      const cx = x(i);
      const g = s('g', { class: `candle ${up ? 'up' : 'down'}` });
      g.append(s('line', { class: 'wick', x1: cx, x2: cx, y1: y(c.high), y2: y(c.low) }));
      const top = y(Math.max(c.open, c.close));
      const bottom = y(Math.min(c.open, c.close));
      g.append(s('rect', {
        class: 'body', x: cx - bodyW / 2, y: top, width: bodyW, height: Math.max(1, bottom - top),
      }));
      bodies.append(g);
      if (maxVol > 0) {
        const vh = (c.volume / maxVol) * volH;
        volumes.append(s('rect', {
          class: `vol ${up ? 'up' : 'down'}`, x: cx - bodyW / 2, y: volTop + volH - vh, width: bodyW, height: Math.max(0.5, vh),
        }));
      }
    });
    root.append(volumes, bodies);

    // The last close, marked on the price axis.
    const ly = lastY;
    const lastUp = last.close >= last.open;
    root.append(s('line', { class: `last-line ${lastUp ? 'up' : 'down'}`, x1: m.left, x2: m.left + plotW, y1: ly, y2: ly }));
    const tag = s('g', { class: `last-tag ${lastUp ? 'up' : 'down'}` });
    tag.append(s('rect', { x: m.left + plotW + 2, y: ly - 9, width: m.right - 4, height: 18, rx: 3 }));
    const tagText = s('text', { x: m.left + plotW + 8, y: ly + 4 });
    tagText.textContent = fmtPrice(last.close);
    tag.append(tagText);
    root.append(axis, tag);
    // Which bars these are, in the plot's corner.
    const basisLabel = s('text', { x: m.left + 6, y: m.top + 14, class: 'chart-basis' });
    basisLabel.textContent = basis;
    root.append(basisLabel);

    // Crosshair and tooltip.
    const cross = s('line', { class: 'crosshair', y1: m.top, y2: volTop + volH, x1: 0, x2: 0, visibility: 'hidden' });
    root.append(cross);
    const overlay = s('rect', { class: 'overlay', x: m.left, y: m.top, width: plotW, height: volTop + volH - m.top });
    root.append(overlay);
    const tip = h('div', { class: 'chart-tip', hidden: true });
    const move = (event) => {
      const rect = root.getBoundingClientRect();
      const px = ((event.clientX - rect.left) / rect.width) * width;
      const i = Math.min(candles.length - 1, Math.max(0, Math.floor((px - m.left) / step)));
      const c = candles[i];
      cross.setAttribute('x1', x(i));
      cross.setAttribute('x2', x(i));
      cross.setAttribute('visibility', 'visible');
      tip.replaceChildren(
        h('div', { class: 'tip-time', text: fmtTime(c.ts) }),
        h('div', { class: 'tip-grid' },
          ['O', fmtPrice(c.open), 'H', fmtPrice(c.high), 'L', fmtPrice(c.low), 'C', fmtPrice(c.close),
            'V', compactFmt.format(c.volume)].map((t, k) => h('span', { class: k % 2 ? 'v' : 'k', text: t }))),
      );
      show(tip, true);
      const left = (x(i) / width) * rect.width;
      tip.style.left = `${left > rect.width / 2 ? left - tip.offsetWidth - 12 : left + 12}px`;
      tip.style.top = '12px';
    };
    overlay.addEventListener('pointermove', move);
    overlay.addEventListener('pointerleave', () => {
      cross.setAttribute('visibility', 'hidden');
      show(tip, false);
    });

    box.replaceChildren(root, tip);
    box.dataset.state = 'ready';
    box.dataset.candles = String(candles.length);
    box.dataset.first = first.ts;
    box.dataset.last = last.ts;
    box.dataset.width = String(width);
  }

  function niceTicks(lo, hi, count) {
    const span = hi - lo;
    const raw = span / Math.max(1, count);
    const mag = 10 ** Math.floor(Math.log10(raw));
    const norm = raw / mag;
    const step = (norm >= 5 ? 10 : norm >= 2 ? 5 : norm >= 1 ? 2 : 1) * mag;
    const start = Math.floor(lo / step) * step;
    const ticks = [];
    for (let t = start; t <= hi + step * 0.5 && ticks.length < 50; t += step) {
      ticks.push(Number(t.toPrecision(12)));
    }
    return ticks;
  }

  function timeTicks(candles, count) {
    const n = candles.length;
    if (n <= count) return candles.map((_, i) => i);
    const every = Math.ceil(n / count);
    const out = [];
    for (let i = Math.floor(every / 2); i < n; i += every) out.push(i);
    return out;
  }

  function fmtAxisTime(iso, candles) {
    const d = new Date(iso);
    const spanMs = new Date(candles[candles.length - 1].ts) - new Date(candles[0].ts);
    const pad = (v) => String(v).padStart(2, '0');
    const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
    const day = `${months[d.getUTCMonth()]} ${d.getUTCDate()}`;
    if (spanMs > 400 * 86400000) return `${months[d.getUTCMonth()]} ${d.getUTCFullYear()}`;
    if (spanMs > 20 * 86400000) return day;
    if (spanMs > 86400000) return `${day} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
    return `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
  }

  // ---------------------------------------------------------------- quality panel

  /** The quality report of the charted series (the stored one, over the chart's dates). */
  async function loadQuality(seq, symbol, timeframe, adjusted, from, to) {
    const box = $('quality');
    show(box, true);
    show($('quality-error'), false);
    box.dataset.state = 'loading';
    $('quality-body').setAttribute('aria-busy', 'true');
    const q = new URLSearchParams({ timeframe, adjusted: String(adjusted) });
    if (from) q.set('from', from);
    if (to) q.set('to', to);
    let report;
    try {
      report = await api(`/api/v1/candles/${encodeURIComponent(symbol)}/quality?${q}`);
    } catch (err) {
      if (seq !== state.chartSeq) return;
      box.dataset.state = 'error';
      $('quality-body').removeAttribute('aria-busy');
      $('quality-body').replaceChildren();
      if (err.status !== 401) {
        setText($('quality-error'), `Could not check the series: ${err.message}`);
        show($('quality-error'), true);
      }
      return;
    }
    if (seq !== state.chartSeq) return;
    $('quality-body').removeAttribute('aria-busy');
    renderQuality(report);
  }

  /** "12 of 4,680": a count out of a total. */
  function outOf(n, total) {
    return `${fmtInt(n)} of ${fmtInt(total)}`;
  }

  /** One figure of a panel: a label, a value, and a line under it. */
  function stat(key, label, value, sub, bad) {
    return h('div', { class: `stat${bad ? ' is-bad' : ''}`, 'data-q': key },
      h('dt', { text: label }), h('dd', { text: value }), sub ? h('p', { class: 'stat-sub', text: sub }) : null);
  }

  function renderQuality(report) {
    const box = $('quality');
    box.dataset.state = 'ready';
    box.dataset.symbol = report.symbol;
    box.dataset.timeframe = report.timeframe;
    const { days, ohlc } = report;
    const gaps = report.session_gaps;
    const agreement = report.day_agreement;
    const minutesOnly = 'counted for minute bars of stocks and options';
    const figures = h('dl', { class: 'stats quality-stats' },
      stat('bars', 'Bars', fmtInt(report.bars),
        report.first_bar ? `${fmtShortTime(report.first_bar)} → ${fmtShortTime(report.last_bar)}` : 'none stored'),
      stat('covered_days', 'Covered days', fmtInt(days.covered), `${fmtInt(days.with_bars)} with bars`),
      stat('days_without_bars', 'Days without bars', fmtInt(days.without_bars), 'holidays, or missing data',
        days.without_bars > 0),
      stat('regular_missing', 'Regular minutes missing', gaps ? fmtInt(gaps.regular_missing) : '—',
        gaps ? `of ${fmtInt(gaps.regular_minutes)} (09:30–16:00)` : minutesOnly, gaps && gaps.regular_missing > 0),
      stat('extended_missing', 'Extended minutes missing', gaps ? fmtInt(gaps.extended_missing) : '—',
        gaps ? `of ${fmtInt(gaps.extended_minutes)} (04:00–20:00)` : minutesOnly),
      stat('ohlc', 'OHLC problems', fmtInt(ohlc.violations),
        `${fmtInt(report.outside_session)} bars outside the session`, ohlc.violations > 0 || report.outside_session > 0),
      stat('day_agreement', 'Days against day bars', agreement ? fmtInt(agreement.days_disagreeing) : '—',
        agreement ? `disagree, of ${fmtInt(agreement.days_compared)} compared` : 'not compared',
        agreement && agreement.days_disagreeing > 0));
    const parts = [figures];
    if (days.without_bars_dates.length > 0) {
      const more = days.without_bars - days.without_bars_dates.length;
      parts.push(h('p', { class: 'quality-line', 'data-q': 'without_bars_dates' },
        h('strong', { text: 'Days without bars: ' }),
        `${days.without_bars_dates.join(', ')}${more > 0 ? ` and ${fmtInt(more)} more` : ''}`));
    }
    if (gaps && gaps.worst_days.length > 0) {
      parts.push(h('div', { class: 'table-wrap quality-table' }, h('table', { class: 'tasks worst-days' },
        h('caption', { class: 'quality-caption', text: 'Worst days: session minutes without a bar' }),
        h('thead', null, h('tr', null,
          h('th', { scope: 'col', text: 'Day' }),
          h('th', { scope: 'col', class: 'num', text: 'Regular' }),
          h('th', { scope: 'col', class: 'num', text: 'Extended' }))),
        h('tbody', null, gaps.worst_days.map((d) => h('tr', { 'data-date': d.date },
          h('th', { scope: 'row', class: 'mono', text: d.date, title: fmtDay(d.date) }),
          h('td', { class: 'num', text: fmtInt(d.regular_missing) }),
          h('td', { class: 'num', text: fmtInt(d.extended_missing) })))))));
    }
    if (ohlc.examples.length > 0) {
      parts.push(h('p', { class: 'quality-caption', text: 'OHLC problems' }),
        h('ul', { class: 'quality-list quality-ohlc' }, ohlc.examples.map((v) => h('li', null,
          h('span', { class: 'mono', text: fmtTime(v.ts) }), ` ${v.problem}`))));
    }
    if (agreement && agreement.examples.length > 0) {
      const value = (field, v) => (field === 'volume' ? fmtInt(v) : fmtPrice(v));
      parts.push(h('p', {
        class: 'quality-caption',
        text: `Minute bars against the day bar (tolerance ${agreement.price_tolerance * 100} % for prices, `
          + `${agreement.volume_tolerance * 100} % for volume)`,
      }),
      h('ul', { class: 'quality-list quality-disagreements' }, agreement.examples.map((d) => h('li', null,
        h('span', { class: 'mono', text: d.date }),
        ` ${d.field}: ${value(d.field, d.from_minutes)} from the minutes, ${value(d.field, d.day_bar)} in the day bar`))));
    }
    $('quality-body').replaceChildren(...parts);
  }

  // ---------------------------------------------------------------- schedules, universes, quota

  function refreshAutomation() {
    return Promise.all([loadSchedules(), loadUniverses(), loadQuota()]);
  }

  /**
   * Reads the list at `/api/v1/{what}` and renders its `what` field; a failure is said in
   * `#{what}-error` (unless the token is being asked for).
   */
  async function loadList(what, render) {
    const error = $(`${what}-error`);
    let body;
    try {
      body = await api(`/api/v1/${what}`);
    } catch (err) {
      if (err.status !== 401) {
        setText(error, err.code === 'not_found' ? err.message : `Could not load the ${what}: ${err.message}`);
        show(error, true);
      }
      return;
    }
    show(error, false);
    render(body[what]);
  }

  function loadSchedules() {
    return loadList('schedules', renderSchedules);
  }

  function renderSchedules(schedules) {
    const list = $('schedule-list');
    list.dataset.renders = String(Number(list.dataset.renders || 0) + 1);
    show($('schedules-empty'), schedules.length === 0);
    show($('schedules-wrap'), schedules.length > 0);
    const names = new Set(schedules.map((x) => x.name));
    for (const [name, row] of state.scheduleRows) {
      if (!names.has(name)) {
        row.tr.remove();
        state.scheduleRows.delete(name);
      }
    }
    schedules.forEach((schedule, i) => {
      let row = state.scheduleRows.get(schedule.name);
      if (!row) {
        row = createScheduleRow(schedule.name);
        state.scheduleRows.set(schedule.name, row);
      }
      updateScheduleRow(row, schedule);
      // Rows are moved only when out of place: moving one would take the focus off its buttons.
      if (list.children[i] !== row.tr) list.insertBefore(row.tr, list.children[i] || null);
    });
  }

  function createScheduleRow(name) {
    const cells = {
      covers: h('td', { class: 'mono schedule-covers' }),
      timeframes: h('td', { class: 'mono schedule-timeframes' }),
      trigger: h('td', { class: 'schedule-trigger' }),
      state: h('td', { class: 'schedule-state' }),
      lastRun: h('td', { class: 'schedule-run' }),
      nextDue: h('td', { class: 'schedule-next' }),
    };
    const toggle = h('button', { type: 'button', class: 'secondary small' });
    const remove = h('button', { type: 'button', class: 'danger small', 'data-action': 'delete' }, 'Delete');
    const tr = h('tr', { 'data-schedule': name },
      h('th', { scope: 'row', class: 'mono', text: name }),
      cells.covers, cells.timeframes, cells.trigger, cells.state, cells.lastRun, cells.nextDue,
      h('td', { class: 'cell-actions' }, h('span', { class: 'actions-inline nowrap' }, toggle, remove)));
    const row = { tr, toggle, remove, ...cells };
    const unarm = () => {
      delete remove.dataset.confirm;
      setText(remove, 'Delete');
      remove.setAttribute('aria-label', `Delete schedule ${name}`);
    };
    toggle.addEventListener('click', () => scheduleAction(row, toggle.dataset.action));
    // Deleting takes a second click, on the button that then asks for it.
    remove.addEventListener('click', () => {
      if (remove.dataset.confirm === 'true') {
        scheduleAction(row, 'delete');
        return;
      }
      remove.dataset.confirm = 'true';
      setText(remove, 'Confirm delete');
      remove.setAttribute('aria-label', `Delete schedule ${name}: press again to confirm`);
    });
    remove.addEventListener('blur', unarm);
    unarm();
    return row;
  }

  /** What a schedule keeps current: its symbols, its universe, or all tickers. */
  function tickersText(tickers) {
    if (tickers === 'all') return { text: 'all tickers', title: 'Every ticker of a bulk source' };
    if (tickers.universe) return { text: `universe ${tickers.universe}`, title: 'The universe’s symbols at each run' };
    const symbols = tickers.symbols || [];
    return { text: symbolsSummary(symbols, 4), title: symbols.join(', ') };
  }

  function fmtUntil(iso) {
    const secs = Math.round((new Date(iso).getTime() - Date.now()) / 1000);
    if (!Number.isFinite(secs)) return '';
    if (secs < 45) return 'in under a minute';
    if (secs < 3600) return `in ${Math.round(secs / 60)} min`;
    if (secs < 86400) return `in ${Math.round(secs / 3600)} h`;
    return `in ${Math.round(secs / 86400)} d`;
  }

  function openJob(event) {
    event.preventDefault();
    selectJob(event.currentTarget.dataset.jobId);
    $('job-detail').scrollIntoView({ behavior: 'smooth', block: 'start' });
  }

  function updateScheduleRow(row, schedule) {
    const name = schedule.name;
    row.tr.dataset.paused = String(schedule.paused);
    row.tr.dataset.runs = String(schedule.runs);
    const covers = tickersText(schedule.tickers);
    setText(row.covers, covers.text);
    row.covers.title = covers.title;
    row.covers.classList.toggle('is-all', schedule.tickers === 'all');
    setText(row.timeframes, schedule.timeframes.join(', '));
    row.timeframes.title = `${schedule.adjusted ? 'adjusted' : 'raw prices'} · source ${schedule.source || 'default'}`
      + ` · look-back ${plural(schedule.lookback_days, 'day', 'days')}`;
    row.trigger.replaceChildren(h('code', { text: schedule.trigger }));
    row.state.replaceChildren(h('span', {
      class: `pill ${schedule.paused ? 'st-cancelled' : 'st-succeeded'}`, text: schedule.paused ? 'paused' : 'active',
    }));
    const run = schedule.last_run;
    if (!run) {
      row.lastRun.replaceChildren(h('span', { class: 'muted', text: 'never' }));
    } else {
      const what = run.error
        ? h('span', { class: 'run-error', text: run.error })
        : run.job_ids.map((id) => h('a', {
          href: '#job-detail', class: 'job-link mono', 'data-job-id': id, title: `Job ${id}`, onclick: openJob,
        }, id.slice(0, 8)));
      row.lastRun.replaceChildren(
        h('span', { class: 'run-time', title: `due ${fmtTime(run.due_at)}, fired ${fmtTime(run.fired_at)}`, text: fmtShortTime(run.fired_at) }),
        h('span', { class: 'run-jobs' }, what),
        h('span', { class: 'muted run-count', text: plural(schedule.runs, 'run', 'runs') }));
    }
    if (schedule.paused) {
      row.nextDue.replaceChildren(h('span', { class: 'muted', text: 'paused' }));
    } else if (schedule.next_due_at) {
      row.nextDue.replaceChildren(
        h('span', { class: 'next-time', 'data-at': schedule.next_due_at, title: fmtTime(schedule.next_due_at), text: fmtShortTime(schedule.next_due_at) }),
        h('span', { class: 'muted', text: fmtUntil(schedule.next_due_at) }));
    } else {
      row.nextDue.replaceChildren(h('span', { class: 'muted', text: 'never again' }));
    }
    const label = schedule.paused ? 'Resume' : 'Pause';
    row.toggle.dataset.action = schedule.paused ? 'resume' : 'pause';
    setText(row.toggle, label);
    row.toggle.setAttribute('aria-label', `${label} schedule ${name}`);
  }

  async function scheduleAction(row, action) {
    const name = row.tr.dataset.schedule;
    const path = `/api/v1/schedules/${encodeURIComponent(name)}${action === 'delete' ? '' : `/${action}`}`;
    row.toggle.disabled = true;
    row.remove.disabled = true;
    show($('schedules-error'), false);
    try {
      const body = await api(path, { method: action === 'delete' ? 'DELETE' : 'POST' });
      if (body) updateScheduleRow(row, body);
    } catch (err) {
      if (err.status !== 401) {
        setText($('schedules-error'), `Could not ${action} schedule ${name}: ${err.message}`);
        show($('schedules-error'), true);
      }
    } finally {
      row.toggle.disabled = false;
      row.remove.disabled = false;
    }
    await loadSchedules();
  }

  function loadUniverses() {
    return loadList('universes', renderUniverses);
  }

  function renderUniverses(universes) {
    show($('universes-empty'), universes.length === 0);
    show($('universes-table'), universes.length > 0);
    $('universe-list').replaceChildren(...universes.map((u) => h('tr', { 'data-universe': u.name },
      h('th', { scope: 'row', class: 'mono', text: u.name }),
      h('td', { class: 'num universe-size', text: fmtInt(u.symbols) }),
      h('td', { class: 'universe-origin', text: u.origin }),
      h('td', { class: 'muted universe-updated', text: fmtAgo(u.updated_at), title: fmtTime(u.updated_at) }))));
  }

  function fmtSeconds(secs) {
    return `${Number(secs.toFixed(secs < 10 ? 1 : 0)).toLocaleString()} s`;
  }

  async function loadQuota() {
    const box = $('quota');
    let quota;
    try {
      quota = await api('/api/v1/quota');
    } catch (err) {
      if (err.status === 401) return;
      const none = err.code === 'not_found';
      box.dataset.state = none ? 'none' : 'error';
      $('quota-body').replaceChildren(h('p', { class: none ? 'empty' : 'error-text', text: err.message }));
      return;
    }
    renderQuota(quota);
  }

  function renderQuota(quota) {
    const box = $('quota');
    box.dataset.state = 'ready';
    box.dataset.scope = quota.scope;
    box.dataset.limit = quota.limit === null ? '' : String(quota.limit);
    box.dataset.inUse = String(quota.in_use);
    const per = fmtSeconds(quota.window_seconds);
    const scope = quota.scope === 'fleet'
      ? h('span', { class: 'tag tag-source', title: 'Shared by every process using this key and database', text: 'fleet' })
      : h('span', { class: 'tag', title: 'This server’s own', text: 'process' });
    const parts = [];
    if (quota.limit) {
      const p = Math.min(100, (quota.in_use / quota.limit) * 100);
      const fill = h('span', { class: 'bar-fill' });
      fill.style.width = `${p}%`;
      parts.push(h('div', { class: 'job-progress' },
        h('span', {
          class: 'bar bar-lg quota-meter', role: 'meter', 'data-level': p >= 90 ? 'high' : p >= 60 ? 'mid' : 'low',
          'aria-valuemin': '0', 'aria-valuemax': String(quota.limit), 'aria-valuenow': String(quota.in_use),
          'aria-valuetext': `${quota.in_use} of ${quota.limit} requests`, 'aria-label': 'Upstream requests in use',
        }, fill),
        h('span', { class: 'bar-label', text: `${Math.floor(p)} %` })));
      parts.push(h('p', { class: 'quota-text' }, scope, ' ',
        h('strong', { class: 'quota-use', text: outOf(quota.in_use, quota.limit) }), ` requests per ${per}`));
    } else {
      parts.push(h('p', { class: 'quota-text' }, scope, ' ',
        h('strong', { class: 'quota-use', text: fmtInt(quota.in_use) }),
        quota.window_seconds > 0 ? ` requests in the last ${per}; no limit set` : ' requests in flight; no limit set'));
    }
    if (quota.paused_for_seconds) {
      parts.push(h('p', {
        class: 'quota-paused', role: 'status',
        text: `Paused after a 429: every request is held back for ${fmtSeconds(quota.paused_for_seconds)}.`,
      }));
    }
    $('quota-body').replaceChildren(...parts);
  }

  // ---------------------------------------------------------------- wiring

  function init() {
    const today = new Date();
    const weekAgo = new Date(today.getTime() - 7 * 86400000);
    $('f-from').value = localDate(weekAgo);
    $('f-to').value = localDate(today);
    $('c-from').value = localDate(weekAgo);
    $('c-to').value = localDate(today);
    // The chart offers the form's timeframes, by their short names.
    $('c-timeframe').replaceChildren(...[...$('f-timeframe').options].map((o) => h('option', {
      value: o.value, text: o.value, selected: o.defaultSelected,
    })));

    $('backfill-form').addEventListener('submit', onSubmit);
    $('backfill-form').addEventListener('input', schedulePlan);
    $('backfill-form').addEventListener('change', schedulePlan);
    $('f-all').addEventListener('change', onAllTickers);
    $('auth-form').addEventListener('submit', onTokenSubmit);
    $('forget-token').addEventListener('click', forgetToken);
    $('jobs-refresh').addEventListener('click', () => refreshJobs());
    $('schedules-refresh').addEventListener('click', () => refreshAutomation());
    const hoursApply = () => {
      $('c-hours').disabled = !canResample($('c-timeframe').value, '1d', 'regular');
    };
    $('c-timeframe').addEventListener('change', hoursApply);
    hoursApply();
    $('d-cancel').addEventListener('click', () => jobAction('cancel'));
    $('d-retry').addEventListener('click', () => jobAction('retry'));
    $('d-close').addEventListener('click', closeDetail);
    $('chart-form').addEventListener('submit', (event) => {
      event.preventDefault();
      loadChart();
    });
    let lastWidth = 0;
    new ResizeObserver(() => {
      const width = Math.floor($('chart').clientWidth);
      if (state.chart && Math.abs(width - lastWidth) > 8) {
        lastWidth = width;
        requestAnimationFrame(drawChart);
      }
    }).observe($('chart'));
    document.addEventListener('visibilitychange', () => {
      if (!document.hidden && !state.authWaiting) refreshJobs();
    });
    start();
  }

  init();
})();

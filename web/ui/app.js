// herd-web's dashboard: pages built from the REST API (/api/v1/...) with the session cookie; a
// job's owner and admins also see its output and cancel, hold or release it from its page. Job
// names, commands, reasons, output and node names come from users: they only ever enter the page
// as text (el() below, textContent), never as HTML.
'use strict';

const PAGE_SIZE = 200;  // jobs per page of the jobs table
const NODES_PER_PAGE = 1000;
const MAX_DOTTED_POINTS = 200;  // a chart of more points draws lines alone

// An element with attributes and children (strings become text nodes).
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') e.className = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

class Unauthorized extends Error {}

// The charting library comes after this (deferred) script in index.html, so that the first page's
// requests go out while it loads; an answer is used once every deferred script has run, which
// DOMContentLoaded tells (it comes after them, and after this script, which runs once).
const scriptsRun = new Promise(resolve => document.addEventListener('DOMContentLoaded', resolve));

async function api(path) {
  const r = await fetch(path, {credentials: 'same-origin', headers: {Accept: 'application/json'}});
  let body = null;
  try {
    body = await r.json();
  } catch (e) {
    body = null;
  }
  await scriptsRun;
  if (r.status === 401) throw new Unauthorized(body && body.error ? body.error : 'not logged in');
  if (!r.ok) throw new Error((body && body.error) || ('HTTP ' + r.status));
  return body;
}

// The CSRF cookie's value (herd_csrf, __Host-herd_csrf under HTTPS): a POST echoes it in
// X-Herd-CSRF, which a page of another site cannot read.
function csrf() {
  for (const c of document.cookie.split(';')) {
    const [name, ...value] = c.trim().split('=');
    if (name === 'herd_csrf' || name === '__Host-herd_csrf') return value.join('=');
  }
  return '';
}

async function post(path) {
  const r = await fetch(path, {method: 'POST', credentials: 'same-origin',
                               headers: {Accept: 'application/json', 'X-Herd-CSRF': csrf()}});
  let body = null;
  try {
    body = await r.json();
  } catch (e) {
    body = null;
  }
  if (r.status === 401) throw new Unauthorized(body && body.error ? body.error : 'not logged in');
  if (!r.ok) throw new Error((body && (body.message || body.error)) || ('HTTP ' + r.status));
  return body;
}

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== '' && v !== null && v !== undefined) q.set(k, v);
  }
  const s = q.toString();
  return s ? '?' + s : '';
}

function gpus(v) {
  return v === null || v === undefined ? '–' : (Math.round(v * 100) / 100).toString();
}

function pct(v) { return v === null || v === undefined ? '–' : Math.round(v) + '%'; }

function when(t) { return t ? new Date(t * 1000).toLocaleString() : '–'; }

function jobLink(id) { return el('a', {href: '#job/' + Number(id)}, String(id)); }

function table(headers, rows, numeric) {
  const num = new Set(numeric || []);
  const head = el('tr', {}, ...headers.map((h, i) => el('th', num.has(i) ? {class: 'num'} : {}, h)));
  const body = el('tbody');
  for (const row of rows) {
    body.append(el('tr', {}, ...row.map((c, i) => el('td', num.has(i) ? {class: 'num'} : {}, c))));
  }
  return el('table', {}, el('thead', {}, head), body);
}

// A chart of `series` (a /api/v1/history answer): the named fields, GPUs (…_milli / 1000) or a
// utilization percentage ('util': busy / measured). data-points on the element tells how many
// points it drew.
function chart(series, fields, title) {
  const div = el('div', {class: 'chart', 'data-points': String(series.points.length)});
  const box = el('div', {}, el('h2', {}, title), div);
  if (series.points.length === 0) {
    div.append(el('p', {class: 'note'}, 'No samples yet in this range.'));
    return box;
  }
  if (typeof Dygraph === 'undefined') {
    div.append(el('p', {class: 'note'},
                  'Charts need Debian\'s libjs-dygraphs on herd-web\'s host.'));
    return box;
  }
  const value = (p, f) => {
    if (f === 'util') return p.measured_milli > 0 ? 100 * p.busy_milli / p.measured_milli : null;
    const v = p[f];
    return v === undefined ? null : (f.endsWith('_milli') ? v / 1000 : v);
  };
  const data = series.points.map(p => [new Date(p.time * 1000), ...fields.map(f => value(p, f[0]))]);
  // Drawn once the box is in the page, so that it has a size. A dot per point only where they are
  // few enough to tell apart: a dot for each of a day's minutes costs more than the lines.
  requestAnimationFrame(() => {
    new Dygraph(div, data, {labels: ['time', ...fields.map(f => f[1])], legend: 'always',
                            labelsSeparateLines: false, connectSeparatedPoints: true,
                            drawPoints: data.length <= MAX_DOTTED_POINTS});
  });
  return box;
}

const GPU_FIELDS = [['gpus_milli', 'GPUs'], ['allocated_milli', 'allocated'],
                    ['busy_milli', 'busy']];

// ---- the pages ----

async function overview(args, params) {
  const range = params.get('range') === '7d' ? '7d' : '1d';
  const [history, running] = await Promise.all([
    api('/api/v1/history' + query({series: 'cluster', since: range})),
    api('/api/v1/jobs' + query({state: 'RUNNING', limit: PAGE_SIZE}))]);
  const last = history.points.length ? history.points[history.points.length - 1] : null;
  const figure = (label, value) => el('div', {class: 'figure'}, el('b', {}, value), label);
  const out = [el('h1', {}, 'Cluster')];
  if (last) {
    out.push(el('div', {class: 'figures'},
                figure('GPUs', gpus(last.gpus_milli / 1000)),
                figure('allocated', gpus(last.allocated_milli / 1000)),
                figure('busy', gpus(last.busy_milli / 1000)),
                figure('running jobs', last.running_jobs),
                figure('pending jobs', last.pending_jobs)));
  }
  const idle = running.jobs.filter(j => j.gpus > 0 && j.gpu_util_pct !== null && j.gpu_util_pct < 10);
  if (idle.length) {
    out.push(el('h2', {}, 'Allocated but idle GPUs'),
             el('p', {class: 'warn', id: 'idle'}, idle.length +
                ' running jobs hold GPUs they use under 10%:'),
             table(['job', 'name', 'user', 'project', 'GPUs', 'utilization'],
                   idle.map(j => [jobLink(j.id), j.name, j.user, j.project, gpus(j.gpus),
                                  pct(j.gpu_util_pct)]), [4, 5]));
  } else {
    out.push(el('p', {class: 'note', id: 'idle'}, 'No running job holds GPUs it leaves idle.'));
  }
  out.push(el('p', {}, 'Range: ', el('a', {href: '#overview?range=1d'}, 'last day'), ' · ',
              el('a', {href: '#overview?range=7d'}, 'last week')));
  out.push(chart(history, GPU_FIELDS, 'GPUs over the last ' + (range === '7d' ? 'week' : 'day')));
  out.push(chart(history, [['util', 'utilization %']], 'Utilization of the GPUs that report it'));
  out.push(chart(history, [['running_jobs', 'running'], ['pending_jobs', 'pending']], 'Jobs'));
  return out;
}

async function projects(args) {
  const reply = await api('/api/v1/projects');
  const out = [el('h1', {}, 'Projects'),
               table(['name', 'kind', 'parent', 'deserved GPUs', 'limit', 'fair share', 'in use',
                      'pending demand', 'running jobs', 'pending jobs'],
                     reply.projects.map(p => [
                       el('a', {href: '#projects/' + encodeURIComponent(p.name)}, p.name), p.kind,
                       p.parent || '–', gpus(p.deserved.gpus),
                       p.limit.gpus === null ? 'unlimited' : gpus(p.limit.gpus),
                       gpus(p.fair_share.gpus), gpus(p.allocated.gpus),
                       gpus(p.pending_demand.gpus), p.running_jobs, p.pending_jobs]),
                     [3, 4, 5, 6, 7, 8, 9])];
  const name = args[0] ? decodeURIComponent(args[0]) : (reply.projects[0] || {}).name;
  if (name) {
    const h = await api('/api/v1/history' + query({series: 'project', key: name, since: '7d'}));
    out.push(chart(h, [['deserved_milli', 'deserved'], ['allocated_milli', 'in use'],
                       ['busy_milli', 'busy']], 'Project ' + name + ' over the last week'));
    out.push(chart(h, [['running_jobs', 'running'], ['pending_jobs', 'pending']],
                   'Jobs of ' + name));
  }
  return out;
}

async function jobs(args, params) {
  const filters = {state: params.get('state') || '', user: params.get('user') || '',
                   project: params.get('project') || ''};
  const after = params.get('after') || '';
  const reply = await api('/api/v1/jobs' + query({...filters, limit: PAGE_SIZE, after,
                                                  all: filters.state ? 'true' : ''}));
  const input = (name, label) => el('label', {}, label,
                                     el('input', {name, value: filters[name], size: '12'}));
  const state = el('select', {name: 'state'});
  for (const s of ['', 'PENDING', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED']) {
    const o = el('option', {value: s}, s || 'active');
    if (s === filters.state) o.selected = true;
    state.append(o);
  }
  const form = el('form', {class: 'filters'}, el('label', {}, 'state', state),
                  input('user', 'user'), input('project', 'project'),
                  el('button', {type: 'submit'}, 'Filter'));
  form.addEventListener('submit', e => {
    e.preventDefault();
    const f = new FormData(form);
    location.hash = 'jobs' + query({state: f.get('state'), user: f.get('user'),
                                    project: f.get('project')});
  });
  const rows = reply.jobs.map(j => [
    jobLink(j.id), j.name, j.user, j.project, j.state, gpus(j.gpus), pct(j.gpu_util_pct),
    j.nodes.join(', '), j.state === 'PENDING' ? j.reason : '']);
  const out = [el('h1', {}, 'Jobs'), form,
               table(['id', 'name', 'user', 'project', 'state', 'GPUs', 'utilization', 'nodes',
                      'why pending'], rows, [5, 6])];
  const pager = el('p', {class: 'pager'}, reply.jobs.length + ' jobs shown. ');
  if (after) pager.append(el('a', {href: '#jobs' + query(filters)}, 'first page'), ' ');
  if (reply.more) {
    pager.append(el('a', {href: '#jobs' + query({...filters, after: reply.next_after})},
                    'next page'));
  }
  out.push(pager);
  return out;
}

async function job(args) {
  const id = Number(args[0]);
  if (!Number.isInteger(id) || id <= 0) throw new Error('not a job id: ' + args[0]);
  const [reply, history] = await Promise.all([
    api('/api/v1/jobs/' + id),
    api('/api/v1/history' + query({series: 'job', key: id, since: '7d'})).catch(() => null)]);
  const j = reply.job;
  const facts = [['name', j.name], ['user', j.user], ['project', j.project], ['class', j.class],
                 ['state', j.state], ['GPUs', gpus(j.gpus)], ['utilization', pct(j.gpu_util_pct)],
                 ['nodes', j.nodes.join(', ') || '–'], ['submitted', when(j.submit_time)],
                 ['started', when(j.start_time)], ['ended', when(j.end_time)],
                 ['command', (j.command || []).join(' ') || '(shown to its owner only)']];
  const out = [el('h1', {}, 'Job ' + j.id + (j.name ? ': ' + j.name : '')),
               table(['', ''], facts)];
  if (reply.pending_reason) out.push(el('p', {class: 'warn', id: 'pending-reason'},
                                        reply.pending_reason));
  if (history) {
    out.push(chart(history, [['util', 'utilization %']], 'GPU utilization'));
  }
  out.push(el('h2', {}, 'Events'));
  if (reply.events.length) {
    out.push(table(['time', 'event'], reply.events.map(e => [when(e.time), e.what])));
  } else {
    out.push(el('p', {class: 'note'}, 'No events shown (a job\'s events are shown to its owner).'));
  }
  if (reply.may_act) {
    out.splice(2, 0, actions(j, reply));
    out.push(el('h2', {}, 'Output'), logTail(j));
  } else {
    out.push(el('p', {class: 'note'}, 'Its output is shown to its owner and admins.'));
  }
  return out;
}

const LIVE_STATES = new Set(['STARTING', 'RUNNING', 'SUSPENDED']);
const LOG_REFRESH_MS = 3000;

// The buttons of a job its viewer may act on: each POSTs, then the page is shown again.
function actions(j, reply) {
  const box = el('p', {class: 'actions', id: 'actions'});
  const result = el('span', {class: 'note', id: 'action-result'});
  const button = (action, label) => {
    const b = el('button', {type: 'button', id: action}, label);
    b.addEventListener('click', async () => {
      for (const other of box.querySelectorAll('button')) other.disabled = true;
      try {
        const r = await post('/api/v1/jobs/' + Number(j.id) + '/' + action);
        result.textContent = r.message;
        render();
      } catch (e) {
        result.textContent = 'Cannot ' + action + ': ' + e.message;
        result.className = 'error';
        for (const other of box.querySelectorAll('button')) other.disabled = false;
      }
    });
    return b;
  };
  const pending = j.state === 'PENDING';
  if (!pending && !LIVE_STATES.has(j.state)) return box;  // ended: nothing to do
  box.append(button('cancel', 'Cancel'));
  if (pending && reply.waits_for === 'hold') box.append(button('release', 'Release'));
  else if (pending) box.append(button('hold', 'Hold'));
  box.append(result);
  return box;
}

// The last 64 KiB of a job's output, as text, asked for again while the job runs and this page
// shows it.
function logTail(j) {
  const pre = el('pre', {class: 'log', id: 'log'}, 'Loading…');
  const generation = renders;
  const load = async () => {
    if (generation !== renders) return;  // another page (or this one again) is shown
    try {
      const log = await api('/api/v1/jobs/' + Number(j.id) + '/log');
      pre.textContent = log.data || '(no output yet)';
      pre.dataset.offset = String(log.offset);
      pre.dataset.nextOffset = String(log.next_offset);
    } catch (e) {
      pre.textContent = 'No output to show: ' + e.message;
    }
    pre.dataset.loaded = 'true';
    if (LIVE_STATES.has(j.state) && generation === renders) setTimeout(load, LOG_REFRESH_MS);
  };
  load();
  return pre;
}

function gpuClass(used, util) {
  if (used <= 0) return 'gpu';
  if (util === null) return 'gpu unknown';
  return 'gpu u' + Math.min(3, Math.floor(util / 25));
}

// The nodes page asks for one page of nodes in the brief form (each node's grid facts, and every
// node that is not UP), and builds the grid detached from the page: it enters the page once.
async function nodes(args, params) {
  const page = Math.max(0, Math.floor(Number(params.get('page'))) || 0);
  const reply = await api('/api/v1/nodes' + query({brief: 'true', offset: page * NODES_PER_PAGE,
                                                   limit: NODES_PER_PAGE}));
  const out = [el('h1', {}, 'Nodes')];
  if (reply.unavailable.length) {
    out.push(el('h2', {}, 'Drained or down'),
             table(['node', 'state', 'reason'],
                   reply.unavailable.map(n => [n.name, n.state, n.reason || '–'])));
  }
  const legend = el('p', {class: 'legend'});
  for (const [cls, label] of [['gpu', 'free'], ['gpu unknown', 'allocated, no utilization'],
                              ['gpu u0', '<25% busy'], ['gpu u1', '25–50%'],
                              ['gpu u2', '50–75%'], ['gpu u3', '≥75%']]) {
    legend.append(el('span', {}, el('span', {class: cls}), label));
  }
  out.push(el('h2', {}, 'GPUs'), legend);
  const grid = el('div', {class: 'grid', id: 'grid'});
  for (const n of reply.nodes) {
    const cells = document.createElement('div');
    cells.className = 'gpus';
    // The node's utilization: its GPUs' busy share over those allocated.
    const util = n.gpus_busy === null || n.gpus_busy === undefined || !(n.gpus_used > 0) ? null :
        100 * n.gpus_busy / n.gpus_used;
    const busy = util !== null ? ', node ' + pct(util) + ' busy' : '';
    n.gpu_used.forEach((used, i) => {
      const cell = document.createElement('span');
      cell.className = gpuClass(used, util);
      cell.title = 'GPU ' + i + ': ' + gpus(used) + ' allocated' + (used > 0 ? busy : '');
      cells.append(cell);
    });
    const box = el('div', {class: 'node ' + n.state.toLowerCase()}, el('div', {}, n.name), cells);
    box.title = n.name + ' ' + n.state + (n.reason ? ': ' + n.reason : '');
    grid.append(box);
  }
  out.push(grid);
  const pages = Math.ceil(reply.total / NODES_PER_PAGE);
  if (pages > 1) {
    const pager = el('p', {class: 'pager'}, 'Page ' + (page + 1) + ' of ' + pages + ': ');
    for (let p = 0; p < pages; ++p) {
      pager.append(el('a', {href: '#nodes?page=' + p}, String(p + 1)), ' ');
    }
    out.push(pager);
  }
  return out;
}

const USAGE_BY = ['user', 'project', 'type'];
const USAGE_LABEL = {user: 'user', project: 'project', type: 'GPU type'};

function usageTable(reply, by) {
  return table([USAGE_LABEL[by], 'GPU-hours', 'jobs', 'wait p50 (s)', 'wait p90 (s)', 'utilization',
                'preemptions'],
               reply.rows.map(r => [r[by], r.gpu_hours.toFixed(2), r.jobs, r.wait_p50_s,
                                    r.wait_p90_s, pct(r.gpu_util_pct), r.preemptions]),
               [1, 2, 3, 4, 5, 6]);
}

// GPU-hours by user or project, and beside them by GPU type, over the range.
async function usage(args, params) {
  const f = {since: params.get('since') || '7d', until: params.get('until') || '',
             by: USAGE_BY.includes(params.get('by')) ? params.get('by') : 'user'};
  const [reply, byType] = await Promise.all([
    api('/api/v1/usage' + query(f)),
    f.by === 'type' ? null : api('/api/v1/usage' + query({...f, by: 'type'}))]);
  const by = el('select', {name: 'by'});
  for (const b of USAGE_BY) {
    const o = el('option', {value: b}, USAGE_LABEL[b]);
    if (b === f.by) o.selected = true;
    by.append(o);
  }
  const form = el('form', {class: 'filters'},
                  el('label', {}, 'since', el('input', {name: 'since', value: f.since, size: '12'})),
                  el('label', {}, 'until', el('input', {name: 'until', value: f.until, size: '12'})),
                  el('label', {}, 'by', by), el('button', {type: 'submit'}, 'Show'));
  form.addEventListener('submit', e => {
    e.preventDefault();
    const d = new FormData(form);
    location.hash = 'usage' + query({since: d.get('since'), until: d.get('until'), by: d.get('by')});
  });
  const csv = (b, id) => el('a', {href: '/api/v1/usage' + query({...f, by: b, format: 'csv'}),
                                  download: 'herd-usage-' + b + '.csv', id}, 'Download as CSV');
  const out = [el('h1', {}, 'Usage'), form,
               el('div', {class: 'usage', id: 'usage-' + f.by},
                  el('h2', {}, 'By ' + USAGE_LABEL[f.by]), usageTable(reply, f.by),
                  el('p', {}, csv(f.by, 'csv')))];
  if (byType) {
    out.push(el('div', {class: 'usage', id: 'usage-type'}, el('h2', {}, 'By GPU type'),
                usageTable(byType, 'type'), el('p', {}, csv('type', 'csv-type'))));
  }
  return out;
}

const PAGES = {overview, projects, jobs, job, nodes, usage};

let renders = 0;  // a page still loading when another is asked for is dropped

// Renders the page the address names (#jobs?state=PENDING, #job/42, ...).
async function render() {
  const generation = ++renders;
  const main = document.getElementById('page');
  const hash = location.hash.replace(/^#/, '') || 'overview';
  const [route, search] = hash.split('?');
  const [name, ...args] = route.split('/');
  const page = PAGES[name] || overview;
  for (const a of document.querySelectorAll('header nav a')) {
    a.classList.toggle('current', a.getAttribute('href') === '#' + (name === 'job' ? 'jobs' : name));
  }
  main.dataset.state = 'loading';
  try {
    const children = await page(args, new URLSearchParams(search || ''));
    if (generation !== renders) return;
    main.replaceChildren(...children);
    main.dataset.state = 'ready';
  } catch (e) {
    if (generation !== renders) return;
    // No data on the page without a valid session: the error only.
    if (e instanceof Unauthorized) {
      main.replaceChildren(el('p', {class: 'error', id: 'unauthorized'},
                              'Not logged in (' + e.message + '). Run `herd web` and open the ' +
                              'address it prints.'));
      main.dataset.state = 'unauthorized';
    } else {
      main.replaceChildren(el('p', {class: 'error'}, 'Cannot show this page: ' + e.message));
      main.dataset.state = 'error';
    }
  }
  main.dataset.page = name;
}

window.addEventListener('hashchange', render);
render();

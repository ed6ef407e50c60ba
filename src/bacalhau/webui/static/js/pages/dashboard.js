// The dashboard: jobs by state and the jobs that ended per minute over the last hour (one cheap summary call, however
// many jobs there are), nodes by connection and approval, and the latest jobs.

import * as api from '../api.js';
import { badge, errorBox, h, replace, section, svg, table } from '../dom.js';
import { ago, clock, JOB_STATES, shortId } from '../format.js';
import { poll } from '../poll.js';

const INTERVAL = 5000;

function stat(label, value, kind, href) {
  const body = [h('span', { class: 'stat-value' }, String(value)), h('span', { class: 'stat-label' }, label)];
  return href ? h('a', { class: `stat ${kind || ''}`, href }, body) : h('div', { class: `stat ${kind || ''}` }, body);
}

const KINDS = { Pending: 'wait', Queued: 'wait', Running: 'run', Completed: 'ok', Failed: 'bad', Stopped: 'off' };

function jobStats(summary) {
  const counts = summary.JobsByState || {};
  return h('div', { class: 'stats', id: 'job-stats' },
    stat('All jobs', summary.TotalJobs ?? 0, 'total', '#/jobs'),
    JOB_STATES.map((state) => stat(state, counts[state] || 0, KINDS[state], `#/jobs?state=${state}`)));
}

function chart(ended) {
  const completed = ended.Completed || [];
  const failed = ended.Failed || [];
  const count = completed.length;
  const width = 600;
  const height = 100;
  const most = Math.max(1, ...completed.map((c, i) => c + (failed[i] || 0)));
  const slot = width / Math.max(1, count);
  const scale = (height - 2) / most;
  const end = Number(ended.Now) / 1e6;
  const step = (ended.IntervalSeconds || 60) * 1000;
  const bars = [];
  for (let i = 0; i < count; i += 1) {
    const x = i * slot + slot * 0.1;
    const done = completed[i] || 0;
    const bad = failed[i] || 0;
    const from = clock((end - (count - i) * step) * 1e6);
    const okHeight = done * scale;
    const badHeight = bad * scale;
    bars.push(svg('g', { class: 'bar' },
      svg('title', null, `${from}: ${done} completed, ${bad} failed`),
      svg('rect', { x, y: 0, width: slot * 0.8, height, class: 'slot' }),
      svg('rect', { x, y: height - okHeight, width: slot * 0.8, height: okHeight, class: 'ok' }),
      svg('rect', { x, y: height - okHeight - badHeight, width: slot * 0.8, height: badHeight, class: 'bad' })));
  }
  const total = completed.reduce((a, b) => a + b, 0);
  const totalFailed = failed.reduce((a, b) => a + b, 0);
  // The bars stretch to the card's width; the text around them is HTML, so that it never stretches with them.
  return h('figure', { class: 'chart', id: 'completions-chart' },
    h('div', { class: 'chart-body' },
      h('div', { class: 'chart-scale' }, h('span', null, String(most)), h('span', null, '0')),
      svg('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': 'Jobs completed per minute over the last hour', preserveAspectRatio: 'none' },
        svg('line', { x1: 0, y1: height, x2: width, y2: height, class: 'axis' }), bars)),
    h('div', { class: 'chart-axis' }, h('span', null, '60 min ago'), h('span', null, '30 min ago'), h('span', null, 'now')),
    h('figcaption', null, h('span', { class: 'legend ok' }, `${total} completed`), ' ', h('span', { class: 'legend bad' }, `${totalFailed} failed`),
      ' in the last hour (bars: per minute)'));
}

function nodeStats(list) {
  const count = (test) => list.filter(test).length;
  return h('div', { class: 'stats', id: 'node-stats' },
    stat('All nodes', list.length, 'total', '#/nodes'),
    stat('Connected', count((n) => n.Connection === 'CONNECTED'), 'ok', '#/nodes?status=CONNECTED'),
    stat('Disconnected', count((n) => n.Connection !== 'CONNECTED'), 'bad', '#/nodes?status=DISCONNECTED'),
    stat('Approved', count((n) => n.Membership === 'APPROVED'), 'ok', '#/nodes?approval=APPROVED'),
    stat('Pending approval', count((n) => n.Membership === 'PENDING'), 'wait', '#/nodes?approval=PENDING'),
    stat('Rejected', count((n) => n.Membership === 'REJECTED'), 'off', '#/nodes?approval=REJECTED'));
}

function recentJobs(items) {
  return table([
    ['Name', (job) => h('a', { href: `#/jobs/${encodeURIComponent(job.ID)}` }, job.Name || job.ID)],
    ['ID', (job) => h('code', null, shortId(job.ID)), 'narrow-hide'],
    ['Type', (job) => job.Type, 'narrow-hide'],
    ['State', (job) => badge(job.State && job.State.StateType)],
    ['Created', (job) => ago(job.CreateTime)],
  ], items, { empty: 'No jobs yet.' });
}

export function mount(root) {
  const jobsPart = h('div', null, h('p', { class: 'muted' }, 'Loading…'));
  const chartPart = h('div');
  const nodesPart = h('div', null, h('p', { class: 'muted' }, 'Loading…'));
  const recentPart = h('div');
  replace(root,
    h('h1', null, 'Dashboard'),
    section('Jobs', jobsPart),
    section('Completed per minute', chartPart),
    h('div', { class: 'columns' }, section('Nodes', nodesPart), section('Latest jobs', recentPart)));

  async function refresh() {
    const [summary, nodes, recent] = await Promise.allSettled([api.summary(), api.listNodes(), api.listJobs({ limit: 6 })]);
    if (summary.status === 'fulfilled') {
      replace(jobsPart, jobStats(summary.value));
      replace(chartPart, chart(summary.value.Ended || {}));
    } else {
      replace(jobsPart, errorBox(summary.reason));
      replace(chartPart);
    }
    replace(nodesPart, nodes.status === 'fulfilled' ? nodeStats(nodes.value.Nodes || []) : errorBox(nodes.reason));
    replace(recentPart, recent.status === 'fulfilled' ? recentJobs(recent.value.Items || []) : errorBox(recent.reason));
  }

  const poller = poll(refresh, INTERVAL);
  return () => poller.stop();
}

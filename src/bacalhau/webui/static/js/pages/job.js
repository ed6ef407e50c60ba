// A job: its state and message, Stop and Rerun, its executions on their nodes, the output of one of them (streamed
// live over the WebSocket while it runs, its standard output once it has finished), its results, its history as a
// timeline, and its spec as YAML. Refreshed while it is not over, slowly once it is.

import * as api from '../api.js';
import { badge, definitions, errorBox, h, labelChips, replace, section, table, toast } from '../dom.js';
import {
  ago, dateTime, desiredState, duration, executionState, isDiscarded, isExecuting, isTerminalJob, shortId,
} from '../format.js';
import { poll } from '../poll.js';
import { toYaml } from '../yaml.js';

const ACTIVE = 2000;
const SETTLED = 10000;
const MAX_LOG_LINES = 5000;
const RERUNNABLE = ['Running', 'Completed', 'Failed', 'Stopped'];

// The output panel of one execution: a live stream while it runs, RunOutput (or the whole stored log, on request)
// once it has finished.
class OutputPanel {
  constructor(jobId) {
    this.jobId = jobId;
    this.executionId = '';
    this.chosen = false; // picked by the user, rather than the latest
    this.close = null;
    this.streamed = false;
    this.live = false;
    this.lines = 0;
    this.title = h('span', null, 'Output');
    this.status = h('span', { class: 'muted small', id: 'log-status' });
    this.pre = h('pre', { class: 'log', id: 'job-output', tabindex: '0' });
    this.fullButton = h('button', { type: 'button', class: 'button small', id: 'log-full', hidden: true, onclick: () => this.stream(false) }, 'Load the whole log');
    this.element = h('section', { class: 'card', id: 'output' },
      h('div', { class: 'card-head' }, h('h2', null, this.title), this.status, this.fullButton), this.pre);
  }

  stop() {
    if (this.close) this.close();
    this.close = null;
    this.live = false;
  }

  choose(execution) {
    this.chosen = true;
    this.show(execution, true);
  }

  update(executions) {
    let execution = executions.find((e) => e.ID === this.executionId);
    if (!this.chosen || !execution) {
      const candidates = executions.filter((e) => !isDiscarded(e.ComputeState.StateType));
      const pool = candidates.length ? candidates : executions;
      execution = pool.reduce((a, b) => (b.ModifyTime > a.ModifyTime ? b : a), pool[0]);
    }
    if (execution) this.show(execution, false);
    else this.status.textContent = 'No execution yet.';
  }

  show(execution, force) {
    const state = execution.ComputeState.StateType;
    const changed = execution.ID !== this.executionId;
    if (changed || force) {
      this.stop();
      this.executionId = execution.ID;
      this.streamed = false;
      this.lines = 0;
      replace(this.pre);
    }
    replace(this.title, 'Output of ', h('code', null, shortId(execution.ID)), ' ', badge(executionState(state)));
    if (isExecuting(state)) {
      if (!this.live && !this.streamed) this.stream(true);
      this.fullButton.hidden = true;
    } else if (!this.live && !this.streamed) {
      this.showRunOutput(execution);
      this.fullButton.hidden = false;
    }
  }

  showRunOutput(execution) {
    const output = execution.RunOutput || {};
    replace(this.pre);
    this.lines = 0;
    if (output.Stdout) this.append(1, output.Stdout);
    if (output.stderr) this.append(2, output.stderr);
    if (output.ErrorMsg) this.append(2, output.ErrorMsg);
    const truncated = output.StdoutTruncated || output.StderrTruncated;
    if (!output.Stdout && !output.stderr && !output.ErrorMsg) this.status.textContent = 'No output.';
    else this.status.textContent = truncated ? 'The start of the output (load the whole log for the rest).' : `Exit code ${output.ExitCode ?? '—'}`;
  }

  append(kind, text) {
    // Follow the end of the log, unless the reader scrolled up to read something.
    const atBottom = this.pre.scrollHeight - this.pre.scrollTop - this.pre.clientHeight < 40;
    if (this.lines >= MAX_LOG_LINES) this.pre.firstChild?.remove();
    else this.lines += 1;
    this.pre.append(h('span', { class: kind === 2 ? 'stderr' : 'stdout' }, text));
    if (atBottom) this.pre.scrollTop = this.pre.scrollHeight;
  }

  stream(follow) {
    this.stop();
    replace(this.pre);
    this.lines = 0;
    this.streamed = true;
    this.live = follow;
    this.fullButton.hidden = true;
    this.status.textContent = follow ? 'Live: streaming…' : 'Loading the log…';
    this.pre.classList.toggle('live', follow);
    const executionId = this.executionId;
    this.close = api.streamLogs(this.jobId, executionId, { follow }, {
      onLine: (kind, line) => this.append(kind, line),
      onError: (message) => {
        this.status.textContent = `Log stream: ${message}`;
      },
      onEnd: (_code, failed) => {
        this.live = false;
        this.close = null;
        this.pre.classList.remove('live');
        if (!failed) this.status.textContent = follow ? 'The execution ended: stream closed.' : 'The whole log.';
      },
    });
  }
}

function info(job) {
  return definitions([
    ['ID', h('code', { id: 'job-id' }, job.ID)],
    ['Type', job.Type],
    ['Namespace', job.Namespace],
    ['Version', String(job.Version ?? '—')],
    ['Priority', String(job.Priority ?? 0)],
    ['Count', String(job.Count ?? 0)],
    ['Created', h('span', { title: dateTime(job.CreateTime) }, `${dateTime(job.CreateTime)} (${ago(job.CreateTime)})`)],
    ['Modified', dateTime(job.ModifyTime)],
    ['Run time', isTerminalJob(job.State.StateType) ? duration(job.CreateTime, job.ModifyTime) : duration(job.CreateTime, Date.now() * 1e6)],
    ['Engine', (job.Tasks || []).map((task) => task.Engine && task.Engine.Type).filter(Boolean).join(', ') || '—'],
    ['Labels', labelChips(job.Labels, 20)],
  ]);
}

function executionsTable(executions, panel) {
  return table([
    ['Execution', (e) => h('code', { title: e.ID }, shortId(e.ID))],
    ['Node', (e) => h('a', { href: `#/nodes/${encodeURIComponent(e.NodeID)}` }, shortId(e.NodeID))],
    ['State', (e) => badge(executionState(e.ComputeState.StateType))],
    ['Desired', (e) => desiredState(e.DesiredState.StateType), 'narrow-hide'],
    ['Message', (e) => h('span', { class: 'message' }, e.ComputeState.Message || e.DesiredState.Message || ''), 'narrow-hide wide'],
    ['Version', (e) => String(e.JobVersion ?? ''), 'narrow-hide'],
    ['Updated', (e) => ago(e.ModifyTime), 'narrow-hide'],
    ['', (e) => h('button', { type: 'button', class: 'button small', onclick: () => panel.choose(e), dataset: { execution: e.ID } }, 'Output')],
  ], executions, { empty: 'No executions yet.' });
}

function timeline(items) {
  if (!items.length) return h('p', { class: 'muted' }, 'No history.');
  return h('ol', { class: 'timeline', id: 'job-history' }, items.map((item) => {
    const event = item.Event || {};
    const details = event.Details || {};
    const isError = details.IsError === 'true';
    return h('li', { class: isError ? 'error' : '' },
      h('time', { title: dateTime(item.Time) }, dateTime(item.Time)),
      h('span', { class: 'topic' }, event.Topic || item.Type),
      item.ExecutionID ? h('code', { class: 'small' }, shortId(item.ExecutionID)) : null,
      h('span', { class: 'event' }, event.Message || ''),
      details.NewState ? badge(details.NewState) : null);
  }));
}

function resultLinks(results) {
  if (!results.length) return h('p', { class: 'muted' }, 'No published results.');
  return h('ul', { class: 'results', id: 'job-results' }, results.map((spec) => {
    const params = spec.Params || {};
    const link = typeof params.URL === 'string' && /^https?:\/\//i.test(params.URL) ? params.URL : '';
    const where = link
      ? h('a', { href: link, rel: 'noopener noreferrer', target: '_blank' }, 'Download')
      : h('code', null, params.Bucket ? `s3://${params.Bucket}/${params.Key || ''}` : JSON.stringify(params));
    return h('li', null, h('span', { class: 'chip' }, spec.Type || 'result'), ' ', where);
  }));
}

export function mount(root, [jobId]) {
  const panel = new OutputPanel(jobId);
  const head = h('div', { class: 'page-head' }, h('h1', null, 'Job'));
  const stateLine = h('div', { class: 'state-line', id: 'job-state' });
  const actions = h('div', { class: 'actions', id: 'job-actions' });
  const infoPart = h('div');
  const executionsPart = h('div', { id: 'job-executions' });
  const resultsPart = h('div');
  const historyPart = h('div');
  const specPart = h('pre', { class: 'yaml', id: 'job-spec' });
  const problem = h('div');
  let job = null;
  let resultsFor = '';

  replace(root, head, problem, stateLine, actions,
    section('Executions', executionsPart),
    panel.element,
    h('div', { class: 'columns' },
      h('div', null, section('Overview', infoPart), section('Results', resultsPart)),
      section('History', historyPart)),
    h('details', { class: 'card', id: 'spec' }, h('summary', null, h('h2', null, 'Spec (YAML)')), specPart));

  function drawActions() {
    replace(actions);
    if (!job) return;
    const state = job.State.StateType;
    if (!isTerminalJob(state)) {
      const reason = h('input', { id: 'stop-reason', placeholder: 'Reason (optional)', maxlength: 4096 });
      const confirm = h('div', { class: 'confirm', hidden: true },
        reason,
        h('button', { type: 'button', class: 'button danger', id: 'stop-confirm', onclick: () => stop(reason.value) }, 'Stop the job'),
        h('button', { type: 'button', class: 'button ghost', onclick: () => { confirm.hidden = true; } }, 'Cancel'));
      actions.append(h('button', { type: 'button', class: 'button danger', id: 'stop-job', onclick: () => { confirm.hidden = false; reason.focus(); } }, 'Stop'), confirm);
    }
    if (RERUNNABLE.includes(state)) {
      actions.append(h('button', { type: 'button', class: 'button', id: 'rerun-job', onclick: rerun }, 'Rerun'));
    }
  }

  async function stop(reason) {
    try {
      await api.stopJob(job.ID, reason.trim() || 'stopped from the web UI');
      toast('Stop requested.', 'ok');
    } catch (error) {
      toast(error.status === 403 ? `Forbidden: ${error.message}` : `Could not stop the job: ${error.message}`, 'error');
    }
    poller.now();
  }

  async function rerun() {
    try {
      const result = await api.rerunJob(job.ID);
      toast(`Rerunning as version ${result.JobVersion}.`, 'ok');
    } catch (error) {
      toast(error.status === 403 ? `Forbidden: ${error.message}` : `Could not rerun the job: ${error.message}`, 'error');
    }
    poller.now();
  }

  let interval = ACTIVE;
  async function refresh() {
    let found;
    try {
      found = await api.getJob(jobId);
    } catch (error) {
      replace(problem, errorBox(error));
      return;
    }
    replace(problem);
    const previousState = job && job.State.StateType;
    const previousVersion = job && job.Version;
    job = found.Job;
    panel.jobId = job.ID; // (the address may name the job by its name or an ID prefix)
    const executions = (found.Executions && found.Executions.Items) || [];
    const history = (found.History && found.History.Items) || [];
    document.title = `${job.Name || job.ID} · Bacalhau`;
    replace(head, h('h1', { id: 'job-name' }, job.Name || job.ID));
    replace(stateLine, badge(job.State.StateType), h('span', { class: 'message', id: 'job-message' }, job.State.Message || ''));
    if (job.State.StateType !== previousState || job.Version !== previousVersion) drawActions();
    replace(infoPart, info(job));
    replace(executionsPart, executionsTable(executions, panel));
    panel.update(executions);
    replace(historyPart, timeline(history));
    const spec = { ...job };
    delete spec.State;
    const yaml = toYaml(spec);
    if (specPart.textContent !== yaml) specPart.textContent = yaml;
    const resultsKey = `${job.Version}:${job.State.StateType}`;
    if (resultsKey !== resultsFor && (job.Type === 'batch' || job.Type === 'ops')) {
      resultsFor = resultsKey;
      try {
        const results = await api.jobResults(job.ID);
        replace(resultsPart, resultLinks(results.Items || []));
      } catch (error) {
        replace(resultsPart, errorBox(error));
      }
    } else if (job.Type !== 'batch' && job.Type !== 'ops') {
      replace(resultsPart, h('p', { class: 'muted' }, `A ${job.Type} job publishes no results.`));
    }
    interval = isTerminalJob(job.State.StateType) ? SETTLED : ACTIVE;
  }

  // Quick while the job runs, slow once it has ended (a rerun may start it again).
  const poller = poll(refresh, () => interval);

  return () => {
    poller.stop();
    panel.stop();
  };
}

// A node: what it is and runs, its labels and resources, and Approve / Reject / Delete.

import * as api from '../api.js';
import { badge, definitions, errorBox, h, labelChips, replace, section, table, toast } from '../dom.js';
import { ago, bytes, cores, dateTime } from '../format.js';
import { poll } from '../poll.js';
import { capacity } from './nodes.js';

const INTERVAL = 4000;

function resources(info) {
  const rows = [
    ['Total', info.MaxCapacity],
    ['Available', info.AvailableCapacity],
    ['Queued', info.QueueCapacity],
    ['Largest job', info.MaxJobRequirements],
  ].filter(([, value]) => value);
  return table([
    ['', ([name]) => name],
    ['CPU', ([, r]) => cores(r.CPU)],
    ['Memory', ([, r]) => bytes(r.Memory)],
    ['Disk', ([, r]) => bytes(r.Disk)],
    ['GPU', ([, r]) => String(r.GPU || 0)],
  ], rows);
}

function list(items) {
  return items && items.length ? h('span', { class: 'chips' }, items.map((item) => h('span', { class: 'chip' }, item))) : '—';
}

export function mount(root, [nodeId]) {
  const head = h('div', { class: 'page-head' }, h('h1', null, 'Node'));
  const problem = h('div');
  const stateLine = h('div', { class: 'state-line', id: 'node-state' });
  const actions = h('div', { class: 'actions', id: 'node-actions' });
  const body = h('div');
  let shown = '';
  replace(root, head, problem, stateLine, actions, body);

  async function act(action) {
    try {
      await api.nodeAction(nodeId, action);
      toast(`Node ${action === 'delete' ? 'deleted' : action + 'd'}.`, 'ok', { keep: action === 'delete' });
      if (action === 'delete') {
        location.hash = '#/nodes';
        return;
      }
    } catch (error) {
      toast(error.status === 403 ? `Forbidden: ${error.message}` : `Could not ${action} the node: ${error.message}`, 'error');
    }
    poller.now();
  }

  function drawActions(node) {
    const key = `${node.Membership}`;
    if (key === shown) return;
    shown = key;
    replace(actions);
    if (node.Membership !== 'APPROVED') actions.append(h('button', { type: 'button', class: 'button primary', id: 'approve-node', onclick: () => act('approve') }, 'Approve'));
    if (node.Membership !== 'REJECTED') actions.append(h('button', { type: 'button', class: 'button', id: 'reject-node', onclick: () => act('reject') }, 'Reject'));
    const confirm = h('span', { class: 'confirm', hidden: true },
      'Delete this node? ',
      h('button', { type: 'button', class: 'button danger', id: 'delete-confirm', onclick: () => act('delete') }, 'Delete'),
      h('button', { type: 'button', class: 'button ghost', onclick: () => { confirm.hidden = true; } }, 'Cancel'));
    actions.append(h('button', { type: 'button', class: 'button danger', id: 'delete-node', onclick: () => { confirm.hidden = false; } }, 'Delete…'), confirm);
  }

  async function refresh() {
    let node;
    try {
      node = (await api.getNode(nodeId)).Node;
    } catch (error) {
      replace(problem, errorBox(error));
      return;
    }
    replace(problem);
    const info = node.Info;
    document.title = `${info.NodeID} · Bacalhau`;
    replace(head, h('h1', { id: 'node-name' }, info.NodeID));
    replace(stateLine, badge(node.Membership), badge(node.Connection), h('span', { class: 'muted' }, info.NodeType));
    drawActions(node);
    const connection = node.ConnectionState || {};
    const compute = info.ComputeNodeInfo;
    const version = info.BacalhauVersion || {};
    replace(body,
      section('Overview', definitions([
        ['ID', h('code', null, info.NodeID)],
        ['Type', info.NodeType],
        ['Version', version.GitVersion || '—'],
        ['Platform', [version.GOOS, version.GOARCH].filter(Boolean).join('/') || '—'],
        ['Last heartbeat', `${dateTime(connection.LastHeartbeat)} (${ago(connection.LastHeartbeat)})`],
        connection.ConnectedSince ? ['Connected since', dateTime(connection.ConnectedSince)] : null,
        connection.LastError ? ['Last error', connection.LastError] : null,
        compute && compute.address ? ['Address', compute.address] : null,
        ['Protocols', list(info.SupportedProtocols)],
        ['Labels', labelChips(info.Labels, 50)],
      ])),
      compute && info.NodeType === 'Compute'
        ? section('Resources',
          capacity(node),
          resources(compute),
          definitions([
            ['Executions', `${compute.RunningExecutions || 0} running, ${compute.EnqueuedExecutions || 0} queued`],
            ['Engines', list(compute.ExecutionEngines)],
            ['Inputs', list(compute.StorageSources)],
            ['Publishers', list(compute.Publishers)],
          ]))
        : null);
  }

  const poller = poll(refresh, INTERVAL);
  return () => poller.stop();
}

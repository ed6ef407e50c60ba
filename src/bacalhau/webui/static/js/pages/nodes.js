// The nodes: type, approval, connection, labels, and how much of each compute node's capacity is in use.

import * as api from '../api.js';
import { badge, errorBox, h, labelChips, replace, table, toast } from '../dom.js';
import { ago, bytes, cores, shortId } from '../format.js';
import { poll } from '../poll.js';

const INTERVAL = 5000;

export function usage(label, used, max, format) {
  if (!max) return h('div', { class: 'usage muted' }, `${label}: —`);
  const share = Math.min(1, Math.max(0, used / max));
  const fill = h('span', { class: `fill ${share > 0.9 ? 'high' : ''}` });
  fill.style.width = `${(share * 100).toFixed(1)}%`;
  return h('div', { class: 'usage', title: `${label}: ${format(used)} of ${format(max)} in use` },
    h('span', { class: 'usage-label' }, `${label} ${format(used)} / ${format(max)}`), h('span', { class: 'meter' }, fill));
}

export function capacity(node) {
  const info = node.Info.ComputeNodeInfo;
  if (!info || node.Info.NodeType !== 'Compute') return h('span', { class: 'muted' }, '—');
  const max = info.MaxCapacity || {};
  const available = info.AvailableCapacity || {};
  return h('div', { class: 'capacity' },
    usage('CPU', (max.CPU || 0) - (available.CPU || 0), max.CPU || 0, cores),
    usage('Memory', (max.Memory || 0) - (available.Memory || 0), max.Memory || 0, bytes));
}

const APPROVALS = ['PENDING', 'APPROVED', 'REJECTED'];
const STATUSES = ['CONNECTED', 'DISCONNECTED'];

function filterSelect(id, label, options, value, onChange) {
  const element = h('select', { id, 'aria-label': label, onchange: () => onChange(element.value) },
    h('option', { value: '' }, `Any ${label.toLowerCase()}`),
    options.map((option) => h('option', { value: option, selected: option === value }, option.toLowerCase())));
  return element;
}

export function mount(root, _params, { query }) {
  const filters = {
    approval: APPROVALS.includes(query.get('approval')) ? query.get('approval') : '',
    status: STATUSES.includes(query.get('status')) ? query.get('status') : '',
  };
  const listPart = h('div', { id: 'nodes-table' }, h('p', { class: 'muted' }, 'Loading…'));

  function remember() {
    const search = new URLSearchParams(Object.entries(filters).filter(([, value]) => value));
    const text = search.toString();
    history.replaceState(null, '', `#/nodes${text ? '?' + text : ''}`);
    poller.now();
  }

  replace(root,
    h('div', { class: 'page-head' }, h('h1', null, 'Nodes')),
    h('div', { class: 'filters', id: 'node-filters' },
      filterSelect('filter-approval', 'Approval', APPROVALS, filters.approval, (value) => { filters.approval = value; remember(); }),
      filterSelect('filter-status', 'Connection', STATUSES, filters.status, (value) => { filters.status = value; remember(); })),
    h('section', { class: 'card flush' }, listPart));

  async function approve(node) {
    try {
      await api.nodeAction(node.Info.NodeID, 'approve');
      toast('Node approved.', 'ok');
    } catch (error) {
      toast(error.status === 403 ? `Forbidden: ${error.message}` : `Could not approve the node: ${error.message}`, 'error');
    }
    poller.now();
  }

  async function refresh() {
    try {
      const found = await api.listNodes(filters);
      replace(listPart, table([
        ['Node', (n) => h('a', { href: `#/nodes/${encodeURIComponent(n.Info.NodeID)}`, title: n.Info.NodeID }, shortId(n.Info.NodeID))],
        ['Type', (n) => n.Info.NodeType, 'narrow-hide'],
        ['Approval', (n) => [badge(n.Membership), n.Membership === 'PENDING'
          ? [' ', h('button', { type: 'button', class: 'button small primary', onclick: () => approve(n), dataset: { approve: n.Info.NodeID } }, 'Approve')]
          : null]],
        ['Connection', (n) => badge(n.Connection)],
        ['Labels', (n) => labelChips(n.Info.Labels, 4), 'narrow-hide'],
        ['Capacity in use', capacity, 'narrow-hide'],
        ['Executions', (n) => {
          const info = n.Info.ComputeNodeInfo;
          return info && n.Info.NodeType === 'Compute' ? `${info.RunningExecutions || 0} running, ${info.EnqueuedExecutions || 0} queued` : '—';
        }, 'narrow-hide'],
        ['Heartbeat', (n) => ago(n.ConnectionState && n.ConnectionState.LastHeartbeat), 'narrow-hide'],
      ], found.Nodes || [], { empty: 'No nodes.', rowAttributes: (n) => ({ dataset: { nodeId: n.Info.NodeID } }) }));
    } catch (error) {
      replace(listPart, errorBox(error));
    }
  }

  const poller = poll(refresh, INTERVAL);
  return () => poller.stop();
}
